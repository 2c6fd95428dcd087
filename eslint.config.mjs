import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'bench/results/', '.cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The console runs in a browser: its names (document, WebSocket, …) are
    // checked by `tsc -p console/tsconfig.json` against the DOM library, which
    // knows them all, instead of a hand-kept list of globals.
    files: ['console/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
);

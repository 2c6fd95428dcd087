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
    // Plain CommonJS run by npm before tsc has built anything.
    files: ['scripts/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { process: 'readonly', require: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The console runs in a browser: its names (document, WebSocket, …) are
    // checked by `tsc -p console/tsconfig.json` against the DOM library, which
    // knows them all, instead of a hand-kept list of globals.
    files: ['console/**/*.js'],
    rules: { 'no-undef': 'off' },
  },
);

// The `nlbridge` bin (bin/nlbridge.ts) runs the client for send, watch and
// status and the daemon otherwise, and each loads none of the other's modules:
// the client starts without fastify, pino or the native addon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'dist/bin/nlbridge.js');

/** The files a run of the bin loaded (require.cache at exit), relative to the repo. */
function loaded(args: string[]): { status: number | null; stdout: string; files: string[] } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-dispatch-'));
  const preload = path.join(dir, 'loaded.js');
  const out = path.join(dir, 'loaded.json');
  writeFileSync(
    preload,
    `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`,
  );
  const r = spawnSync(process.execPath, ['-r', preload, BIN, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, NLBRIDGE_URL: 'http://127.0.0.1:9' },
  });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const files = (require(out) as string[]).map((f) => path.relative(ROOT, f));
  return { status: r.status, stdout: r.stdout, files };
}

test('a client command loads the client and none of the daemon, its addon, fastify or pino', () => {
  for (const args of [
    ['send', '--help'],
    ['watch', '--help'],
    ['status', '--help'],
  ]) {
    const r = loaded(args);
    assert.equal(r.status, 0);
    assert.match(r.stdout, new RegExp(`^usage: nlbridge ${args[0]} `));
    assert.ok(r.files.includes('dist/cli/main.js'), args[0]);
    const foreign = r.files.filter((f) => /^(dist\/daemon\/|dist\/addon\/|build\/)|node_modules\/(fastify|pino|@fastify)\//.test(f));
    assert.deepEqual(foreign, [], `${args[0]} loaded daemon modules`);
  }
});

test('anything else runs the daemon, which loads none of the client', () => {
  const r = loaded(['--version']);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^nlbridge \d/);
  assert.ok(r.files.includes('dist/daemon/main.js'));
  assert.deepEqual(
    r.files.filter((f) => f.startsWith('dist/cli/')),
    [],
  );
});

// The native lifetime rules (poll handle freed only in its close callback,
// close inside a callback, worker teardown) checked by AddressSanitizer and
// UBSan: the addon is rebuilt with -fsanitize=address,undefined into .cache/
// and the lifecycle, socket and flood tests run against it in a copy of the
// tree whose build/Release holds the sanitized binary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './support/netlink';

function libasan(): string {
  return execFileSync('cc', ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
}

test('lifecycle, socket and flood tests pass with the addon built under ASan + UBSan', { timeout: 600_000 }, async (t) => {
  const tree = path.join(ROOT, '.cache/asan-tree');
  fs.rmSync(tree, { recursive: true, force: true });
  fs.mkdirSync(path.join(tree, 'build/Release'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'tests/host/support'), { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(tree, 'dist'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'tests/host/support/flood.c'), path.join(tree, 'tests/host/support/flood.c'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tree, 'node_modules'));

  // Same defines as binding.gyp.
  const addonApi = path.join(ROOT, 'node_modules/node-addon-api');
  execFileSync('g++', [
    '-std=c++17',
    '-O1',
    '-g',
    '-fno-omit-frame-pointer',
    '-fPIC',
    '-shared',
    '-Wall',
    '-Wextra',
    '-Werror',
    '-fsanitize=address,undefined',
    '-fno-sanitize-recover=undefined',
    '-DNAPI_VERSION=8',
    '-DNAPI_DISABLE_CPP_EXCEPTIONS',
    '-DNODE_ADDON_API_DISABLE_DEPRECATED',
    '-DNODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
    '-I/usr/include/node',
    `-I${addonApi}`,
    '-o',
    path.join(tree, 'build/Release/nlbridge_netlink.node'),
    path.join(ROOT, 'addon/src/netlink_socket.cc'),
  ]);
  assert.match(execFileSync('ldd', [path.join(tree, 'build/Release/nlbridge_netlink.node')], { encoding: 'utf8' }), /libasan/);

  const files = ['addon_lifecycle', 'addon_socket', 'addon_flood'].map((f) => path.join(tree, `dist/tests/host/${f}.test.js`));
  // A nested `node --test` run refuses to run files while NODE_TEST_CONTEXT
  // says it is inside a test.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const { code, out } = await new Promise<{ code: number | null; out: string }>((resolve) => {
    execFile(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files],
      {
        cwd: tree,
        env: {
          ...env,
          LD_PRELOAD: libasan(),
          // V8 and Node are not built for LeakSanitizer; use-after-free,
          // double free and overflows are what this test is about.
          ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1',
          UBSAN_OPTIONS: 'print_stacktrace=1',
        },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 540_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, out: stdout + stderr }),
    );
  });
  const summary = out
    .split('\n')
    .filter((l) => /^# (tests|pass|fail) /.test(l))
    .map((l) => l.slice(2));
  t.diagnostic(`under ASan: ${summary.join(', ')}`);
  assert.doesNotMatch(out, /AddressSanitizer|runtime error:/, out.slice(out.search(/AddressSanitizer|runtime error:/) - 2000));
  assert.equal(code, 0, out.slice(-4000));
  assert.match(out, /^# fail 0$/m);
  assert.match(out, /^# pass [1-9]\d*$/m);
});

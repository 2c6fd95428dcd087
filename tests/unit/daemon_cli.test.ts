// The command: `nlbridge --version`, `--help` (options, exit statuses), the
// package's bin entry, and man/nlbridge.8 rendered from the same table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { OPTIONS } from '../../daemon/config/schema';
import { manPage } from '../../daemon/man_page';

const ROOT = path.resolve(__dirname, '../../..');
const MAIN = path.join(ROOT, 'dist/daemon/main.js');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

test('--version and -V print "nlbridge <version>" and exit 0', () => {
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(process.execPath, [MAIN, flag], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `nlbridge ${pkg.version}\n`);
  }
});

test('--help lists every option and the exit statuses; an unknown option says "see --help" once and exits 2', () => {
  const r = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  for (const o of OPTIONS) assert.ok(r.stdout.includes(o.flag), o.flag);
  assert.match(r.stdout, /Exit status: 0 .*; 1 .*; 2 /);
  const bad = spawnSync(process.execPath, [MAIN, '--bogus', '1'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.match(/--help/g)?.length, 1, bad.stderr);
});

test('the package has a bin "nlbridge": the dispatcher (bin/nlbridge.ts), and it and the daemon are scripts with a node shebang', () => {
  assert.equal(pkg.bin.nlbridge, 'dist/bin/nlbridge.js');
  for (const file of [path.join(ROOT, pkg.bin.nlbridge), MAIN]) assert.match(readFileSync(file, 'utf8'), /^#!\/usr\/bin\/env node\n/, file);
  const r = spawnSync(process.execPath, [path.join(ROOT, pkg.bin.nlbridge), '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, `nlbridge ${pkg.version}\n`, 'the bin runs the daemon by default');
});

test('man/nlbridge.8 is the rendering of the option table (npm run man)', () => {
  const committed = readFileSync(path.join(ROOT, 'man/nlbridge.8'), 'utf8');
  assert.equal(committed, manPage(pkg.version), 'man/nlbridge.8 is stale: run npm run man');
  for (const o of OPTIONS) assert.ok(committed.includes(o.flag.replace(/-/g, '\\-')), o.flag);
  assert.ok(statSync(path.join(ROOT, 'man/nlbridge.8')).size > 1000);
});

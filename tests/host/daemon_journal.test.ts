// Under journald (JOURNAL_STREAM names the daemon's own stdout) every line
// starts with its syslog priority, so `journalctl -p err` finds the errors;
// elsewhere stdout is plain pino JSON. A real daemon process, whose stdout
// pipe stands in for the journal's stream (both ends share one inode).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './support/daemon_harness';

test('with JOURNAL_STREAM naming its stdout, each line carries its priority: <2> fatal for a missing module', async () => {
  // The pipe's device:inode is known only once it exists: a small wrapper
  // reads it from its own fd 1 (as systemd sets it) and then runs the daemon.
  const proc = spawn(
    process.execPath,
    [
      '-e',
      `const fs=require('fs');const s=fs.fstatSync(1);process.env.JOURNAL_STREAM=s.dev+':'+s.ino;process.argv=[process.argv[0],${JSON.stringify(path.join(ROOT, 'dist/daemon/main.js'))},'--protocol','dummy','--port','0','--sysfs-root','/nonexistent'];require(process.argv[1]);`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((r) => proc.on('close', r));
  const lines = out.split('\n').filter(Boolean);
  assert.equal(code, 2);
  assert.ok(lines.length >= 1, out);
  for (const l of lines) assert.match(l, /^<[2-7]>\{"level":/, l);
  const fatal = lines.find((l) => l.includes('"level":60'));
  assert.ok(fatal?.startsWith('<2>'), `no <2> fatal line: ${out}`);
});

test('without JOURNAL_STREAM (or naming another stream) lines are plain JSON', async () => {
  const proc = spawn(
    process.execPath,
    [path.join(ROOT, 'dist/daemon/main.js'), '--protocol', 'dummy', '--port', '0', '--sysfs-root', '/nonexistent'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, JOURNAL_STREAM: '1:1' },
    },
  );
  let out = '';
  proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
  assert.equal(await new Promise<number | null>((r) => proc.on('close', r)), 2);
  const lines = out.split('\n').filter(Boolean);
  assert.ok(lines.length >= 1);
  for (const l of lines) assert.match(l, /^\{"level":/, l);
});

// README.md's fleet example, run as written: nats-server, daemon A publishing
// its group 2, daemon B on port 8081, and `curl -N` on B's
// /fleet/groups/2/events; then README's POST /send to A's group 2 must come
// out of B's stream once, with host A. The commands are read from README.md
// (so the test fails when the README changes and the behaviour does not), run
// by `sh -c` from a directory that holds the checkout's package.json, dist/,
// build/ and node_modules/ (so the token files go there, not into the
// checkout), each after the one before listens, as a person would type them.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '../support/wait';

const ROOT = path.resolve(__dirname, '../../..');

/** The code block after "Two on one machine" in README.md's Fleet section: [command, runs in the background]. */
function readmeCommands(): { cmd: string; background: boolean }[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = text.indexOf('Two on one machine');
  assert.ok(start > 0, 'README.md has the two-daemon fleet example');
  const block = /\n\n((?: {4}.*\n)+)/.exec(text.slice(start));
  assert.ok(block, 'the example is an indented code block');
  return block[1]
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .map((l) => ({ cmd: l.replace(/\s*&$/, ''), background: l.endsWith('&') }));
}

/** The README's POST /send to A, from the paragraph under the example. */
function readmeSend(): string {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = /`(curl -X POST [^`]*127\.0\.0\.1:8080\/send)`/.exec(text.slice(text.indexOf('Two on one machine')));
  assert.ok(m, "README.md gives the POST /send to A's group 2 under the example");
  return m[1];
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

const procs: ChildProcess[] = [];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-readme-fleet-'));
for (const f of ['package.json', 'dist', 'build', 'node_modules']) fs.symlinkSync(path.join(ROOT, f), path.join(work, f));

after(() => {
  // Each command is its own process group (npm → sh → node): kill the groups.
  for (const p of procs) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
});

test("README's fleet example: B's /fleet stream shows A's group-2 message once, with host A", { timeout: 90_000 }, async () => {
  const cmds = readmeCommands();
  assert.equal(cmds.length, 4, `nats-server, two daemons, curl: ${JSON.stringify(cmds)}`);
  assert.deepEqual(
    cmds.map((c) => c.background),
    [true, true, true, false],
  );
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin` };
  const logs: string[] = [];
  const run = (cmd: string): ChildProcess => {
    const p = spawn('sh', ['-c', cmd], { cwd: work, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const i = logs.push('') - 1;
    const keep = (d: Buffer): void => {
      logs[i] = (logs[i] + d.toString()).slice(-8000);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    procs.push(p);
    return p;
  };
  const ports = [4333, 8080, 8081];
  for (const [i, { cmd }] of cmds.slice(0, 3).entries()) {
    const p = run(cmd);
    await waitFor(
      `"${cmd}" listening on ${ports[i]}`,
      async () => {
        if (p.exitCode !== null) throw new Error(`"${cmd}" exited ${p.exitCode}: ${logs.at(-1)}`);
        return (await listening(ports[i])) || null;
      },
      { timeoutMs: 20_000 },
    );
  }
  // The daemons write auth.header once they listen; A wrote it, B kept A's token.
  await waitFor('.cache/nlbridge/auth.header', () => fs.existsSync(path.join(work, '.cache/nlbridge/auth.header')) || null, {
    timeoutMs: 5000,
  });
  const curl = run(cmds[3].cmd);
  const stream = (): string => logs[3];
  await waitFor('the SSE hello on B', () => (/event: hello/.test(stream()) ? true : null), { timeoutMs: 10_000 });
  const sent = spawnSync('sh', ['-c', readmeSend()], { cwd: work, env, encoding: 'utf8', timeout: 10_000 });
  assert.equal(sent.status, 0, `the README's POST /send: ${sent.stderr}`);
  const report = JSON.parse(sent.stdout) as { results: { to: string; group?: number; result: string }[] };
  assert.ok(
    report.results.some((r) => r.to === 'group' && r.group === 2 && r.result === 'delivered'),
    `A delivered to group 2: ${sent.stdout}`,
  );
  const frames = (): { host: string; group: number; data: string }[] =>
    [...stream().matchAll(/event: message\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]) as { host: string; group: number; data: string });
  await waitFor('the message on B', () => (frames().length >= 1 ? true : null), { timeoutMs: 10_000 });
  // Anything more would have come with the first: NATS hands B one copy, B one frame.
  await new Promise((r) => setTimeout(r, 500));
  const got = frames();
  assert.equal(got.length, 1, `exactly once: ${stream()}`);
  assert.equal(got[0].host, 'A');
  assert.equal(got[0].group, 2);
  assert.equal(got[0].data, 'hello');
  assert.equal(curl.exitCode, null, 'curl -N still streaming');
});

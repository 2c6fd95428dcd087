// rr_nlk and ww_nlk (module/tools) on NETLINK_USERSOCK (-p 2), where other
// tests and the benchmark use them as peers: group copies, dedupe, direct
// sends, JSON output, and a clear message and non-zero exit on each failure.
// Their behaviour against the kernel module is tested under QEMU
// (tests/vm/module.test.ts).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../support/wait';

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, '.cache', 'module-tools');
const RR = path.join(BIN, 'rr_nlk');
const WW = path.join(BIN, 'ww_nlk');
const USERSOCK = '2';
// High groups: USERSOCK groups are global to the host.
const G1 = 25;
const G2 = 26;
const mask = (...groups: number[]): string => String(groups.reduce((m, g) => (m | (1 << (g - 1))) >>> 0, 0));

before(() => {
  fs.mkdirSync(BIN, { recursive: true });
  for (const tool of ['rr_nlk', 'ww_nlk']) {
    const r = spawnSync(
      'cc',
      ['-O2', '-Wall', '-Wextra', '-Werror', '-std=gnu11', '-Imodule/include/uapi', '-o', path.join(BIN, tool), `module/tools/${tool}.c`],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
  }
});

interface Reader {
  child: ChildProcess;
  lines: string[];
  done: Promise<number | null>;
}

/** Starts rr_nlk and resolves once it has bound (its "listening" notice). */
function startReader(args: string[]): Promise<Reader> {
  return new Promise((resolve, reject) => {
    const child = spawn(RR, ['-p', USERSOCK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let out = '';
    let err = '';
    const done = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        lines.push(out.slice(0, i));
        out = out.slice(i + 1);
      }
    });
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (err.includes('listening')) resolve({ child, lines, done });
    });
    done.then((code) => reject(new Error(`rr_nlk exited (${code}) before listening: ${err}`)));
  });
}

function ww(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(WW, ['-p', USERSOCK, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function waitLines(r: Reader, n: number, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (r.lines.length < n && Date.now() < until) await new Promise((res) => setTimeout(res, 10));
}

test('ww_nlk -g sends one copy per group; a reader on both groups prints it once', async () => {
  const rr = await startReader(['-g', mask(G1, G2), '-j']);
  try {
    const w = ww(['-g', mask(G1, G2), '-a', '-m', 'both-groups']);
    assert.equal(w.status, 0, w.stderr);
    // USERSOCK has no kernel socket: each copy is reported delivered, without an ack.
    assert.equal((w.stdout.match(/no kernel endpoint/g) ?? []).length, 2, w.stdout);
    await waitLines(rr, 1);
    // An end marker on the second group, sent after: the copy on it, had rr_nlk printed it, came before.
    const end = ww(['-g', mask(G2), '-m', 'end-both-groups']);
    assert.equal(end.status, 0, end.stderr);
    await waitFor(
      'the end marker printed by rr_nlk',
      () => rr.lines.some((l) => (JSON.parse(l) as { data?: string }).data === 'end-both-groups'),
      { timeoutMs: 5000 },
    );
    const msgs = rr.lines.map((l) => JSON.parse(l)).filter((m) => m.data === 'both-groups');
    assert.equal(msgs.length, 1, rr.lines.join('\n'));
    assert.equal(msgs[0].type, 'DATA');
    assert.equal(msgs[0].group, G1);
    assert.equal(msgs[0].seq, 1);
    assert.equal(msgs[0].len, 'both-groups'.length);
  } finally {
    rr.child.kill();
  }
});

test('a reader on one group gets only that copy; -c numbers the messages', async () => {
  const rr = await startReader(['-g', mask(G2), '-n', '3']);
  const w = ww(['-g', mask(G1, G2), '-c', '3', '-S', '10', '-m', 'counted']);
  assert.equal(w.status, 0, w.stderr);
  assert.equal(await rr.done, 0);
  assert.equal(rr.lines.length, 3);
  rr.lines.forEach((line, i) => {
    assert.match(line, new RegExp(`^port=\\d+ group=${G2} seq=${10 + i} type=DATA pid=\\d+ flags=0x1 len=7 data="counted"$`));
  });
});

test('ww_nlk -d reaches rr_nlk at its process id (group 0 = unicast); JSON escapes bytes', async () => {
  const rr = await startReader(['-j', '-n', '1']);
  const text = 'q"b\\s\x01é';
  const w = ww(['-d', String(rr.child.pid), '-m', text]);
  assert.equal(w.status, 0, w.stderr);
  assert.equal(await rr.done, 0);
  const msg = JSON.parse(rr.lines[0]!);
  assert.equal(msg.group, 0);
  assert.equal(msg.type, 'DATA');
  // bytes as code points: the UTF-8 of "é" is two of them
  assert.equal(msg.data, Buffer.from(text, 'utf8').toString('latin1'));
});

test('failures: unknown port, taken port id, missing protocol, bad flags', async () => {
  const dead = ww(['-d', '2147483632']);
  assert.equal(dead.status, 1);
  assert.match(dead.stderr, /no socket has port id 2147483632/);

  const noKernel = ww(['-a']);
  assert.equal(noKernel.status, 1);
  assert.match(noKernel.stderr, /no kernel socket/);

  const rr = await startReader([]);
  try {
    const taken = spawnSync(RR, ['-p', USERSOCK, '-P', String(rr.child.pid)], { encoding: 'utf8' });
    assert.equal(taken.status, 1);
    assert.match(taken.stderr, new RegExp(`port id ${rr.child.pid} is taken`));
  } finally {
    rr.child.kill();
  }

  // The host kernel has no dummy_netlink: unit 25 does not exist.
  const missing = spawnSync(RR, ['-p', '25'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /is dummy_netlink loaded/);

  for (const [tool, args] of [
    [RR, ['-x']],
    [WW, ['-g', '1', '-i', '5']],
    [WW, ['-g', 'ten']],
    [RR, ['stray']],
  ] as const) {
    const r = spawnSync(tool, [...args], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, `${path.basename(tool)} ${args.join(' ')}`);
    assert.match(r.stderr, /usage|not a number/);
  }
});

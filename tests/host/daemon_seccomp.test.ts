// Issue 13: code running inside the daemon process cannot open netlink
// sockets of other protocols once the daemon is up. The real daemon (node
// dist/daemon/main.js) runs with a test-only module preloaded (--require,
// written here into a temp dir, not shipped): on SIGUSR2 it tries to open
// NETLINK_ROUTE, NETLINK_NETFILTER and NETLINK_USERSOCK through the addon,
// as injected code would, and writes what happened to a file.
//
// Run in a private network namespace:
//   unshare -n sh -c 'ip link set lo up && node --test dist/tests/host/daemon_seccomp.test.js'

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { ROOT, onJsonLines } from './support/daemon_harness';
import { buildSeccompProbe } from './support/seccomp_probe';

const MAIN = path.join(ROOT, 'dist/daemon/main.js');
const ADDON_INDEX = path.join(ROOT, 'dist/addon/index.js');
const EPERM = os.constants.errno.EPERM;
const EACCES = os.constants.errno.EACCES;

const PRELOAD = `
'use strict';
const fs = require('node:fs');
process.on('SIGUSR2', () => {
  const { NetlinkSocket } = require(process.env.NLB_TEST_ADDON_INDEX);
  const out = {};
  for (const [name, protocol] of [['route', 0], ['netfilter', 12], ['usersock', 2]]) {
    try {
      NetlinkSocket.open({ protocol }).close();
      out[name] = 'opened';
    } catch (e) {
      out[name] = { code: e.code, errno: e.errno, syscall: e.syscall };
    }
  }
  const file = process.env.NLB_TEST_OUT;
  fs.writeFileSync(file + '.tmp', JSON.stringify(out));
  fs.renameSync(file + '.tmp', file);
});
`;

let dir = '';
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-daemon-seccomp-'));
  fs.writeFileSync(path.join(dir, 'preload.js'), PRELOAD);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Daemon {
  child: ChildProcess;
  logs: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDaemon(wrapper: string[] = []): Daemon {
  const argv = [
    ...wrapper,
    process.execPath,
    '--require',
    path.join(dir, 'preload.js'),
    MAIN,
    '--protocol',
    'usersock',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--auth',
    'none',
  ];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: dir,
    env: {
      ...process.env,
      NLB_TEST_ADDON_INDEX: ADDON_INDEX,
      NLB_TEST_OUT: path.join(dir, 'outcome.json'),
      NOTIFY_SOCKET: '',
      WATCHDOG_USEC: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let err = '';
  onJsonLines(child.stdout!, (line) => {
    logs.push(line);
  });
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, logs, stderr: () => err, exited };
}

async function waitFor<T>(what: string, probe: () => T | undefined, d: Daemon, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline || d.child.exitCode !== null) {
      throw new Error(`no ${what}; exit ${d.child.exitCode}; log ${JSON.stringify(d.logs).slice(0, 3000)}; stderr ${d.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

const listeningPort = (d: Daemon): number | undefined => {
  for (const l of d.logs) {
    const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(l.msg ?? ''));
    if (m) return Number(m[1]);
  }
  return undefined;
};

test('inside the running daemon, opening NETLINK_ROUTE or NETLINK_NETFILTER fails with EPERM; its own protocol and ?unicast=1 sockets still work', async (t) => {
  const d = startDaemon();
  t.after(async () => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await d.exited;
  });
  const port = await waitFor('listening line', () => listeningPort(d), d);

  d.child.kill('SIGUSR2');
  const outFile = path.join(dir, 'outcome.json');
  const outcome = await waitFor(
    'outcome file',
    () => (fs.existsSync(outFile) ? (JSON.parse(fs.readFileSync(outFile, 'utf8')) as Record<string, unknown>) : undefined),
    d,
  );
  t.diagnostic(`inside the daemon: ${JSON.stringify(outcome)}`);
  for (const k of ['route', 'netfilter']) {
    const e = outcome[k] as { code: string; errno: number; syscall: string } | string;
    assert.notEqual(e, 'opened', `NETLINK_${k.toUpperCase()} opened inside the daemon`);
    assert.ok(typeof e === 'object' && (e.errno === -EPERM || e.errno === -EACCES), JSON.stringify(e));
    assert.equal(e.syscall, 'socket');
  }
  assert.equal(outcome.usersock, 'opened');

  // The one info line saying what was restricted, logged before listening.
  const idx = d.logs.findIndex((l) => (l.seccomp as { protocols?: number[] } | undefined)?.protocols !== undefined);
  assert.ok(idx >= 0, 'no seccomp log line');
  const line = d.logs[idx] as { level: number; seccomp: { protocols: number[]; arch: string }; msg: string };
  assert.equal(line.level, 30);
  assert.deepEqual(line.seccomp.protocols, [2]);
  assert.match(line.msg, /protocol usersock \(2\)/);
  assert.ok(idx < d.logs.findIndex((l) => /^listening on/.test(String(l.msg))));

  // The daemon still does its job: a send, and a WebSocket with a netlink
  // socket of its own (opened after the filter, with SO_RCVBUFFORCE).
  const send = await fetch(`http://127.0.0.1:${port}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ groups: 2, data: 'x' }),
  });
  assert.equal(send.status, 200, await send.text());
  const ws = new WebSocket(`ws://127.0.0.1:${port}/groups/2?unicast=1`);
  const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.once('message', (m) => resolve(JSON.parse(m.toString()) as Record<string, unknown>));
    ws.once('error', reject);
    ws.once('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
  });
  assert.equal(hello.type, 'hello');
  assert.equal(hello.unicast, true);
  assert.notEqual(hello.portId, hello.bridgePortId);
  ws.close();

  d.child.kill('SIGTERM');
  assert.deepEqual(await d.exited, { code: 0, signal: null });
});

test('when the filter cannot be installed (seccomp(2) refused, as under a unit without SystemCallFilter=seccomp) the daemon does not start: exit 1, a fatal line', async (t) => {
  const probe = buildSeccompProbe();
  const d = startDaemon([probe, '--exec-without-seccomp']);
  t.after(async () => {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    await d.exited;
  });
  const code = await Promise.race([
    d.exited.then((e) => e.code),
    new Promise<string>((r) => setTimeout(() => r('still running after 15 s'), 15_000).unref()),
  ]);
  assert.equal(code, 1, `stderr ${d.stderr()} log ${JSON.stringify(d.logs)}`);
  const fatal = d.logs.find((l) => l.level === 60);
  assert.ok(fatal, JSON.stringify(d.logs));
  assert.match(String(fatal.msg), /seccomp/);
  assert.equal((fatal.err as { code?: string } | undefined)?.code, 'EPERM');
  assert.equal(listeningPort(d), undefined, 'it listened');
});

// A daemon started without CAP_NET_ADMIN (root with every capability dropped,
// as `setpriv` makes it): what daemon/README's "Unprivileged start" promises.
// It requires no token (it has no privilege to protect), it can send on
// NETLINK_USERSOCK (NL_CFG_F_NONROOT_SEND), and its streams cannot join
// groups: each is refused with a PERMISSION_DENIED frame naming EPERM. The
// start-up log says all three.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import type { Datagram } from '../../addon/types';
import type { NetlinkSocket } from '../../addon/socket';
import { open } from './support/netlink';
import { ROOT, onJsonLines } from './support/daemon_harness';
import { waitFor } from '../support/wait';

const G = 27;
let proc: ChildProcess;
let base: string;
const logs: Record<string, unknown>[] = [];

before(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-unpriv-'));
  proc = spawn(
    'setpriv',
    [
      '--inh-caps=-all',
      '--bounding-set=-all',
      process.execPath,
      path.join(ROOT, 'dist/daemon/main.js'),
      '--protocol',
      'usersock',
      '--port',
      '0',
      '--token-out',
      path.join(dir, 'token'),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NOTIFY_SOCKET: '' } },
  );
  base = await new Promise<string>((resolve, reject) => {
    onJsonLines(proc.stdout!, (j) => {
      logs.push(j);
      const m = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(String(j.msg));
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`daemon exited ${code}`)));
    setTimeout(() => reject(new Error('daemon did not listen in 15 s')), 15000).unref();
  });
});
after(() => {
  proc.kill('SIGTERM');
});

test('it says at start that it holds no CAP_NET_ADMIN, requires no token, and that streams cannot join groups', () => {
  const warn = logs.find((l) => l.netAdmin === false && /CAP_NET_ADMIN/.test(String(l.msg)) && l.level === 40);
  assert.ok(warn, `no warning about the missing capability: ${JSON.stringify(logs.map((l) => l.msg))}`);
  assert.match(String(warn.msg), /no token/);
  assert.match(String(warn.msg), /any local user/);
  assert.match(String(warn.msg), /streams/);
});

test('no token is required, and a send reaches a group on NETLINK_USERSOCK', async () => {
  const listener: NetlinkSocket = open({ groups: (1 << (G - 1)) >>> 0 });
  const heard: Datagram[] = [];
  listener.on('datagrams', (b: Datagram[]) => heard.push(...b));
  const status = (await (await fetch(`${base}/status`)).json()) as { auth: { tokenRequired: boolean } };
  assert.equal(status.auth.tokenRequired, false);
  try {
    const r = await fetch(`${base}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ groups: [G], data: 'unpriv-send' }),
    });
    assert.equal(r.status, 200);
    // An end marker after it from the same tx socket: a second copy would have come before.
    const end = await fetch(`${base}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ groups: [G], data: 'end-unpriv' }),
    });
    assert.equal(end.status, 200);
    await waitFor(
      'the end marker at the listener',
      () => heard.filter((d) => d.data.subarray(16).toString().startsWith('end-unpriv')).length,
      { timeoutMs: 5000, until: (n) => n >= 1 },
    );
  } finally {
    listener.close(); // an open socket would keep this test process alive after a failure
  }
  assert.equal(heard.filter((d) => d.data.subarray(16).toString().startsWith('unpriv-send')).length, 1);
});

test('a stream is refused with a PERMISSION_DENIED frame naming EPERM, then closed', async () => {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/groups?list=${G}`);
  const frames: Record<string, unknown>[] = [];
  const code = await new Promise<number>((resolve, reject) => {
    ws.on('message', (m: Buffer) => frames.push(JSON.parse(m.toString()) as Record<string, unknown>));
    ws.on('close', (c) => resolve(c));
    ws.on('error', reject);
  });
  assert.equal(code, 1008);
  assert.equal(frames.length, 1, JSON.stringify(frames));
  const problem = frames[0].problem as { code: string; errno: string };
  assert.equal(frames[0].type, 'error');
  assert.equal(problem.code, 'PERMISSION_DENIED');
  assert.equal(problem.errno, 'EPERM');
});

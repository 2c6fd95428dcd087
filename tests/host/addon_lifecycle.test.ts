// Lifetime of the native socket: close while a receive is pending, inside a
// callback, twice; fds and poll handles really freed; worker threads; the
// process exits cleanly with sockets open.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { loadBinding } from '../../addon/index';
import type { Datagram } from '../../addon/types';
import { ADDON_INDEX, G, bit, buildFlood, flood, message, open, sleep } from './support/netlink';
import { waitFor } from '../support/wait';

before(() => {
  buildFlood();
});

const fdCount = (): number => fs.readdirSync('/proc/self/fd').length;

/** Waits for libuv close callbacks (they run one loop turn after uv_close). */
const turn = (): Promise<void> => sleep(20);

/** Bytes queued unread on the netlink socket bound to `portId` (Rmem in /proc/net/netlink). */
function queuedBytes(portId: number): number {
  const rows = fs
    .readFileSync('/proc/net/netlink', 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  const row = rows.find((f) => Number(f[1]) === 2 && Number(f[2]) >>> 0 === portId >>> 0);
  return row ? Number(row[4]) : -1;
}

/** Native counters once pending close callbacks (earlier tests') have run. */
async function settledStats(): Promise<{ openSockets: number; livePollHandles: number }> {
  await turn();
  return loadBinding().stats();
}

test('close while a receive is pending: no callback afterwards, fd and poll handle freed', async () => {
  const base = await settledStats();
  const fds = fdCount();
  const r = open();
  const w = open();
  let batches = 0;
  r.on('datagrams', () => batches++);
  // Readable in the kernel, the poll callback not yet run: close now.
  for (let i = 0; i < 10; i++) w.send(message(i), { portId: r.portId });
  r.close();
  w.close();
  await turn();
  await turn();
  assert.equal(batches, 0);
  assert.deepEqual(loadBinding().stats(), base);
  assert.equal(fdCount(), fds);
});

test('close inside the datagrams callback during a flood stops delivery at once', async () => {
  const base = await settledStats();
  const r = open({ groups: bit(G.flood), receiveBufferBytes: 256 * 1024 });
  let batches = 0;
  let overrunsAfterClose = 0;
  r.on('datagrams', () => {
    batches++;
    r.close();
    r.close();
  });
  r.on('overrun', () => {
    if (r.isClosed) overrunsAfterClose++;
  });
  const res = await flood(100_000, 0, bit(G.flood));
  assert.equal(res.sent, 100_000);
  await turn();
  assert.equal(batches, 1);
  assert.equal(overrunsAfterClose, 0);
  assert.deepEqual(loadBinding().stats(), base);
});

test('close inside the overrun callback', async () => {
  const r = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024 });
  const res = await flood(50_000, 0, bit(G.flood)); // overflow before listening
  assert.equal(res.sent, 50_000);
  let batches = 0;
  let overruns = 0;
  r.on('overrun', () => {
    overruns++;
    r.close();
  });
  r.on('datagrams', () => batches++);
  await waitFor('the overrun callback (which closes the socket)', () => r.isClosed, { timeoutMs: 5000 });
  // The batch of that wake-up would be delivered right after the overrun, in the same callback from C++.
  await turn();
  assert.equal(overruns, 1);
  assert.equal(batches, 0, 'the batch of the same wake-up is not delivered after close');
  assert.equal(r.isClosed, true);
});

test('removing the last datagrams listener stops receiving; adding one resumes with what queued', async (t) => {
  const r = open();
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  const got: Datagram[] = [];
  const onBatch = (b: Datagram[]): void => void got.push(...b);
  r.on('datagrams', onBatch);
  w.send(message(1), { portId: r.portId });
  await waitFor('datagram 1', () => got.length, { timeoutMs: 5000, until: (n) => n >= 1 });
  assert.equal(got.length, 1);
  r.off('datagrams', onBatch);
  w.send(message(2), { portId: r.portId });
  // Not received: datagram 2 stays in r's kernel queue (Rmem in /proc/net/netlink), read by nobody.
  await waitFor(`datagram 2 queued unread at port ${r.portId}`, () => queuedBytes(r.portId), { timeoutMs: 5000, until: (n) => n > 0 });
  await turn();
  assert.equal(got.length, 1);
  assert.ok(queuedBytes(r.portId) > 0, 'still queued, unread');
  r.on('datagrams', onBatch);
  await waitFor('datagram 2 once a listener is back', () => got.length, { timeoutMs: 5000, until: (n) => n >= 2 });
  assert.deepEqual(
    got.map((d) => d.data.readUInt32LE(8)),
    [1, 2],
  );
});

test('100 open/receive/close cycles leak no fd and no poll handle', async () => {
  const base = await settledStats();
  const fds = fdCount();
  for (let i = 0; i < 100; i++) {
    const s = open({ groups: bit(G.a) });
    s.on('datagrams', () => undefined);
    s.close();
  }
  await turn();
  assert.equal(fdCount(), fds);
  assert.deepEqual(loadBinding().stats(), base);
});

const WORKER_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { NetlinkSocket } = require(workerData.index);
const a = NetlinkSocket.open({ protocol: 2 });
const b = NetlinkSocket.open({ protocol: 2 });
b.on('datagrams', (batch) => {
  parentPort.postMessage({ text: batch[0].data.toString(), from: batch[0].portId, a: a.portId });
  a.close();
  if (workerData.leaveOpen) {
    // Leave b open and receiving: worker teardown must release it.
    parentPort.postMessage({ done: true });
  } else {
    b.close();
  }
});
a.send(Buffer.from('hello from a worker'), { portId: b.portId });
`;

function runWorker(leaveOpen: boolean): Promise<{ messages: Record<string, unknown>[]; code: number }> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_SRC, { eval: true, workerData: { index: ADDON_INDEX, leaveOpen } });
    const messages: Record<string, unknown>[] = [];
    w.on('message', (m: Record<string, unknown>) => {
      messages.push(m);
      if (m.done) void w.terminate();
    });
    w.on('error', reject);
    w.on('exit', (code) => resolve({ messages, code }));
  });
}

test('the addon works inside a worker_thread', async () => {
  const { messages, code } = await runWorker(false);
  assert.equal(code, 0);
  assert.equal(messages.length, 1);
  assert.equal(messages[0].text, 'hello from a worker');
  assert.equal(messages[0].from, messages[0].a);
});

test('a worker terminated with a receiving socket open tears down cleanly', async () => {
  const base = await settledStats();
  const { messages, code } = await runWorker(true);
  assert.equal(code, 1, 'terminate() exits a worker with code 1');
  assert.equal(messages[0].text, 'hello from a worker');
  await turn();
  assert.deepEqual(loadBinding().stats(), base, 'the worker environment cleanup freed its socket');
});

const MANY_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { NetlinkSocket } = require(workerData.index);
const socks = [];
for (let i = 0; i < 20; i++) {
  const s = NetlinkSocket.open({ protocol: 2, groups: 1 << 20 });
  if (i % 2) s.on('datagrams', () => {});
  socks.push(s);
}
socks[3].close();
if (workerData.mode === 'exit') process.exit(0);
if (workerData.mode === 'unref') for (const s of socks) s.unref();
parentPort.postMessage('ready');
`;

test('workers ending by process.exit(), naturally (unref) or terminate() free all their sockets', async () => {
  const base = await settledStats();
  const codes = await Promise.all(
    ['exit', 'unref', 'terminate'].map(
      (mode) =>
        new Promise<[string, number]>((resolve, reject) => {
          const w = new Worker(MANY_SRC, { eval: true, workerData: { index: ADDON_INDEX, mode } });
          w.on('message', () => {
            if (mode === 'terminate') void w.terminate();
          });
          w.on('error', reject);
          w.on('exit', (code) => resolve([mode, code]));
        }),
    ),
  );
  assert.deepEqual(codes, [
    ['exit', 0],
    ['unref', 0],
    ['terminate', 1],
  ]);
  assert.deepEqual(await settledStats(), base);
});

const FLOODED_SRC = `
const { parentPort, workerData } = require('node:worker_threads');
const { NetlinkSocket } = require(workerData.index);
const s = NetlinkSocket.open({ protocol: 2, groups: workerData.groups, receiveBufferBytes: 1 << 20 });
let n = 0;
s.on('datagrams', (b) => {
  n += b.length;
  if (n > 1000 && !globalThis.told) { globalThis.told = true; parentPort.postMessage('receiving'); }
});
s.on('overrun', () => {});
parentPort.postMessage('ready');
`;

test('terminating workers in the middle of a flood: no crash, nothing leaked', async () => {
  const base = await settledStats();
  for (let i = 0; i < 10; i++) {
    const code = await new Promise<number>((resolve, reject) => {
      const w = new Worker(FLOODED_SRC, { eval: true, workerData: { index: ADDON_INDEX, groups: bit(G.flood) } });
      let sender: Promise<unknown> | null = null;
      w.on('message', (m) => {
        if (m === 'ready') sender = flood(100_000, 0, bit(G.flood));
        else void w.terminate();
      });
      w.on('error', reject);
      w.on('exit', (c) => void (sender ?? Promise.resolve()).then(() => resolve(c)));
    });
    assert.equal(code, 1);
  }
  assert.deepEqual(await settledStats(), base);
});

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  ms: number;
}

function startChild(src: string, timeoutMs: number): { done: Promise<ChildResult>; stdout: () => string } {
  const t0 = Date.now();
  const p = spawn(process.execPath, ['-e', src], { env: { ...process.env, ADDON_INDEX } });
  let stderr = '';
  let stdout = '';
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise<ChildResult>((resolve) => {
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout, ms: Date.now() - t0 });
    });
  });
  return { done, stdout: () => stdout };
}

const child = (src: string, timeoutMs: number): Promise<ChildResult> => startChild(src, timeoutMs).done;

const PRELUDE = `const { NetlinkSocket } = require(process.env.ADDON_INDEX);`;

test('the process exits cleanly with open sockets: no listener, unref()ed listener, process.exit', async () => {
  const runs = await Promise.all([
    child(
      `${PRELUDE} const s = NetlinkSocket.open({ protocol: 2, groups: 1 << 20 }); s.send(Buffer.alloc(16), { portId: s.portId });`,
      5000,
    ),
    child(`${PRELUDE} const s = NetlinkSocket.open({ protocol: 2, groups: 1 << 20 }); s.on('datagrams', () => {}); s.unref();`, 5000),
    child(
      `${PRELUDE} const s = NetlinkSocket.open({ protocol: 2 }); s.on('datagrams', () => {}); setTimeout(() => process.exit(0), 50);`,
      5000,
    ),
    child(
      `const { Worker } = require('node:worker_threads');
       new Worker(${JSON.stringify(WORKER_SRC)}, { eval: true, workerData: { index: process.env.ADDON_INDEX, leaveOpen: true } })
         .on('message', (m) => { if (m.done) process.exit(0); });`,
      5000,
    ),
  ]);
  for (const r of runs) {
    assert.equal(r.signal, null, `killed: ${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.ok(r.ms < 5000);
  }
});

test('a receiving socket keeps the process alive until it is closed, then it exits 0', async (t) => {
  const w = open();
  t.after(() => w.close());
  const c = startChild(
    `${PRELUDE}
     const s = NetlinkSocket.open({ protocol: 2 });
     s.on('datagrams', (b) => { process.stdout.write('got ' + b[0].data.toString() + '\\n'); s.close(); });
     process.stdout.write(String(s.portId) + '\\n');`,
    10_000,
  );
  const port = await waitFor("the child's port id on its stdout", () => Number.parseInt(c.stdout().split('\n')[0], 10) || 0, {
    timeoutMs: 5000,
    until: (n) => n > 0,
  });
  assert.ok(port > 0, 'child printed its port id');
  // Time is what is tested: still alive after 700 ms with nothing to do but receive.
  await sleep(700);
  w.send(Buffer.from('bye'), { portId: port });
  const r = await c.done;
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /got bye/);
  assert.ok(r.ms >= 700, `exited after ${r.ms} ms while still receiving`);
});

// NetlinkSocket's own logic over an injected fake binding (as bindings-cpp's
// tests inject a fake poller), plus what happens when a listener throws in
// the real addon.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  NetlinkError,
  NetlinkSocket,
  ffs,
  splitBatch,
  type NativeBatchCallback,
  type NativeBinding,
  type NativeHandle,
} from '../../addon/index';
import type { Datagram, OverrunEvent } from '../../addon/types';
import { ADDON_INDEX } from './support/netlink';

class FakeHandle implements NativeHandle {
  static last: FakeHandle;
  calls: string[] = [];
  sendResult = 0;
  onBatch: NativeBatchCallback | null = null;
  bindError: Error | null = null;
  constructor(
    readonly protocol: number,
    readonly maxDatagramBytes: number,
  ) {
    FakeHandle.last = this;
  }
  bind(portId: number, groups: number): void {
    this.calls.push(`bind ${portId} ${groups}`);
    if (this.bindError) throw this.bindError;
  }
  localPortId(): number {
    return 4242;
  }
  addMembership(g: number): void {
    this.calls.push(`add ${g}`);
  }
  dropMembership(g: number): void {
    this.calls.push(`drop ${g}`);
  }
  listMemberships(): number[] {
    return [1];
  }
  setReceiveBuffer(b: number): number {
    this.calls.push(`rcvbuf ${b}`);
    return b * 2;
  }
  setNoEnobufs(on: boolean): void {
    this.calls.push(`noenobufs ${on}`);
  }
  setPassCred(on: boolean): void {
    this.calls.push(`passcred ${on}`);
  }
  send(_d: Uint8Array, portId: number, groups: number): number {
    this.calls.push(`send ${portId} ${groups}`);
    return this.sendResult;
  }
  drops(): number {
    return 0;
  }
  start(cb: NativeBatchCallback): void {
    this.calls.push('start');
    this.onBatch = cb;
  }
  stop(): void {
    this.calls.push('stop');
    this.onBatch = null;
  }
  ref(): void {
    this.calls.push('ref');
  }
  unref(): void {
    this.calls.push('unref');
  }
  close(): void {
    this.calls.push('close');
  }
}

const fake: NativeBinding = {
  NetlinkHandle: FakeHandle,
  stats: () => ({ openSockets: 0, livePollHandles: 0 }),
};

function fakeSocket(opts: Partial<Parameters<typeof NetlinkSocket.open>[0]> = {}): [NetlinkSocket, FakeHandle] {
  const s = NetlinkSocket.open({ protocol: 2, ...opts }, fake);
  return [s, FakeHandle.last];
}

test('ffs() is the 1-based lowest set bit of a 32-bit mask', () => {
  assert.equal(ffs(0), 0);
  assert.equal(ffs(1), 1);
  assert.equal(ffs(0b1010), 2);
  assert.equal(ffs(0x80000000), 32);
  assert.equal(ffs(0xffffffff), 1);
  assert.equal(ffs(-2), 2); // as a uint32: 0xfffffffe
});

test('open applies options before bind, and closes the handle when bind fails', () => {
  const [s, h] = fakeSocket({ portId: 7, groups: 3, receiveBufferBytes: 1000, noEnobufs: true, passCredentials: true });
  assert.deepEqual(h.calls, ['rcvbuf 1000', 'noenobufs true', 'passcred true', 'bind 7 3']);
  assert.equal(s.portId, 4242);
  assert.equal(h.maxDatagramBytes, 65536);

  const nativeErr = Object.assign(new Error('bind protocol 2 port 7 groups 0x0: address already in use'), {
    code: 'EADDRINUSE',
    errno: -98,
    syscall: 'bind',
  });
  const open = (): NetlinkSocket =>
    NetlinkSocket.open(
      { protocol: 2 },
      {
        ...fake,
        NetlinkHandle: class extends FakeHandle {
          constructor(p: number, m: number) {
            super(p, m);
            this.bindError = nativeErr;
          }
        },
      },
    );
  assert.throws(open, (err: unknown) => {
    assert.ok(err instanceof NetlinkError);
    assert.equal(err.code, 'EADDRINUSE');
    assert.equal(err.errno, -98);
    assert.equal(err.syscall, 'bind');
    assert.equal(err.message, nativeErr.message);
    return true;
  });
  assert.equal(FakeHandle.last.calls.at(-1), 'close');
});

test('send maps the native result: delivered, no-kernel-endpoint only for groups with port 0, else throws', () => {
  const [s, h] = fakeSocket();
  h.sendResult = 10;
  assert.deepEqual(s.send(Buffer.alloc(10), { portId: 5, groups: 0b1100 }), { broadcastGroup: 3, unicast: 'delivered' });
  h.sendResult = -111;
  assert.deepEqual(s.send(Buffer.alloc(10), { groups: 0b1100 }), { broadcastGroup: 3, unicast: 'no-kernel-endpoint' });
  assert.throws(() => s.send(Buffer.alloc(10)), { code: 'ECONNREFUSED', errno: -111, syscall: 'sendto' });
  assert.throws(
    () => s.send(Buffer.alloc(10), { portId: 9, groups: 1 }),
    (err: unknown) => {
      assert.ok(err instanceof NetlinkError);
      assert.equal(err.code, 'ECONNREFUSED');
      assert.equal(err.broadcastGroup, 1);
      assert.equal(err.message, 'sendto port 9 groups 0x1: connection refused');
      return true;
    },
  );
  h.sendResult = -11;
  assert.throws(
    () => s.send(Buffer.alloc(10), { portId: 9 }),
    (err: unknown) => {
      assert.ok(err instanceof NetlinkError);
      assert.equal(err.code, 'EAGAIN');
      assert.equal(err.broadcastGroup, undefined);
      return true;
    },
  );
  h.sendResult = -90;
  assert.throws(() => s.send(Buffer.alloc(10), { groups: 1 }), { code: 'EMSGSIZE' });
});

test('receiving starts with the first datagrams listener and stops with the last', () => {
  const [s, h] = fakeSocket();
  const a = (): void => undefined;
  const b = (): void => undefined;
  s.on('overrun', () => undefined);
  assert.ok(!h.calls.includes('start'));
  s.on('datagrams', a);
  s.on('datagrams', b);
  assert.equal(h.calls.filter((c) => c === 'start').length, 1);
  s.off('datagrams', a);
  assert.ok(!h.calls.includes('stop'));
  s.off('datagrams', b);
  assert.equal(h.calls.at(-1), 'stop');
  s.unref();
  s.ref();
  s.close();
  s.close();
  s.ref();
  assert.deepEqual(h.calls.slice(-3), ['unref', 'ref', 'close']);
});

test('a native batch becomes Datagrams; drops become overrun deltas, wrapping at 2^32', () => {
  const [s, h] = fakeSocket();
  const batches: Datagram[][] = [];
  const overruns: OverrunEvent[] = [];
  const order: string[] = [];
  s.on('overrun', (o) => {
    overruns.push(o);
    order.push('overrun');
  });
  s.on('datagrams', (b) => {
    batches.push(b);
    order.push('datagrams');
  });
  const cb = h.onBatch;
  assert.ok(cb);
  const bytes = Buffer.from('abcdefgh');
  // stored, real, port, group, flags, uid
  const meta = new Uint32Array([3, 3, 10, 0, 0, 0, 5, 900, 11, 33, 1 | 2, 1000]);
  cb(bytes, meta, 2, 5, 0);
  assert.deepEqual(order, ['overrun', 'datagrams']);
  assert.deepEqual(overruns, [{ lost: 5, totalDrops: 5 }]);
  assert.deepEqual(batches[0], [
    { data: Buffer.from('abc'), length: 3, portId: 10, group: 0, truncated: false },
    { data: Buffer.from('defgh'), length: 900, portId: 11, group: 33, truncated: true, uid: 1000 },
  ]);
  // A wake-up with no new drops (an ENOBUFS the drain consumed, say) tells nothing new: no event.
  cb(null, null, 0, 5, 0);
  assert.equal(overruns.length, 1);
  cb(null, null, 0, 0xfffffffe, 0);
  cb(null, null, 0, 3, 0);
  assert.deepEqual(overruns.slice(1), [
    { lost: 0xfffffff9, totalDrops: 0xfffffffe },
    { lost: 5, totalDrops: 3 },
  ]);
});

test('a receive error goes to the error listener, or becomes a warning when there is none', async () => {
  const [s, h] = fakeSocket();
  s.on('datagrams', () => undefined);
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
  h.onBatch?.(null, null, 0, 0, 12);
  const w = await warned;
  assert.equal(w.name, 'NetlinkError');
  assert.match(w.message, /recvmmsg on protocol 2 port 4242: not enough memory/);
  const errors: NetlinkError[] = [];
  s.on('error', (e) => errors.push(e));
  h.onBatch?.(null, null, 0, 0, 12);
  assert.equal(errors[0].code, 'ENOMEM');
  assert.equal(errors[0].syscall, 'recvmmsg');
  // Nothing is delivered after close, even if the native side calls late.
  s.close();
  let after = 0;
  s.on('datagrams', () => after++);
  h.onBatch?.(Buffer.from('x'), new Uint32Array([1, 1, 1, 0, 0, 0]), 1, 0, 0);
  assert.equal(after, 0);
});

test('splitBatch views the packed bytes without copying', () => {
  const bytes = Buffer.from('0123456789');
  const [a, b] = splitBatch(bytes, new Uint32Array([4, 4, 1, 0, 0, 0, 6, 6, 2, 0, 0, 0]), 2);
  assert.equal(a.data.buffer, bytes.buffer);
  assert.equal(b.data.toString(), '456789');
});

test('a throwing datagrams listener is an uncaughtException, never an abort', async () => {
  const src = `
    const { NetlinkSocket } = require(process.env.ADDON_INDEX);
    const a = NetlinkSocket.open({ protocol: 2 });
    const b = NetlinkSocket.open({ protocol: 2 });
    let n = 0;
    b.on('datagrams', () => { n++; throw new Error('listener bug ' + n); });
    if (process.env.HANDLE === '1') {
      process.on('uncaughtException', (err) => {
        process.stdout.write('caught ' + err.message + '\\n');
        if (n === 2) { a.close(); b.close(); }
        else a.send(Buffer.alloc(16), { portId: b.portId });
      });
    }
    a.send(Buffer.alloc(16), { portId: b.portId });
  `;
  const run = (handle: string): Promise<{ code: number | null; signal: string | null; out: string; err: string }> =>
    new Promise((resolve) => {
      const p = spawn(process.execPath, ['-e', src], { env: { ...process.env, ADDON_INDEX, HANDLE: handle } });
      let out = '';
      let err = '';
      p.stdout.on('data', (c: Buffer) => (out += c.toString()));
      p.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
      p.on('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, out, err });
      });
    });
  const handled = await run('1');
  assert.equal(handled.signal, null);
  assert.equal(handled.code, 0, handled.err);
  assert.equal(handled.out, 'caught listener bug 1\ncaught listener bug 2\n');
  const unhandled = await run('0');
  assert.equal(unhandled.signal, null, 'must not abort');
  assert.equal(unhandled.code, 1);
  assert.match(unhandled.err, /Error: listener bug 1/);
  assert.doesNotMatch(unhandled.err, /terminate called|Napi::Error/);
});

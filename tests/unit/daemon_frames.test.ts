import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRelayed, encodeTick, DnlMsgType } from '../../addon/dummy_netlink';
import { eventFrame, messageFrame, messageTail } from '../../daemon/frames';
import type { RxMessage } from '../../daemon/netlink/message';

function rx(payload: Buffer, over: Partial<RxMessage> = {}): RxMessage {
  return {
    group: 2,
    portId: 4242,
    header: { length: 16 + payload.length, type: 0x10, flags: 0x5, seq: 7, pid: 99 },
    payload,
    bytes: Buffer.alloc(0),
    truncated: false,
    receivedAt: Date.UTC(2026, 0, 1),
    fromBridge: false,
    ...over,
  };
}

test('a message frame: n first, then the once-encoded tail', () => {
  const m = rx(Buffer.from('héllo'));
  const frame = JSON.parse(messageFrame(3, messageTail(m, false))) as Record<string, unknown>;
  assert.deepEqual(frame, {
    type: 'message',
    n: 3,
    group: 2,
    portId: 4242,
    nlmsgPid: 99,
    seq: 7,
    msgType: 16,
    typeNumber: 16,
    flags: ['REQUEST', 'ACK'],
    encoding: 'utf8',
    data: 'héllo',
    length: 6,
    receivedAt: '2026-01-01T00:00:00.000Z',
  });
});

test('the tail is computed once per message and shared by every client', () => {
  const m = rx(Buffer.from('x'));
  const t1 = messageTail(m, false);
  // Changed under it, the message still gives the text made for the first client: it is not made again.
  m.payload.write('y');
  assert.equal(messageTail(m, false), t1);
  assert.match(messageTail(rx(Buffer.from('z')), false), /"data":"z"/, 'the next message has its own');
  assert.match(messageTail(m, true), /"msgType":"DATA"/, 'nor is it taken for the text of another protocol');
  assert.equal(Object.keys(m).includes('tail'), false, "nothing is written into the bus's object");
  const a = JSON.parse(messageFrame(1, t1)) as { n: number; data: string };
  const b = JSON.parse(messageFrame(900, t1)) as { n: number; data: string };
  assert.equal(a.n, 1);
  assert.equal(b.n, 900);
  assert.equal(a.data, b.data);
});

test('invalid UTF-8 goes as base64; dummy types by name; TICK decoded', () => {
  const bin = JSON.parse(messageFrame(1, messageTail(rx(Buffer.from([0xc3, 0x28])), false))) as Record<string, unknown>;
  assert.equal(bin.encoding, 'base64');
  assert.equal(bin.data, Buffer.from([0xc3, 0x28]).toString('base64'));
  const dataOnDummy = JSON.parse(messageFrame(1, messageTail(rx(Buffer.from('a')), true))) as Record<string, unknown>;
  assert.equal(dataOnDummy.msgType, 'DATA');
  const tick = encodeTick({ counter: 5n, timeNs: 1767225600123456789n, group: 3, periodMs: 1000 });
  const t = JSON.parse(
    messageFrame(1, messageTail(rx(tick, { header: { length: 40, type: DnlMsgType.TICK, flags: 0, seq: 5, pid: 0 } }), true)),
  ) as Record<string, unknown>;
  assert.equal(t.msgType, 'TICK');
  assert.deepEqual(t.tick, { counter: 5, timeNs: '1767225600123456789', time: '2026-01-01T00:00:00.123Z', group: 3, periodMs: 1000 });
  const ctl = JSON.parse(
    messageFrame(1, messageTail(rx(Buffer.alloc(0), { header: { length: 16, type: 3, flags: 2, seq: 1, pid: 0 } }), false)),
  ) as Record<string, unknown>;
  assert.equal(ctl.msgType, 'DONE');
  assert.deepEqual(ctl.flags, ['MULTI']);
});

test('uid, truncated and fromBridge appear only when true/known', () => {
  const f = JSON.parse(
    messageFrame(1, messageTail(rx(Buffer.from('a'), { uid: 1000, truncated: true, fromBridge: true }), false)),
  ) as Record<string, unknown>;
  assert.equal(f.uid, 1000);
  assert.equal(f.truncated, true);
  assert.equal(f.fromBridge, true);
});

test('event frames', () => {
  assert.deepEqual(JSON.parse(eventFrame('dropped', 12, { count: 3 })), { type: 'dropped', n: 12, count: 3 });
});

test('RELAYED from the kernel shows relayedFrom (the requester the module wrote) and the data after that header', () => {
  const payload = encodeRelayed({ portId: 4321, uid: 1000 }, Buffer.from('relayed-hi'));
  const type = DnlMsgType.RELAYED;
  const fromKernel = JSON.parse(
    messageFrame(
      1,
      messageTail(rx(payload, { portId: 0, group: 0, header: { length: 16 + payload.length, type, flags: 0, seq: 1, pid: 4321 } }), true),
    ),
  ) as Record<string, unknown>;
  assert.equal(fromKernel.msgType, 'RELAYED');
  assert.deepEqual(fromKernel.relayedFrom, { portId: 4321, uid: 1000 });
  assert.equal(fromKernel.data, 'relayed-hi');
  assert.equal(fromKernel.length, 10);
  // The same type from a user port is not trusted: shown as it came.
  const forged = JSON.parse(
    messageFrame(
      1,
      messageTail(rx(payload, { portId: 777, header: { length: 16 + payload.length, type, flags: 0, seq: 1, pid: 0 } }), true),
    ),
  ) as Record<string, unknown>;
  assert.equal(forged.relayedFrom, undefined);
  assert.equal(forged.length, payload.length);
  // Too short for its header: said so, not thrown.
  const short = JSON.parse(
    messageFrame(1, messageTail(rx(Buffer.from([1, 2, 3]), { portId: 0, header: { length: 19, type, flags: 0, seq: 1, pid: 0 } }), true)),
  ) as Record<string, unknown>;
  assert.equal(short.relayedError, 'payload shorter than struct dnl_relayed');
});

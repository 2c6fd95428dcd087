import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DNL_STATS_COUNTERS,
  DnlMsgType,
  DnlPayloadError,
  decodeBcast,
  decodeRelay,
  decodeRelayed,
  decodeStats,
  decodeTick,
  dnlTypeName,
  encodeBcast,
  encodeRelay,
  encodeRelayed,
  encodeStats,
  encodeTick,
  type DnlStats,
} from '../../addon/dummy_netlink';

test('RELAY payload round-trips with the reserved word zero', () => {
  const buf = encodeRelay(4242, Buffer.from('hi'));
  assert.equal(buf.readUInt32LE(4), 0);
  const { portId, data } = decodeRelay(buf);
  assert.equal(portId, 4242);
  assert.equal(data.toString(), 'hi');
});

test('BCAST payload carries its group list then the data', () => {
  const buf = encodeBcast([2, 40, 64], Buffer.from('yo'));
  assert.equal(buf.length, 8 + 12 + 2);
  assert.deepEqual(decodeBcast(buf), { groups: [2, 40, 64], data: Buffer.from('yo') });
});

test('a BCAST payload whose count exceeds its bytes is refused', () => {
  const buf = Buffer.alloc(12);
  buf.writeUInt32LE(5, 0);
  assert.throws(() => decodeBcast(buf), DnlPayloadError);
});

test('TICK and STATS round-trip', () => {
  const tick = { counter: 7n, timeNs: 1_700_000_000_000_000_000n, group: 2, periodMs: 1000 };
  assert.deepEqual(decodeTick(encodeTick(tick)), tick);
  const stats = { version: 1, unit: 25 } as DnlStats;
  DNL_STATS_COUNTERS.forEach((name, i) => (stats[name] = BigInt(i * 10 + 1)));
  assert.deepEqual(decodeStats(encodeStats(stats)), stats);
});

test('short payloads throw DnlPayloadError naming the struct', () => {
  assert.throws(() => decodeRelay(Buffer.alloc(7)), /dnl_relay needs 8 bytes/);
  assert.throws(() => decodeTick(Buffer.alloc(23)), /dnl_tick/);
  assert.throws(() => decodeStats(Buffer.alloc(10)), /dnl_stats/);
});

test('type names for dummy_netlink types, null for others', () => {
  assert.equal(dnlTypeName(0x13), 'TICK');
  assert.equal(dnlTypeName(0x99), null);
});

test('RELAYED from port 0: who asked, then the data', () => {
  const payload = encodeRelayed({ portId: 4242, uid: 65534 }, Buffer.from('hi'));
  assert.equal(payload.length, 8 + 2);
  assert.deepEqual(decodeRelayed(DnlMsgType.RELAYED, 0, payload), {
    relayedFrom: { portId: 4242, uid: 65534 },
    data: Buffer.from('hi'),
  });
});

test("RELAYED from a user port, or another type, is not taken as the module's", () => {
  const payload = encodeRelayed({ portId: 1, uid: 0 }, Buffer.from('forged'));
  assert.equal(decodeRelayed(DnlMsgType.RELAYED, 777, payload), null);
  assert.equal(decodeRelayed(DnlMsgType.DATA, 0, payload), null);
});

test('a RELAYED from port 0 shorter than struct dnl_relayed is refused', () => {
  assert.throws(() => decodeRelayed(DnlMsgType.RELAYED, 0, Buffer.alloc(7)), /dnl_relayed needs 8 bytes/);
});

test('a version-1 STATS reply (64 bytes) decodes, the newer counters as 0n', () => {
  const v2 = { version: 2, unit: 25 } as DnlStats;
  DNL_STATS_COUNTERS.forEach((name, i) => (v2[name] = BigInt(i + 1)));
  const v1 = encodeStats(v2).subarray(0, 64);
  const got = decodeStats(v1);
  assert.equal(got.errors, 7n);
  assert.equal(got.once_full, 0n);
  assert.equal(got.once_senders, 0n);
  assert.throws(() => decodeStats(v1.subarray(0, 63)), /dnl_stats/);
});

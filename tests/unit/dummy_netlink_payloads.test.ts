import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DNL_STATS_COUNTERS,
  DnlPayloadError,
  decodeBcast,
  decodeRelay,
  decodeStats,
  decodeTick,
  dnlTypeName,
  encodeBcast,
  encodeRelay,
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

// Floods from the C sender into small receive buffers: the process survives
// and every message is either received or counted lost, exactly.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Datagram, OverrunEvent } from '../../addon/types';
import type { NetlinkSocket } from '../../addon/socket';
import { G, bit, buildFlood, flood, isOurs, open, quiet } from './support/netlink';

before(() => {
  buildFlood();
});

interface Tally {
  received: number;
  foreign: number;
  lost: number;
  overruns: OverrunEvent[];
  batches: number;
  largestBatch: number;
  truncated: number;
}

function tally(sock: NetlinkSocket): Tally {
  const t: Tally = { received: 0, foreign: 0, lost: 0, overruns: [], batches: 0, largestBatch: 0, truncated: 0 };
  sock.on('datagrams', (batch: Datagram[]) => {
    t.batches++;
    t.largestBatch = Math.max(t.largestBatch, batch.length);
    for (const d of batch) {
      if (isOurs(d)) t.received++;
      else t.foreign++;
      if (d.truncated) t.truncated++;
    }
  });
  sock.on('overrun', (ev) => {
    t.overruns.push(ev);
    t.lost += ev.lost;
  });
  return t;
}

/** Largest gap between 5 ms ticks while `work` runs. */
async function maxTimerLag<T>(work: Promise<T>): Promise<{ result: T; maxLagMs: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 5);
    last = now;
  }, 5);
  try {
    const result = await work;
    return { result, maxLagMs };
  } finally {
    clearInterval(iv);
  }
}

test('1,000,000 broadcasts at full speed into a 64 KiB buffer: received + lost == sent, exactly', async (t) => {
  const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024 });
  t.after(() => reader.close());
  const tl = tally(reader);

  const { result, maxLagMs } = await maxTimerLag(flood(1_000_000, 0, bit(G.flood)));
  await quiet(reader, 300);
  const drops = reader.drops();
  t.diagnostic(
    `flood: sent=${result.sent} in ${result.seconds.toFixed(3)}s received=${tl.received} lost=${tl.lost} ` +
      `drops()=${drops} overrunEvents=${tl.overruns.length} batches=${tl.batches} largestBatch=${tl.largestBatch} ` +
      `foreign=${tl.foreign} maxTimerLag=${maxLagMs.toFixed(1)}ms`,
  );

  assert.equal(result.failed, 0);
  assert.equal(result.sent, 1_000_000);
  assert.equal(tl.foreign, 0, 'another program broadcast on our group during the flood');
  assert.equal(tl.received + tl.lost, result.sent);
  assert.equal(tl.lost, drops, 'overrun events add up to the socket drop counter');
  assert.ok(tl.lost > 0, 'a 64 KiB buffer cannot hold a 1M flood');
  assert.ok(tl.received > 0);
  assert.ok(tl.overruns.every((o) => o.lost > 0));
  assert.equal(tl.truncated, 0);
  // The socket still works after the flood.
  const writer = open();
  t.after(() => writer.close());
  const got = new Promise<Datagram[]>((resolve) => reader.once('datagrams', resolve));
  writer.send(Buffer.from('after the flood'), { portId: reader.portId });
  const [d] = await got;
  assert.equal(d.data.toString(), 'after the flood');
  assert.equal(d.portId, writer.portId);
});

test('ENOBUFS from a flooded small buffer is reported as an overrun with the exact count', async (t) => {
  const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024 });
  t.after(() => reader.close());
  // No listener yet: the kernel queues until the buffer is full, then drops
  // and sets ENOBUFS, which the first read after the listener attaches meets.
  const result = await flood(100_000, 0, bit(G.flood));
  assert.equal(result.sent, 100_000);
  const before = reader.drops();
  assert.ok(before > 0, `drop counter ${before} after flooding a 64 KiB buffer`);
  const tl = tally(reader);
  await quiet(reader, 200);
  t.diagnostic(`100k into 64 KiB with no reader: received=${tl.received} lost=${tl.lost} (FACTS: 157 + 99,843)`);
  assert.equal(tl.overruns.length, 1);
  assert.deepEqual(tl.overruns[0], { lost: before, totalDrops: before });
  assert.equal(tl.received + tl.lost, 100_000);
});

test('with noEnobufs the loss is still counted from SO_MEMINFO', async (t) => {
  const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024, noEnobufs: true });
  t.after(() => reader.close());
  const tl = tally(reader);
  const result = await flood(200_000, 0, bit(G.flood));
  await quiet(reader, 200);
  t.diagnostic(`noEnobufs: sent=${result.sent} received=${tl.received} lost=${tl.lost}`);
  assert.equal(tl.received + tl.lost, result.sent);
  assert.equal(tl.lost, reader.drops());
});

test('the event loop stays responsive while a large buffer is flooded', async (t) => {
  // A big buffer means long drains; the per-wake bound keeps timers running.
  const reader = open({ groups: bit(G.flood), receiveBufferBytes: 32 * 1024 * 1024 });
  t.after(() => reader.close());
  const tl = tally(reader);
  const { result, maxLagMs } = await maxTimerLag(flood(1_000_000, 0, bit(G.flood)));
  await quiet(reader, 300);
  t.diagnostic(
    `32 MiB buffer: sent=${result.sent} received=${tl.received} lost=${tl.lost} largestBatch=${tl.largestBatch} ` +
      `maxTimerLag=${maxLagMs.toFixed(1)}ms`,
  );
  assert.equal(tl.received + tl.lost, result.sent);
  assert.ok(tl.largestBatch <= 8192, `batch of ${tl.largestBatch} exceeds the per-wake bound`);
  assert.ok(maxLagMs < 250, `timers stalled for ${maxLagMs} ms`);
});

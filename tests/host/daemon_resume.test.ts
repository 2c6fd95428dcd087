// Resumable streams: cursors on frames, /recent, ?since= after a killed
// WebSocket (under load: every message once, in order), gaps for evicted
// cursors and for cursors of another daemon run, the ring under its cap.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TAG,
  bit,
  call,
  connect,
  sleep,
  startDaemon,
  wwNlk,
  buildTools,
  type Daemon,
  type Frame,
  type WsClient,
} from './support/daemon_harness';
import WebSocket from 'ws';
import { Sender, indexOf } from './support/flood_sender';
import { waitFor as waitForProbe } from '../support/wait';

const G1 = 24;
const G2 = 25;
const G3 = 26;

function messages(c: WsClient, prefix: string): Frame[] {
  return c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === 'message' && indexOf(prefix, f.data) >= 0);
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  await waitForProbe(what, pred, { timeoutMs: ms, intervalMs: 10 });
}

/** Waits until the ring holds `data` for `mask` (GET /recent): what a resume replays is there. */
async function inRing(d: Daemon, mask: number, data: string): Promise<void> {
  await waitForProbe(
    `${data} in the ring of mask ${mask}`,
    async () => ((await call(d, 'GET', `/groups/${mask}/recent?limit=5`)).json as { messages: Frame[] }).messages.map((m) => m.data),
    { timeoutMs: 5000, until: (data_) => data_.includes(data) },
  );
}

describe('resume', () => {
  let d: Daemon;
  let sender: Sender;
  before(async () => {
    buildTools();
    d = await startDaemon({ config: { ringMessages: 100000 } });
    sender = new Sender();
  });
  after(async () => {
    sender.close();
    await d.close();
  });

  test('messages carry cursors of one epoch; /recent returns the last N as JSON', async () => {
    const { client } = await connect(d, `/groups/${bit(G1) | bit(G2)}`);
    try {
      const prefix = `${TAG}-rec`;
      await wwNlk(['-g', String(bit(G1) | bit(G2)), '-m', `${prefix}-0`]);
      await sender.run(G1, prefix, 1, 5);
      await waitFor(() => messages(client, prefix).length === 5, 3000, '5 messages');
      const got = messages(client, prefix);
      const seqs = got.map((f) => {
        const [epoch, seq] = String(f.cursor).split('-');
        assert.equal(epoch, d.bus.ring.epoch);
        return Number(seq);
      });
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], 'cursors increase');
      const r = await call(d, 'GET', `/groups/${bit(G1) | bit(G2)}/recent?limit=3`);
      assert.equal(r.status, 200);
      const body = r.json as { epoch: string; newest: string; messages: Frame[] };
      assert.equal(body.epoch, d.bus.ring.epoch);
      assert.deepEqual(
        body.messages.map((m) => m.data),
        [`${prefix}-2`, `${prefix}-3`, `${prefix}-4`],
      );
      assert.equal(body.messages[2].cursor, got[4].cursor);
      const all = (await call(d, 'GET', `/groups/${bit(G1) | bit(G2)}/recent?limit=100`)).json as { messages: Frame[] };
      assert.equal(all.messages.filter((m) => m.data === `${prefix}-0`).length, 1, 'the copy on the second group is not listed twice');
      assert.equal((await call(d, 'GET', `/groups/${bit(G1)}/recent?limit=0`)).status, 400);
      assert.equal((await call(d, 'GET', `/groups/${bit(G1)}/recent?limit=abc`)).status, 400);
    } finally {
      await client.close();
    }
  });

  test('a WebSocket killed mid-stream under load resumes with ?since=: every message once, in order', async () => {
    const prefix = `${TAG}-kill`;
    const N = 4000;
    const first = await connect(d, `/groups/${bit(G2)}`);
    const sending = sender.run(G2, prefix, 0, N);
    await waitFor(() => messages(first.client, prefix).length >= 600, 5000, '600 messages');
    first.client.ws.terminate();
    await first.client.closed;
    const before = messages(first.client, prefix);
    const last = before[before.length - 1];
    // The scenario: the sender goes on for a while with no stream open (what it sent meanwhile comes from the ring).
    await sleep(30);
    const second = await connect(d, `/groups/${bit(G2)}?since=${String(last.cursor)}`);
    try {
      await sending;
      await waitFor(
        () => {
          const m = messages(second.client, prefix);
          return m.length > 0 && indexOf(prefix, m[m.length - 1].data) === N - 1;
        },
        10000,
        'the last message',
      );
      const idx = [...before, ...messages(second.client, prefix)].map((f) => indexOf(prefix, f.data));
      assert.equal(idx.length, N, `delivered ${idx.length} of ${N} (dups or losses at the seam)`);
      idx.forEach((v, i) => assert.equal(v, i));
      assert.ok(!second.client.all.some((f) => !Buffer.isBuffer(f) && ['gap', 'dropped', 'overrun'].includes(f.type)), 'no gap event');
      const ns = second.client.all.filter((f): f is Frame => !Buffer.isBuffer(f)).map((f) => f.n);
      ns.forEach((n, i) => assert.equal(n, i), 'the per-stream n has no hole');
    } finally {
      await second.client.close();
    }
  });

  test('?since= resumes across a disconnect on two groups, one copy per message', async () => {
    const prefix = `${TAG}-two`;
    const mask = bit(G1) | bit(G3);
    const a = await connect(d, `/groups/${mask}`);
    await wwNlk(['-g', String(mask), '-m', `${prefix}-0`]);
    const m0 = await a.client.next((f) => f.data === `${prefix}-0`);
    await a.client.close();
    // Sent while nobody listens: the groups linger, the ring keeps them.
    await wwNlk(['-g', String(mask), '-m', `${prefix}-1`]);
    await wwNlk(['-g', String(bit(G3)), '-m', `${prefix}-2`]);
    await inRing(d, mask, `${prefix}-2`);
    const b = await connect(d, `/groups/${mask}?since=${String(m0.cursor)}`);
    try {
      // A live end marker after the replay: a second copy of a replayed one would have come before it.
      const end = `${TAG}-end-two`;
      await wwNlk(['-g', String(mask), '-m', end]);
      await b.client.next((f) => f.data === end, 5000, 'the live end marker after the replay');
      assert.deepEqual(
        messages(b.client, prefix).map((f) => f.data),
        [`${prefix}-1`, `${prefix}-2`],
      );
    } finally {
      await b.client.close();
    }
  });

  test('a bad cursor is 400; one of this epoch not yet issued is 400', async () => {
    await assert.rejects(connect(d, `/groups/${bit(G1)}?since=nope`), (e: Error & { status?: number }) => e.status === 400);
    await assert.rejects(
      connect(d, `/groups/${bit(G1)}?since=${d.bus.ring.epoch}-999999999`),
      (e: Error & { status?: number; body?: string }) => e.status === 400 && /ahead/.test(e.body ?? ''),
    );
  });
});

describe('gaps', () => {
  test('a backlog far over the client buffer is replayed at its pace, live traffic meanwhile: all once, in order, nothing dropped', async () => {
    const d = await startDaemon({ config: { wsBufferBytes: 16 * 1024 } });
    const sender = new Sender();
    try {
      const prefix = `${TAG}-pace`;
      const a = await connect(d, `/groups/${bit(G3)}`);
      await sender.run(G3, prefix, 0, 1);
      const m0 = await a.client.next((f) => f.data === `${prefix}-0`);
      await a.client.close();
      await sender.run(G3, prefix, 1, 3001); // ≈ 1 MB of frames while away
      await inRing(d, bit(G3), `${prefix}-3000`);
      const b = await connect(d, `/groups/${bit(G3)}?since=${String(m0.cursor)}`);
      try {
        await sender.run(G3, prefix, 3001, 4001, 20); // live, while the backlog is still being written
        await waitFor(
          () => {
            const m = messages(b.client, prefix);
            return m.length > 0 && indexOf(prefix, m[m.length - 1].data) === 4000;
          },
          10000,
          'the last message',
        );
        const idx = messages(b.client, prefix).map((f) => indexOf(prefix, f.data));
        assert.equal(idx.length, 4000);
        idx.forEach((v, i) => assert.equal(v, i + 1));
        assert.ok(!b.client.all.some((f) => !Buffer.isBuffer(f) && ['gap', 'dropped'].includes(f.type)), 'nothing dropped, no gap');
      } finally {
        await b.client.close();
      }
    } finally {
      sender.close();
      await d.close();
    }
  });

  test('a cursor older than the ring gets a gap with the count lost, then the held messages and the live stream', async () => {
    const d = await startDaemon({ config: { ringMessages: 10 } });
    const sender = new Sender();
    try {
      const prefix = `${TAG}-gap`;
      const a = await connect(d, `/groups/${bit(G1)}`);
      await sender.run(G1, prefix, 0, 1);
      const m0 = await a.client.next((f) => f.data === `${prefix}-0`);
      await sender.run(G1, prefix, 1, 31);
      await waitFor(() => messages(a.client, prefix).length === 31, 3000, '31 messages');
      await a.client.close();
      const b = await connect(d, `/groups/${bit(G1)}?since=${String(m0.cursor)}`);
      try {
        const gap = await b.client.next((f) => f.type === 'gap');
        assert.equal(gap.reason, 'evicted');
        assert.equal(gap.since, m0.cursor);
        // 30 later messages, 10 held: 20 lost (more if other host traffic on the group took ring slots).
        assert.ok(Number(gap.lost) >= 20, `lost ${String(gap.lost)}`);
        const seq = (c: unknown): number => Number(String(c).split('-')[1]);
        assert.equal(seq(gap.resumeFrom), seq(m0.cursor) + Number(gap.lost) + 1, 'resumeFrom is right after what was lost');
        await sender.run(G1, prefix, 31, 32);
        await waitFor(() => messages(b.client, prefix).some((f) => f.data === `${prefix}-31`), 3000, 'held + live');
        const idx = messages(b.client, prefix).map((f) => indexOf(prefix, f.data));
        const from = 31 - idx.length + 1;
        assert.ok(from >= 21 && idx.length >= 2, `held ${idx.join(',')}`);
        assert.deepEqual(
          idx,
          Array.from({ length: idx.length }, (_, i) => from + i),
          'the held ones in order, then the live one',
        );
        if (from === 21) assert.equal(gap.resumeFrom, messages(b.client, prefix)[0].cursor);
      } finally {
        await b.client.close();
      }
    } finally {
      sender.close();
      await d.close();
    }
  });

  test('a cursor from before a restart gets an epoch gap, then the live stream', async () => {
    const prefix = `${TAG}-epoch`;
    const d1 = await startDaemon();
    let cursor: string;
    try {
      const a = await connect(d1, `/groups/${bit(G3)}`);
      await wwNlk(['-g', String(bit(G3)), '-m', `${prefix}-0`]);
      cursor = String((await a.client.next((f) => f.data === `${prefix}-0`)).cursor);
      await a.client.close();
    } finally {
      await d1.close();
    }
    const d2 = await startDaemon();
    try {
      assert.notEqual(d2.bus.ring.epoch, d1.bus.ring.epoch);
      const b = await connect(d2, `/groups/${bit(G3)}?since=${cursor}`);
      try {
        const gap = await b.client.next((f) => f.type === 'gap');
        assert.equal(gap.reason, 'epoch');
        assert.equal(gap.lost, null);
        await wwNlk(['-g', String(bit(G3)), '-m', `${prefix}-1`]);
        const m = await b.client.next((f) => f.type === 'message');
        assert.equal(m.data, `${prefix}-1`);
        assert.ok(String(m.cursor).startsWith(`${d2.bus.ring.epoch}-`));
      } finally {
        await b.client.close();
      }
    } finally {
      await d2.close();
    }
  });

  test('the ring stays under its memory cap during a 1-minute flood; /metrics counts it', async (t) => {
    const cap = 256 * 1024;
    // NLBRIDGE_TEST_FLOOD_MS shortens it while developing; the suite floods for a minute.
    const floodMs = Number(process.env.NLBRIDGE_TEST_FLOOD_MS ?? 60000);
    const d = await startDaemon({ config: { ringMaxBytes: cap, ringMessages: 1000000 } });
    const sender = new Sender();
    // A subscriber that only counts (the frame-keeping test client would hold the whole flood).
    const ws = new WebSocket(`${d.wsBase}/groups/${bit(G2)}`);
    let frames = 0;
    ws.on('message', () => void frames++);
    await new Promise((r) => ws.once('open', r));
    try {
      const prefix = `${TAG}-cap-${'p'.repeat(200)}`;
      let max = 0;
      const watch = setInterval(() => (max = Math.max(max, d.bus.ring.bytes)), 5);
      const seq0 = d.bus.ring.last;
      const t0 = Date.now();
      let i = 0;
      let rssAt10: number | null = null;
      while (Date.now() - t0 < floodMs) {
        await sender.run(G2, prefix, i, i + 500);
        i += 500;
        if (rssAt10 === null && Date.now() - t0 > floodMs / 6) rssAt10 = process.memoryUsage().rss;
      }
      await waitFor(() => d.bus.ring.last >= seq0 + i, 10000, 'the flood to arrive');
      clearInterval(watch);
      const rssGrowth = process.memoryUsage().rss - (rssAt10 ?? 0);
      t.diagnostic(`flooded ${i} messages, ${frames} frames to the subscriber, ring max ${max} bytes, rss growth ${rssGrowth}`);
      assert.ok(i > floodMs, `flooded ${i} messages in ${floodMs} ms`);
      assert.ok(frames > i / 2, `the subscriber got ${frames} frames`);
      assert.ok(max > cap / 2 && max <= cap, `ring held at most ${max} bytes (cap ${cap})`);
      // A ring that kept what it evicts (datagram buffers, cached JSON) would grow by ~300 bytes a message.
      assert.ok(rssGrowth < 128 * 1024 * 1024, `rss grew ${rssGrowth} bytes over ${(i * 5) / 6} messages`);
      const metrics = (await call(d, 'GET', '/metrics')).text;
      assert.match(metrics, new RegExp(`^nlbridge_ring_max_bytes ${cap}$`, 'm'));
      const held = Number(/^nlbridge_ring_bytes (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(held > 0 && held <= cap);
      const evicted = Number(/^nlbridge_ring_evicted_messages_total\{reason="bytes"\} (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(evicted > i / 2, `evicted ${evicted}`);
    } finally {
      ws.close();
      sender.close();
      await d.close();
    }
  });
});

// daemon/fleet/publisher.ts over a fake link: counted as published only once
// a flush is answered, taken back and resent when the link goes first, a
// bounded buffer whose drops are counted and told once per episode, a bound
// on what is handed over unconfirmed, max_payload; runs of what waits in one
// NATS message, kept as formed across a reconnect. And the subject rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RxMessage } from '../../daemon/netlink/message';
import { FLUSH_INTERVAL_MS } from '../../daemon/fleet/cadence';
import { FleetPublisher, type Link } from '../../daemon/fleet/publisher';
import { RATE_WINDOW_MS, RateWindow } from '../../daemon/fleet/rate_window';
import { defaultHostId, isSubjectToken, parsePublishGroups } from '../../daemon/fleet/subjects';

function msg(i: number, size = 16, group = 2, portId = 7): RxMessage {
  const bytes = Buffer.alloc(size, i);
  bytes.writeUInt32LE(size, 0);
  bytes.writeUInt32LE(i, 8);
  return {
    group,
    portId,
    header: { length: size, type: 16, flags: 0, seq: i, pid: 0 },
    payload: bytes.subarray(16),
    bytes,
    truncated: false,
    receivedAt: 0,
    fromBridge: false,
    cursor: `e-${i}`,
  };
}

interface Sent {
  subject: string;
  n: string | null;
  /** The run's count header, null when absent (one message). */
  k: string | null;
  msgId: string | null;
  event: Record<string, unknown> | null;
  data: Buffer;
}

/** A NATS message as the tests compare them: an event, "n" for one message, "n×k" for a run. */
const label = (s: Sent): string | Record<string, unknown> => s.event ?? (s.k === null ? s.n! : `${s.n}×${s.k}`);

class FakeLink implements Link {
  sent: Sent[] = [];
  flushes: { resolve(): void; reject(e: Error): void }[] = [];
  constructor(
    private readonly max: number | null = null,
    /** As the client does above max_payload (this fake checks the payload only). */
    private readonly throwsAbove = Infinity,
  ) {}
  publish(subject: string, data: Uint8Array, headers: readonly (readonly [string, string])[] | null): void {
    if (data.length > this.throwsAbove) throw new Error('max_payload exceeded');
    this.sent.push({
      subject,
      n: headers?.find(([k]) => k === 'n')?.[1] ?? null,
      k: headers?.find(([k]) => k === 'k')?.[1] ?? null,
      data: Buffer.from(data),
      msgId: headers?.find(([k]) => k === 'Nats-Msg-Id')?.[1] ?? null,
      event: headers ? null : (JSON.parse(Buffer.from(data).toString()) as Record<string, unknown>),
    });
  }
  flush(): Promise<void> {
    return new Promise((resolve, reject) => this.flushes.push({ resolve, reject }));
  }
  maxPayload(): number | null {
    return this.max;
  }
  /** Answers every flush, also those the publisher sends after an answer (which wait up to FLUSH_INTERVAL_MS). */
  async answer(): Promise<void> {
    for (;;) {
      while (this.flushes.length) {
        this.flushes.shift()!.resolve();
        await new Promise((r) => setImmediate(r));
      }
      await sleep(FLUSH_INTERVAL_MS + 5);
      if (this.flushes.length === 0) return;
    }
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('held without a link; published only when a flush after it is answered', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  for (let i = 1; i <= 3; i++) p.deliver(msg(i));
  p.flush();
  assert.deepEqual(p.counts(), {
    published: 0,
    dropped: { buffer: 0, 'max-payload': 0, 'host-id': 0 },
    heldMessages: 3,
    heldBytes: 3 * (16 + 96),
  });
  const link = new FakeLink();
  p.linkUp(link);
  assert.deepEqual(
    link.sent.map((s) => [s.subject, label(s)]),
    [['nlbridge.A.g.2', '1×3']],
    'what waited goes as one run',
  );
  assert.equal(p.counts().published, 0, 'not before the PONG');
  await link.answer();
  assert.equal(p.counts().published, 3);
  assert.equal(p.counts().heldMessages, 0);
  assert.equal(p.counts().heldBytes, 0);
});

test('the link going before the answer: the unconfirmed are resent after the reconnect, counted once', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const first = new FakeLink();
  p.linkUp(first);
  p.deliver(msg(1));
  p.deliver(msg(2));
  p.flush();
  assert.deepEqual(first.sent.map(label), ['1×2']);
  p.linkDown();
  first.flushes.shift()!.reject(new Error('connection disconnected'));
  await tick();
  p.deliver(msg(3));
  p.flush();
  assert.equal(first.sent.length, 1, 'nothing handed over while down');
  const second = new FakeLink();
  p.linkUp(second);
  assert.deepEqual(second.sent.map(label), ['1×2', '3'], 'resent in order, the run as it was formed (not 1×3)');
  await second.answer();
  assert.equal(p.counts().published, 3);
});

test('--nats-jetstream: each message carries Nats-Msg-Id <prefix><n>, the same on its resend after a reconnect (JetStream stores it once); none without', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20, msgIdPrefix: 'A-0badcafe-' });
  const first = new FakeLink();
  p.linkUp(first);
  p.deliver(msg(1));
  p.deliver(msg(2));
  p.flush();
  p.linkDown();
  first.flushes.shift()!.reject(new Error('connection disconnected'));
  await tick();
  const second = new FakeLink();
  p.linkUp(second);
  assert.deepEqual(
    first.sent.map((s) => [label(s), s.msgId]),
    [['1×2', 'A-0badcafe-1']],
  );
  assert.deepEqual(
    second.sent.map((s) => [label(s), s.msgId]),
    [['1×2', 'A-0badcafe-1']],
    'a resend keeps its id',
  );
  const plain = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const link = new FakeLink();
  plain.linkUp(link);
  plain.deliver(msg(1));
  plain.flush();
  assert.equal(link.sent[0].msgId, null, 'no JetStream, no header (each costs throughput)');
});

test('standing aside (another daemon holds the host id): what waited, the unconfirmed and every message meanwhile are dropped as host-id; the notice goes first when it holds again', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const first = new FakeLink();
  p.linkUp(first);
  p.deliver(msg(1));
  p.flush();
  await first.answer();
  p.deliver(msg(2));
  p.flush(); // handed over, its flush not answered yet
  p.linkDown();
  p.deliver(msg(3)); // waiting
  p.standAside(true);
  for (let i = 4; i <= 6; i++) p.deliver(msg(i));
  p.flush();
  p.overrun(9);
  assert.deepEqual(p.counts(), { published: 1, dropped: { buffer: 0, 'max-payload': 0, 'host-id': 5 }, heldMessages: 0, heldBytes: 0 });
  first.flushes.shift()?.reject(new Error('connection disconnected'));
  await tick();
  p.standAside(false);
  const second = new FakeLink();
  p.linkUp(second);
  p.deliver(msg(7));
  p.flush();
  await second.answer();
  assert.deepEqual(second.sent.map(label), [{ type: 'dropped', host: 'A', count: 5, from: 2, to: 6, reasons: { 'host-id': 5 } }, '7']);
  assert.equal(p.counts().published, 2);
  assert.equal(p.counts().heldMessages, 0);
});

test('a full buffer drops the newest, counted, with one notice per episode giving the n range', async () => {
  const size = 16 + 96;
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 3 * size });
  for (let i = 1; i <= 10; i++) p.deliver(msg(i));
  assert.deepEqual(p.counts().dropped, { buffer: 7, 'max-payload': 0, 'host-id': 0 });
  const link = new FakeLink();
  p.linkUp(link);
  await link.answer();
  p.deliver(msg(11));
  p.flush();
  await link.answer();
  assert.deepEqual(link.sent.map(label), ['1×3', { type: 'dropped', host: 'A', count: 7, from: 4, to: 10, reasons: { buffer: 7 } }, '11']);
  assert.equal(p.counts().published + p.counts().dropped.buffer, 11);
});

test('no more than the unflushed bound is handed over before an answer', async () => {
  const size = 16 + 96;
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20, unflushedBytes: 2 * size });
  const link = new FakeLink();
  p.linkUp(link);
  for (let i = 1; i <= 5; i++) p.deliver(msg(i));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1×2'], 'a run stops at the bound');
  await link.answer();
  assert.deepEqual(link.sent.map(label), ['1×2', '3×2', '5']);
  await link.answer();
  assert.equal(p.counts().published, 5);
});

test('at most one flush per interval: a hand-over soon after an answer waits for it, not for the data; half the unflushed bound, a reconnect and close() flush at once', async () => {
  const size = 16 + 96;
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20, unflushedBytes: 8 * size, flushIntervalMs: 200 });
  const link = new FakeLink();
  p.linkUp(link);
  p.deliver(msg(1));
  p.flush();
  assert.equal(link.flushes.length, 1, 'the first flush goes at once');
  link.flushes.shift()!.resolve();
  await tick();
  assert.equal(p.counts().published, 1);
  const handedAt = performance.now();
  p.deliver(msg(2));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1', '2'], 'handed over at the end of its batch, without waiting');
  assert.equal(link.flushes.length, 0, 'its flush waits for the interval');
  // Half the unflushed bound (4 of 8 messages' bytes) does not wait.
  for (let i = 3; i <= 5; i++) p.deliver(msg(i));
  p.flush();
  assert.equal(link.flushes.length, 1, 'half the bound reached: flushed at once');
  link.flushes.shift()!.resolve();
  await tick();
  assert.equal(p.counts().published, 5);
  p.deliver(msg(6));
  p.flush();
  assert.equal(link.flushes.length, 0);
  for (let i = 0; i < 200 && link.flushes.length === 0; i++) await sleep(5);
  assert.equal(link.flushes.length, 1, 'the timed flush came');
  assert.ok(performance.now() - handedAt >= 195, 'the timed flush came after the interval');
  // The link going: the unconfirmed come back, and the next connection's first flush does not wait.
  p.linkDown();
  link.flushes.shift()!.reject(new Error('connection disconnected'));
  await tick();
  const second = new FakeLink();
  p.linkUp(second);
  assert.deepEqual(second.sent.map(label), ['6']);
  assert.equal(second.flushes.length, 1, 'a new connection flushes at once');
  second.flushes.shift()!.resolve();
  await tick();
  p.deliver(msg(7));
  p.close();
  assert.equal(second.flushes.length, 1, 'close() flushes at once');
  second.flushes.shift()!.resolve();
  await tick();
  assert.equal(p.counts().published, 7);
  assert.equal(p.counts().heldMessages, 0);
});

test('--nats-linger-ms: the first batch after a quiet spell goes at once, later ones within the linger as one run; half the unflushed bound, a reconnect and close() do not wait', async () => {
  const size = 16 + 96;
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20, unflushedBytes: 8 * size, lingerMs: 200 });
  const link = new FakeLink();
  p.linkUp(link);
  p.deliver(msg(1));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1'], 'nothing was handed over before: no wait');
  const handedAt = performance.now();
  p.deliver(msg(2));
  p.flush();
  p.deliver(msg(3));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1'], 'two batches soon after: they wait');
  for (let i = 0; i < 200 && link.sent.length === 1; i++) await sleep(5);
  assert.deepEqual(link.sent.map(label), ['1', '2×2'], 'both went in one run, once the linger was over');
  assert.ok(performance.now() - handedAt >= 195, 'not before the linger');
  // Half the unflushed bound waiting (4 of 8 messages' bytes) goes at once.
  for (let i = 4; i <= 7; i++) p.deliver(msg(i));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1', '2×2', '4×4'], 'half the bound waiting: handed over at once');
  await link.answer();
  assert.equal(p.counts().published, 7);
  // A batch within the linger waits; the link going and coming back hands it over at once.
  p.deliver(msg(8));
  p.flush();
  assert.equal(link.sent.length, 3);
  p.linkDown();
  const second = new FakeLink();
  p.linkUp(second);
  assert.deepEqual(second.sent.map(label), ['8'], 'a new connection does not wait');
  // And close() does not either.
  p.deliver(msg(9));
  p.flush();
  assert.equal(second.sent.length, 1, 'within the linger');
  p.close();
  assert.deepEqual(second.sent.map(label), ['8', '9'], 'close() hands over at once');
  await second.answer();
  assert.equal(p.counts().published, 9);
  assert.equal(p.counts().heldMessages, 0);
});

test('--nats-linger-above: batches slower than the rate go at once; a batch at the rate waits for the linger', async () => {
  const p = new FleetPublisher({
    host: 'A',
    groups: [2],
    bufferBytes: 1 << 24,
    unflushedBytes: 1 << 20,
    lingerMs: 1000,
    lingerAboveRate: 1000,
  });
  const link = new FakeLink();
  p.linkUp(link);
  // One message every 12 ms or more (a 10 ms window closes at each): at most 84 msg/s.
  for (let i = 1; i <= 5; i++) {
    p.deliver(msg(i));
    p.flush();
    assert.equal(link.sent.length, i, `batch ${i}, below the rate, went at once`);
    await sleep(12);
  }
  // 1,000 in one batch: over 1,000 msg/s in the window it closes unless this process stalled a second (then the linger is over too).
  for (let i = 6; i <= 1005; i++) p.deliver(msg(i));
  const batchAt = performance.now();
  p.flush();
  assert.equal(link.sent.length, 5, 'at the rate, within the linger of the last hand-over: held');
  for (let i = 0; i < 400 && link.sent.length === 5; i++) await sleep(5);
  assert.ok(performance.now() - batchAt >= 900, 'not before the linger');
  assert.deepEqual(link.sent.slice(5).map(label), ['6×1000']);
});

test('RateWindow: busy by the rate of the last window of at least 10 ms; 0 is always busy', () => {
  assert.equal(new RateWindow(0, () => 0).busy(0), true);
  let t = 1000;
  const w = new RateWindow(1000, () => t);
  assert.equal(w.busy(3), false, 'no window closed yet');
  t += RATE_WINDOW_MS - 1;
  assert.equal(w.busy(8), false, 'still none');
  t += 1;
  assert.equal(w.busy(10), true, '10 in 10 ms: 1,000 msg/s');
  t += 5;
  assert.equal(w.busy(10), true, 'the last whole window counts until the next closes');
  t += 5;
  assert.equal(w.busy(19), false, '9 in 10 ms: 900 msg/s');
  t += 1000;
  assert.equal(w.busy(519), false, 'after a quiet second, a burst of 500 closes a window of 1,000 ms: 500 msg/s');
  t += 10;
  assert.equal(w.busy(1019), true, 'and the next window sees the burst: 500 in 10 ms');
});

test('--nats-linger-ms with a buffer smaller than the unflushed bound: half the buffer waiting goes at once, so the linger causes no drop', async () => {
  const size = 16 + 96;
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 4 * size, unflushedBytes: 64 * size, lingerMs: 1000 });
  const link = new FakeLink();
  p.linkUp(link);
  p.deliver(msg(1));
  p.flush();
  await link.answer();
  assert.equal(p.counts().published, 1);
  p.deliver(msg(2));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1'], 'one message waits within the linger');
  p.deliver(msg(3));
  p.flush();
  assert.deepEqual(link.sent.map(label), ['1', '2×2'], 'half the buffer waiting: handed over at once');
  await link.answer();
  assert.equal(p.counts().published, 3);
  assert.equal(p.counts().dropped.buffer, 0);
});

test('a message over max_payload is dropped, counted and told; overruns add up in one notice', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const link = new FakeLink(100);
  p.overrun(3);
  p.overrun(4);
  p.linkUp(link);
  p.deliver(msg(1, 200));
  p.deliver(msg(2, 20));
  p.flush();
  await link.answer();
  assert.deepEqual(link.sent.map(label), [
    { type: 'overrun', host: 'A', lost: 7 },
    { type: 'dropped', host: 'A', count: 1, from: 1, to: 1, reasons: { 'max-payload': 1 } },
    '2',
  ]);
  assert.deepEqual(p.counts().dropped, { buffer: 0, 'max-payload': 1, 'host-id': 0 });
  assert.equal(p.counts().published, 1);
});

test('a run refused over max_payload while a buffer-full episode is open: two notices, each its own range (merged, one said from 113 to 11)', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1200 + 96 + 2 * (20 + 96) });
  p.deliver(msg(1, 1200, 2, 7));
  for (let i = 2; i <= 5; i++) p.deliver(msg(i, 20, 2, 8));
  assert.deepEqual(p.counts().dropped, { buffer: 2, 'max-payload': 0, 'host-id': 0 });
  const link = new FakeLink(1000);
  p.linkUp(link);
  await link.answer();
  assert.deepEqual(link.sent.map(label), [
    { type: 'dropped', host: 'A', count: 1, from: 1, to: 1, reasons: { 'max-payload': 1 } },
    '2×2',
    { type: 'dropped', host: 'A', count: 2, from: 4, to: 5, reasons: { buffer: 2 } },
  ]);
});

test('a notice larger than a tiny max_payload is skipped, not retried forever at the head of the queue', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const link = new FakeLink(60, 60);
  p.linkUp(link);
  p.deliver(msg(1, 200));
  p.flush();
  p.deliver(msg(2, 20));
  p.flush();
  await link.answer();
  assert.deepEqual(link.sent.map(label), ['2'], 'the notice (about 90 bytes) could not go; the next message did');
  assert.equal(p.counts().published, 1);
  assert.equal(p.counts().heldMessages, 0);
});

/** The netlink messages of a payload, split by their nlmsg_len at NLMSG_ALIGN: [length, seq] each. */
function split(data: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let at = 0; at + 16 <= data.length; at += (data.readUInt32LE(at) + 3) & ~3)
    out.push([data.readUInt32LE(at), data.readUInt32LE(at + 8)]);
  return out;
}

test('a run: what waits of one group and one sender, back to back at NLMSG_ALIGN, n of the first and k; another group, sender, a cut message or a notice ends it', async () => {
  const p = new FleetPublisher({ host: 'A', groups: [2, 4], bufferBytes: 1 << 20 });
  const cut = msg(6, 30, 4, 8);
  cut.truncated = true;
  cut.header.length = 64;
  for (const m of [msg(1, 17), msg(2, 20), msg(3, 16, 4), msg(4, 16, 4, 8), msg(5, 16, 4, 8), cut, msg(7, 16, 4, 8)]) p.deliver(m);
  p.overrun(1);
  p.deliver(msg(8, 16, 4, 8));
  const link = new FakeLink();
  p.linkUp(link);
  assert.deepEqual(
    link.sent.map((s) => [s.subject, label(s)]),
    [
      ['nlbridge.A.g.2', '1×2'],
      ['nlbridge.A.g.4', '3'],
      ['nlbridge.A.g.4', '4×2'],
      ['nlbridge.A.g.4', '6'],
      ['nlbridge.A.g.4', '7'],
      ['nlbridge.A.events', { type: 'overrun', host: 'A', lost: 1 }],
      ['nlbridge.A.g.4', '8'],
    ],
  );
  const run = link.sent[0];
  assert.equal(run.data.length, 20 + 20, 'the 17-byte message padded to 20, then the 20-byte one');
  assert.deepEqual(split(run.data), [
    [17, 1],
    [20, 2],
  ]);
  assert.deepEqual(run.data.subarray(17, 20), Buffer.alloc(3), 'padding is zeros');
  assert.equal(link.sent[3].data.length, 30, 'a cut message goes alone, as received');
  await link.answer();
  assert.equal(p.counts().published, 8);
});

test('a run fits max_payload with room for its headers, and 64 KiB; one formed for a larger max_payload is dropped, counted and told', async () => {
  const small = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  const link = new FakeLink(512 + 100);
  small.linkUp(link);
  for (let i = 1; i <= 5; i++) small.deliver(msg(i, 40));
  small.flush();
  assert.deepEqual(link.sent.map(label), ['1×2', '3×2', '5'], '100 bytes of room: two 40-byte messages a run');
  // Formed before any server said its max_payload (NATS's default, 1 MiB, is assumed): too big for this one.
  const early = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 1 << 20 });
  for (let i = 1; i <= 3; i++) early.deliver(msg(i, 40));
  early.deliver(msg(4, 40, 4));
  const tight = new FakeLink(512 + 100);
  early.linkUp(tight);
  assert.deepEqual(tight.sent.map(label), [{ type: 'dropped', host: 'A', count: 3, from: 1, to: 3, reasons: { 'max-payload': 3 } }, '4']);
  await tight.answer();
  assert.deepEqual(early.counts(), { published: 1, dropped: { buffer: 0, 'max-payload': 3, 'host-id': 0 }, heldMessages: 0, heldBytes: 0 });
  const big = new FleetPublisher({ host: 'A', groups: [2], bufferBytes: 64 << 20, unflushedBytes: 64 << 20 });
  const wide = new FakeLink(1 << 20);
  for (let i = 1; i <= 3000; i++) big.deliver(msg(i, 64));
  big.linkUp(wide);
  assert.ok(wide.sent.length > 1);
  for (const s of wide.sent) assert.ok(s.data.length <= 64 * 1024, `${s.data.length} bytes`);
  assert.equal(
    wide.sent.reduce((t, s) => t + Number(s.k ?? 1), 0),
    3000,
  );
});

test('subjects: host ids, the default from a hostname, --nats-publish', () => {
  for (const ok of ['A', 'host-1', 'web_02']) assert.ok(isSubjectToken(ok), ok);
  for (const bad of ['a.b', 'a*', 'a>', 'a b', '', 'tab\t', 'nul\u0000', 'del\u007f']) assert.ok(!isSubjectToken(bad), JSON.stringify(bad));
  assert.equal(defaultHostId('web1.example.com'), 'web1');
  assert.deepEqual(parsePublishGroups('10'), [2, 4]);
  assert.deepEqual(parsePublishGroups('0b1010'), [2, 4]);
  assert.deepEqual(parsePublishGroups('2,4'), [2, 4]);
  assert.deepEqual(parsePublishGroups('2,'), [2]);
  assert.deepEqual(parsePublishGroups('40, 2'), [2, 40]);
  assert.throws(() => parsePublishGroups('0'), /selects no group/);
  assert.throws(() => parsePublishGroups(','), /empty/);
  assert.throws(() => parsePublishGroups('2,x'), /"x" is not a group number/);
});

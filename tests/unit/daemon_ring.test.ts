// The resume ring: cursors, bounds (count, age, bytes), since() with gaps, recent().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CatchUp } from '../../daemon/netlink/catch_up';
import type { GapInfo, RxMessage } from '../../daemon/netlink/message';
import { CursorError, ENTRY_OVERHEAD, Ring, parseCursor } from '../../daemon/netlink/ring';
import { encodeMessage } from '../../addon/codec';
import { waitFor } from '../support/wait';
import { messageFrame, messageTail } from '../../daemon/frames';

function msg(group: number, seq: number, text: string, at = 1000, portId = 77): RxMessage {
  const bytes = encodeMessage({ type: 16, flags: 1, seq, pid: portId, payload: Buffer.from(text) });
  const header = { length: bytes.length, type: 16, flags: 1, seq, pid: portId };
  return {
    group,
    portId,
    header,
    payload: bytes.subarray(16, 16 + text.length),
    bytes: bytes.subarray(0, 16 + text.length),
    truncated: false,
    receivedAt: at,
    fromBridge: false,
  };
}

const big = { maxMessages: 1e6, maxAgeMs: 1e9, maxBytes: 1e12 };

test('cursors are EPOCH-SEQ from one sequence; the frame carries it; the kept bytes are a copy', () => {
  const r = new Ring(big, 'abcd1234');
  const src = msg(2, 5, 'hello');
  const a = r.append(src, 1000);
  const b = r.append(msg(4, 6, 'x'), 1000);
  assert.equal(a.cursor, 'abcd1234-1');
  assert.equal(b.cursor, 'abcd1234-2');
  assert.deepEqual(parseCursor('abcd1234-2'), { epoch: 'abcd1234', seq: 2 });
  assert.equal(a, src, 'the message routed is the one received, with its cursor');
  src.bytes.fill(0);
  const kept = r.since('abcd1234-0', [2], 1000).messages[0];
  assert.equal(kept.payload.toString(), 'hello', 'the ring does not alias the datagram buffer');
  assert.deepEqual(kept.header, { length: 21, type: 16, flags: 1, seq: 5, pid: 77 });
  assert.equal(kept.cursor, 'abcd1234-1');
  const frame = JSON.parse(messageFrame(1, messageTail(kept, false))) as Record<string, unknown>;
  assert.equal(frame.cursor, 'abcd1234-1');
  assert.equal(frame.data, 'hello');
  assert.throws(() => parseCursor('nope'), CursorError);
  assert.throws(() => parseCursor('ab-1x'), CursorError);
});

test('since: every later message of the groups, one copy each, no gap when covered', () => {
  const r = new Ring(big, 'e1');
  r.append(msg(2, 1, 'a'), 1000);
  r.append(msg(4, 1, 'a'), 1000); // the copy of 'a' on group 4
  r.append(msg(1, 2, 'b'), 1000); // another group
  r.append(msg(2, 3, 'c'), 1000);
  r.append(msg(2, 3, 'c2'), 1000); // same key on the same group: a new message
  const all = r.since('e1-0', [2, 4], 1000);
  assert.equal(all.gap, null);
  assert.deepEqual(
    all.messages.map((m) => m.payload.toString()),
    ['a', 'c', 'c2'],
  );
  const after1 = r.since('e1-1', [2, 4], 1000);
  assert.deepEqual(
    after1.messages.map((m) => [m.group, m.payload.toString()]),
    [
      [2, 'c'],
      [2, 'c2'],
    ],
    'the copy of a on 4 is not new',
  );
  assert.deepEqual(r.since('e1-5', [2], 1000).messages, []);
  assert.throws(() => r.since('e1-6', [2], 1000), /ahead/);
});

test('a cursor older than the ring gets an evicted gap with the exact count; another epoch an epoch gap', () => {
  const r = new Ring({ maxMessages: 3, maxAgeMs: 1e9, maxBytes: 1e12 }, 'e2');
  for (let i = 1; i <= 10; i++) r.append(msg(2, i, `m${i}`), 1000);
  assert.equal(r.size, 3);
  assert.equal(r.evicted.count, 7);
  const s = r.since('e2-2', [2], 1000);
  assert.deepEqual(s.gap, { reason: 'evicted', since: 'e2-2', lost: 5, resumeFrom: 'e2-8' });
  assert.deepEqual(
    s.messages.map((m) => m.payload.toString()),
    ['m8', 'm9', 'm10'],
  );
  assert.equal(r.since('e2-7', [2], 1000).gap, null, 'the cursor just before the oldest is covered');
  const e = r.since('zz-3', [2], 1000);
  assert.deepEqual(e.gap, { reason: 'epoch', since: 'zz-3', lost: null, resumeFrom: 'e2-8' });
  assert.equal(e.messages.length, 3);
});

test('age and bytes bounds; bytes never exceed the cap during a flood', () => {
  const r = new Ring({ maxMessages: 1e6, maxAgeMs: 100, maxBytes: 64 * 1024 }, 'e3');
  r.append(msg(2, 1, 'old', 0), 0);
  r.append(msg(2, 2, 'new', 150), 150);
  assert.equal(r.size, 1);
  assert.equal(r.evicted.age, 1);
  let max = 0;
  const payload = 'x'.repeat(500);
  for (let i = 0; i < 200000; i++) {
    r.append(msg(2, i, payload, 150 + Math.floor(i / 10000)), 150 + Math.floor(i / 10000));
    max = Math.max(max, r.bytes);
  }
  assert.ok(max <= 64 * 1024, `held ${max} bytes`);
  assert.ok(r.evicted.bytes > 199000);
  const per = 516 + ENTRY_OVERHEAD + 1000;
  assert.equal(r.size, Math.floor((64 * 1024) / per));
  assert.equal(r.since(`e3-${r.last - r.size}`, [2], 200).messages.length, r.size, 'still contiguous after compaction');
});

test('recent: the last N of the groups, oldest first, one copy per message', () => {
  const r = new Ring(big, 'e4');
  for (let i = 1; i <= 6; i++) {
    r.append(msg(2, i, `m${i}`), 1000);
    r.append(msg(3, i, `m${i}`), 1000);
    r.append(msg(9, 100 + i, `other${i}`), 1000);
  }
  assert.deepEqual(
    r.recent([2, 3], 3, 1000).map((m) => m.payload.toString()),
    ['m4', 'm5', 'm6'],
  );
  assert.deepEqual(r.recent([9], 100, 1000).length, 6);
  assert.deepEqual(r.recent([5], 10, 1000), []);
});

test('since: a later copy of a message the client already had (before the cursor) is not replayed', () => {
  const r = new Ring(big, 'e5');
  const a = r.append(msg(2, 1, 'a'), 1000);
  r.append(msg(4, 1, 'a'), 1000);
  r.append(msg(4, 2, 'b'), 1000);
  assert.deepEqual(
    r.since(a.cursor!, [2, 4], 1000).messages.map((m) => m.payload.toString()),
    ['b'],
  );
  assert.deepEqual(
    r.since(a.cursor!, [4], 1000).messages.map((m) => m.payload.toString()),
    ['a', 'b'],
    'a subscriber of 4 alone never had it',
  );
});

test('CatchUp: writes only while the client has room, tells a gap once, ends caught up in the tick it reaches the newest', async () => {
  const r = new Ring({ maxMessages: 600, maxAgeMs: 1e9, maxBytes: 1e12 }, 'e6');
  const now = Date.now();
  for (let i = 1; i <= 1000; i++) r.append(msg(2, i, `m${i}`, now), now);
  const sent: string[] = [];
  const gaps: GapInfo[] = [];
  let budget = 100;
  let flushes = 0;
  let stalled = false;
  const target = {
    groups: [2],
    room: () => budget > 0,
    send: (m: { payload: Buffer }) => {
      budget--;
      sent.push(m.payload.toString());
    },
    gap: (g: GapInfo) => gaps.push(g),
    flush: () => void flushes++,
  };
  const c = new CatchUp(r, target as never, 'e6-10', 60000, () => (stalled = true));
  c.pump();
  assert.equal(sent.length, 100, 'stopped at the client limit');
  assert.ok(c.active);
  assert.deepEqual(
    gaps.map((g) => [g.reason, g.lost]),
    [['evicted', 390]],
  );
  budget = 1e9;
  await waitFor('the catch-up done once the client has room', () => !c.active, { timeoutMs: 5000 });
  assert.equal(c.active, false, 'caught up');
  assert.equal(gaps.length, 1, 'the gap is told once');
  assert.deepEqual(
    sent,
    Array.from({ length: 600 }, (_, i) => `m${401 + i}`),
  );
  assert.ok(flushes >= 3);
  assert.equal(stalled, false);
  const stuck = new CatchUp(r, { ...target, room: () => false } as never, 'e6-500', 30, () => (stalled = true));
  stuck.pump();
  await waitFor('the stuck catch-up given up on', () => stalled, { timeoutMs: 5000 });
  assert.equal(stalled, true, 'a client that never drains is given up on');
  assert.equal(stuck.active, false);
});

test('storage: random sizes, bounds and reads agree with a model through arena wraps and growth', () => {
  // Deterministic PRNG (mulberry32): a failure replays.
  let seed = 0x5eed;
  const rand = (): number => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (const opts of [
    { maxMessages: 50, maxAgeMs: 1e9, maxBytes: 1e12 },
    { maxMessages: 1e6, maxAgeMs: 1e9, maxBytes: 200 * 1024 },
    { maxMessages: 3000, maxAgeMs: 40, maxBytes: 4 * 1024 * 1024 },
  ]) {
    const r = new Ring(opts, 'm1');
    const model: { seq: number; text: string; group: number; at: number; size: number }[] = [];
    let seq = 0;
    let held = 0;
    for (let step = 0; step < 6000; step++) {
      const at = step;
      // Mostly small, sometimes a large message (forces wraps and growth).
      const len = rand() < 0.02 ? 1000 + Math.floor(rand() * 60000) : Math.floor(rand() * 200);
      const text = String.fromCharCode(97 + (step % 26)).repeat(len);
      const group = 1 + Math.floor(rand() * 4);
      const m = r.append(msg(group, step, text, at), at);
      seq++;
      assert.equal(m.cursor, `m1-${seq}`);
      const size = 16 + len + ENTRY_OVERHEAD + len * 2;
      model.push({ seq, text, group, at, size });
      held += size;
      while (model.length > 0 && (model.length > opts.maxMessages || held > opts.maxBytes || at - model[0].at > opts.maxAgeMs))
        held -= model.shift()!.size;
      assert.equal(r.size, model.length);
      assert.equal(r.bytes, held);
      if (step % 97 === 0 || step > 5990) {
        const all = r.since('m1-0', [1, 2, 3, 4], at);
        assert.deepEqual(
          all.messages.map((x) => [x.cursor, x.group, x.payload.toString(), x.receivedAt, x.header.seq]),
          model.map((x) => [`m1-${x.seq}`, x.group, x.text, x.at, x.seq - 1]),
          `step ${step}`,
        );
      }
    }
  }
});

test("reads leave out what is over age without dropping it: eviction is on append and evict() (the owner's timer), never on a read", () => {
  const r = new Ring({ maxMessages: 1e6, maxAgeMs: 100, maxBytes: 1e12 }, 'e7');
  r.append(msg(2, 1, 'old', 0), 0);
  r.append(msg(2, 2, 'new', 90), 90);
  assert.deepEqual(
    r.recent([2], 10, 150).map((m) => m.payload.toString()),
    ['new'],
  );
  const s = r.since('e7-0', [2], 150);
  assert.deepEqual(s.gap, { reason: 'evicted', since: 'e7-0', lost: 1, resumeFrom: 'e7-2' });
  assert.deepEqual(
    s.messages.map((m) => m.payload.toString()),
    ['new'],
  );
  assert.equal(r.since('e7-1', [2], 150).gap, null, 'the cursor just before the oldest readable one is covered');
  assert.equal(r.size, 2, 'the reads dropped nothing');
  assert.equal(r.evicted.age, 0);
  r.evict(150);
  assert.equal(r.size, 1);
  assert.equal(r.evicted.age, 1);
  assert.deepEqual(r.since('e7-1', [2], 1000), { gap: { reason: 'evicted', since: 'e7-1', lost: 1, resumeFrom: null }, messages: [] });
  assert.deepEqual(r.recent([2], 10, 1000), []);
  assert.equal(r.size, 1);
});

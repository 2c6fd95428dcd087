// daemon/fleet/watch.ts over a fake NATS connection: one wildcard per host
// (or *), the host's sequence counted over all its groups and only the
// stream's groups delivered, a jump told once as a gap with its range, a
// repeat dropped, a new epoch a new baseline, the publisher's drop notice
// absorbing the jump it explains, connection notices; and ?hosts= parsing.
// Replay (--nats-jetstream) over a fake stream: where reading starts (after
// since, the first held, the end), cursors, a sequence jump as a stream gap,
// re-reading from the next sequence on a new connection.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NatsConnection } from '@nats-io/transport-node';
import { encodeMessage } from '../../addon/codec';
import { waitFor } from '../support/wait';
import type { RxMessage } from '../../daemon/netlink/message';
import {
  FleetWatcher,
  MAX_TRACKED_HOSTS,
  MAX_WATCH_HOSTS,
  cursorOf,
  parseFleetCursor,
  parseHosts,
  streamId,
  type FleetSink,
  type ReplayFrom,
  type WatchReplay,
} from '../../daemon/fleet/watch';

type Callback = (err: Error | null, m: unknown) => void;

class FakeConn {
  subs: { subject: string; callback: Callback; unsubscribed: boolean }[] = [];
  subscribe(subject: string, opts: { callback: Callback }): { unsubscribe(): void } {
    const s = { subject, callback: opts.callback, unsubscribed: false };
    this.subs.push(s);
    return { unsubscribe: () => void (s.unsubscribed = true) };
  }
  /** Delivers to every live subscription whose pattern matches (NATS tokens: * one, no >). */
  publish(subject: string, data: Uint8Array, headers: Record<string, string> | null = null): void {
    const tokens = subject.split('.');
    for (const s of this.subs) {
      const p = s.subject.split('.');
      if (s.unsubscribed || p.length !== tokens.length || !p.every((t, i) => t === '*' || t === tokens[i])) continue;
      s.callback(null, { subject, data, headers: headers ? { get: (k: string) => headers[k] ?? '' } : undefined });
    }
  }
}

/** A client's backlog as a fleet stream's reading is paced by it (always room unless a test fills it). */
const ROOMY = { room: (): boolean => true, stallMs: 10_000, stalled(): void {} };

class Sink implements FleetSink {
  frames: (Record<string, unknown> & { type: string })[] = [];
  /** The client's backlog, as a fraction of its bound. */
  backlog = 0;
  stalls = 0;
  readonly stallMs = 200;
  // Arrow properties, not methods: some tests spread a Sink into another object.
  room = (fraction: number): boolean => this.backlog <= fraction;
  stalled = (): void => void this.stalls++;
  constructor(readonly groups: readonly number[]) {}
  deliver(m: RxMessage): void {
    this.frames.push({ type: 'message', host: m.host, group: m.group, data: m.payload.toString(), portId: m.portId });
  }
  flush(): void {}
  event(type: string, fields: Record<string, unknown>): void {
    this.frames.push({ type, ...fields });
  }
}

function send(c: FakeConn, host: string, group: number, n: number, text: string, epoch = 'e1'): void {
  c.publish(`nlbridge.${host}.g.${group}`, encodeMessage({ type: 16, payload: Buffer.from(text) }), {
    n: String(n),
    c: `${epoch}-${n}`,
    p: '9',
  });
}

/** A run as the publisher sends it: the texts' netlink messages back to back at NLMSG_ALIGN, n of the first, k. */
function sendRun(c: FakeConn, host: string, group: number, n: number, texts: string[], epoch = 'e1'): void {
  c.publish(`nlbridge.${host}.g.${group}`, runBytes(texts), { n: String(n), k: String(texts.length), c: `${epoch}-${n}`, p: '9' });
}

function runBytes(texts: string[]): Buffer {
  return Buffer.concat(texts.map((t) => encodeMessage({ type: 16, payload: Buffer.from(t) })));
}

function watcher(hosts: string[] | null, groups: number[]): { c: FakeConn; sink: Sink; w: FleetWatcher } {
  const c = new FakeConn();
  const sink = new Sink(groups);
  const w = new FleetWatcher({ hosts, groups }, sink);
  w.attach(c as unknown as NatsConnection);
  return { c, sink, w };
}

const shape = (s: Sink): string[] =>
  s.frames.map((f) => (f.type === 'message' ? String(f.data) : `${f.type}:${String(f.reason ?? '')}:${String(f.lost)}`));

test('subscribes to every group and the events of each host (or of *), and unsubscribes on close', () => {
  const { c, w } = watcher(['A', 'B'], [2]);
  assert.deepEqual(
    c.subs.map((s) => s.subject),
    ['nlbridge.A.g.*', 'nlbridge.A.events', 'nlbridge.B.g.*', 'nlbridge.B.events'],
  );
  w.close();
  assert.ok(c.subs.every((s) => s.unsubscribed));
  assert.deepEqual(
    watcher(null, [2]).c.subs.map((s) => s.subject),
    ['nlbridge.*.g.*', 'nlbridge.*.events'],
  );
});

test("the host's sequence counts every group; only the stream's groups are delivered, with host and port", () => {
  const { c, sink } = watcher(null, [2]);
  send(c, 'A', 2, 1, 'a1');
  send(c, 'A', 4, 2, 'a2-g4');
  send(c, 'A', 2, 3, 'a3');
  assert.deepEqual(shape(sink), ['a1', 'a3'], 'no false gap for the message of group 4');
  assert.deepEqual(sink.frames[0], { type: 'message', host: 'A', group: 2, data: 'a1', portId: 9 });
});

test('a jump is one gap with its range, before the message; a repeat is dropped; hosts are counted apart; a new epoch is a new baseline', () => {
  const { c, sink } = watcher(null, [2]);
  send(c, 'A', 2, 1, 'a1');
  send(c, 'B', 2, 40, 'b40');
  send(c, 'A', 2, 4, 'a4');
  send(c, 'A', 2, 4, 'a4-again');
  send(c, 'A', 2, 3, 'a3-late');
  send(c, 'B', 2, 41, 'b41');
  send(c, 'A', 2, 1, 'a-new-run', 'e2');
  send(c, 'A', 2, 2, 'a-new-run-2', 'e2');
  assert.deepEqual(shape(sink), ['a1', 'b40', 'gap:sequence:2', 'a4', 'b41', 'a-new-run', 'a-new-run-2']);
  assert.deepEqual(sink.frames[2], { type: 'gap', reason: 'sequence', host: 'A', lost: 2, from: 2, to: 3 });
});

test("the publisher's drop notice is told once, and a transit loss before it apart", () => {
  const { c, sink } = watcher(['A'], [2]);
  send(c, 'A', 2, 1, 'a1');
  c.publish('nlbridge.A.events', Buffer.from(JSON.stringify({ type: 'dropped', host: 'A', count: 3, from: 4, to: 6 })));
  send(c, 'A', 2, 7, 'a7');
  c.publish('nlbridge.A.events', Buffer.from(JSON.stringify({ type: 'overrun', host: 'A', lost: 5 })));
  c.publish('nlbridge.A.events', Buffer.from('not json'));
  assert.deepEqual(shape(sink), ['a1', 'gap:sequence:2', 'gap:publisher:3', 'a7', 'overrun::5']);
  assert.deepEqual(sink.frames[2], { type: 'gap', reason: 'publisher', host: 'A', lost: 3, from: 4, to: 6 });
  assert.deepEqual(sink.frames[4], { type: 'overrun', host: 'A', lost: 5 });
});

test('a connection notice is a gap of unknown count; a payload shorter than a netlink header is malformed, not a crash', () => {
  const { c, sink, w } = watcher(null, [2]);
  w.notice('disconnected');
  c.publish('nlbridge.A.g.2', Buffer.from([1, 2, 3]), { n: '1', c: 'e-1', p: '3' });
  assert.deepEqual(sink.frames, [
    { type: 'gap', reason: 'nats', host: null, lost: null, detail: 'disconnected' },
    { type: 'malformed', host: 'A', group: 2, portId: 3, reason: 'shorter than a netlink header', offset: 0, length: 3 },
  ]);
  w.close();
  w.notice('after close');
  assert.equal(sink.frames.length, 2);
});

test('parseHosts: ids as --host-id takes them, deduplicated, bounded; anything else says what is wrong', () => {
  assert.deepEqual(parseHosts('A,B, A'), ['A', 'B']);
  for (const bad of ['', 'A,', ',A', 'a.b', '*', '>', 'a b', 'x'.repeat(65)]) assert.throws(() => parseHosts(bad), Error, bad);
  const many = Array.from({ length: MAX_WATCH_HOSTS + 1 }, (_, i) => `h${i}`).join(',');
  assert.throws(() => parseHosts(many), /at most 32/);
});

test('the hosts a stream remembers are bounded: the oldest is forgotten, its next message a new baseline', () => {
  const { c, sink } = watcher(null, [2]);
  for (let i = 0; i <= MAX_TRACKED_HOSTS; i++) send(c, `h${i}`, 2, 1, 'x');
  send(c, 'h0', 2, 9, 'h0-again'); // forgotten: no gap
  send(c, `h${MAX_TRACKED_HOSTS}`, 2, 3, 'last-again'); // remembered: the jump is told
  assert.deepEqual(shape(sink).slice(-3), ['h0-again', 'gap:sequence:1', 'last-again']);
});

/** The fake stream's id, as a cursor names it. */
const ID = 'aaaaaaaa';

/** A fake stream for a replaying watcher: bounds as set, and the handlers of the last open(). */
class FakeReplay {
  opened: { start: number; stopped: boolean }[] = [];
  /** Times a watcher said the stream or its consumer went. */
  lost = 0;
  on: { message(m: { subject: string; data: Uint8Array; headers?: never; seq: number }): void; trouble(d: string): void } | null = null;
  id = ID;
  /** `since`: a number S is the cursor "ID-S" of this stream. */
  constructor(
    public first: number,
    public last: number,
    readonly since: number | ReplayFrom | null,
  ) {}
  plan(): WatchReplay {
    return {
      since: typeof this.since === 'number' ? parseFleetCursor(`${this.id}-${this.since}`) : this.since,
      bounds: async () => ({ id: this.id, first: this.first, last: this.last }),
      open: async (_c, start, on) => {
        const o = { start, stopped: false };
        this.opened.push(o);
        this.on = on as FakeReplay['on'];
        return { stop: () => void (o.stopped = true) };
      },
      lost: () => void this.lost++,
    };
  }
  stored(seq: number, host: string, group: number, text: string): void {
    this.on!.message({ subject: `nlbridge.${host}.g.${group}`, data: encodeMessage({ type: 16, payload: Buffer.from(text) }), seq });
  }
  storedRun(seq: number, host: string, group: number, n: number, texts: string[]): void {
    const h: Record<string, string> = { n: String(n), k: String(texts.length), c: `e1-${n}` };
    const headers = { get: (k: string) => h[k] ?? '' } as never;
    this.on!.message({ subject: `nlbridge.${host}.g.${group}`, data: runBytes(texts), headers, seq });
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

test('replay: starts after since; each message has its sequence as cursor; hosts and groups selected here; a sequence jump is a stream gap; a repeat dropped', async () => {
  const c = new FakeConn();
  const sink = new Sink([2]);
  const r = new FakeReplay(1, 10, 4);
  const cursors: (string | undefined)[] = [];
  const w = new FleetWatcher(
    { hosts: ['A'], groups: [2] },
    { ...sink, groups: [2], deliver: (m) => (cursors.push(m.cursor), sink.deliver(m)), flush() {}, event: (t, f) => sink.event(t, f) },
    r.plan(),
  );
  w.attach(c as unknown as NatsConnection);
  await settle();
  assert.deepEqual(
    r.opened.map((o) => o.start),
    [5],
    'after the cursor',
  );
  assert.deepEqual(
    c.subs.map((s) => s.subject),
    ['nlbridge.A.events'],
    'messages come from the stream, not a core subscription',
  );
  r.stored(5, 'A', 2, 'a5');
  r.stored(6, 'B', 2, 'b6'); // another host: not shown, no gap
  r.stored(7, 'A', 4, 'a7'); // another group: not shown
  r.stored(7, 'A', 2, 'repeat');
  r.stored(10, 'A', 2, 'a10'); // 8 and 9 gone
  assert.deepEqual(
    sink.frames.map((f) =>
      f.type === 'message' ? f.data : `${f.type}:${String(f.reason)}:${String(f.lost)}:${String(f.since)}:${String(f.resumeFrom)}`,
    ),
    ['a5', 'gap:stream:2:7:10', 'a10'],
  );
  assert.deepEqual(cursors, [`${ID}-5`, `${ID}-10`]);
  // A new connection: read again from the next sequence, the old reading stopped.
  w.attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.deepEqual(
    r.opened.map((o) => [o.start, o.stopped]),
    [
      [5, true],
      [11, false],
    ],
  );
  w.close();
  assert.equal(r.opened[1].stopped, true);
});

test('replay: the stream or its consumer gone (trouble) is told once, the reading stopped, then live from core subscriptions without cursors; a new connection reads the stream from its end', async () => {
  const c = new FakeConn();
  const sink = new Sink([2]);
  const r = new FakeReplay(1, 10, 4);
  const w = new FleetWatcher({ hosts: ['A'], groups: [2] }, sink, r.plan());
  w.attach(c as unknown as NatsConnection);
  await settle();
  r.stored(5, 'A', 2, 'a5');
  const trouble = r.on!.trouble;
  trouble('JetStream consumer deleted');
  trouble('JetStream stream not found'); // the same loss, said again by the client: not told twice
  assert.equal(r.opened[0].stopped, true);
  assert.equal(r.lost, 1, 'the daemon is told to check the stream');
  c.publish('nlbridge.A.g.2', encodeMessage({ type: 16, payload: Buffer.from('live') }));
  assert.deepEqual(
    sink.frames.map((f) => (f.type === 'message' ? f.data : `${f.type}:${String(f.reason)}:${String(f.detail)}`)),
    ['a5', 'gap:nats:JetStream consumer deleted: live from NATS instead, without cursors', 'live'],
  );
  // Re-created: another id, and shorter.
  r.last = 3;
  r.id = 'bbbbbbbb';
  w.attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.deepEqual(
    r.opened.map((o) => o.start),
    [5, 4],
    "the new stream's end, not the old cursor",
  );
  w.close();
});

test('replay: since older than the first held is a gap with the count; past the end a gap without one; no since starts at the end', async () => {
  const older = new FakeReplay(50, 60, 9);
  const s1 = new Sink([2]);
  new FleetWatcher({ hosts: null, groups: [2] }, s1, older.plan()).attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.deepEqual(s1.frames, [{ type: 'gap', reason: 'stream', host: null, lost: 40, since: 9, resumeFrom: 50 }]);
  assert.equal(older.opened[0].start, 50);

  // A bare cursor of earlier versions: checked by position only.
  const past = new FakeReplay(1, 60, parseFleetCursor('99'));
  const s2 = new Sink([2]);
  new FleetWatcher({ hosts: null, groups: [2] }, s2, past.plan()).attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.equal(s2.frames.length, 1);
  assert.equal(s2.frames[0].lost, null);
  assert.equal(past.opened[0].start, 61);

  const live = new FakeReplay(1, 60, null);
  const s3 = new Sink([2]);
  new FleetWatcher({ hosts: null, groups: [2] }, s3, live.plan()).attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.deepEqual(s3.frames, []);
  assert.equal(live.opened[0].start, 61);
});

test('replay: a disconnect is no gap for a stream reader (it resumes where it was); it is for a core subscriber', () => {
  const s1 = new Sink([2]);
  const reader = new FleetWatcher({ hosts: null, groups: [2] }, s1, new FakeReplay(1, 1, null).plan());
  reader.disconnected('gone');
  assert.deepEqual(s1.frames, []);
  const s2 = new Sink([2]);
  new FleetWatcher({ hosts: null, groups: [2] }, s2).disconnected('gone');
  assert.equal(s2.frames[0].reason, 'nats');
});

test('a run of k: its messages in order, numbered n…n+k-1; a resend dropped; an overlapping one gives only what is new; a jump after it counted from its last', () => {
  const { c, sink } = watcher(['A'], [2]);
  sendRun(c, 'A', 2, 1, ['a1', 'a2', 'a3']);
  send(c, 'A', 2, 4, 'a4'); // follows the run: no gap
  sendRun(c, 'A', 2, 1, ['a1', 'a2', 'a3']); // a resend: dropped
  sendRun(c, 'A', 2, 4, ['a4', 'a5']); // overlaps: a5 only
  sendRun(c, 'A', 2, 8, ['a8', 'a9']); // 6 and 7 gone
  assert.deepEqual(shape(sink), ['a1', 'a2', 'a3', 'a4', 'a5', 'gap:sequence:2', 'a8', 'a9']);
  assert.deepEqual(
    sink.frames.filter((f) => f.type === 'message').map((f) => [f.host, f.group, f.portId]),
    Array(7).fill(['A', 2, 9]),
  );
});

test('a run that does not hold what its headers say: what fits is delivered, then malformed; a bad count is malformed; never a crash', () => {
  const { c, sink } = watcher(null, [2]);
  // Room for three headers by size, but two messages and 8 stray bytes.
  c.publish('nlbridge.A.g.2', Buffer.concat([runBytes(['x1', 'x2']), Buffer.alloc(8)]), { n: '1', k: '3', c: 'e1-1', p: '9' });
  const overrun = runBytes(['y1', 'y2']);
  overrun.writeUInt32LE(999, 20); // the second message's nlmsg_len past the end
  c.publish('nlbridge.B.g.2', overrun, { n: '1', k: '2', c: 'e1-1', p: '9' });
  c.publish('nlbridge.C.g.2', runBytes(['z1']), { n: '1', k: '0', c: 'e1-1', p: '9' });
  c.publish('nlbridge.D.g.2', runBytes(['w1']), { n: '1', k: 'two', c: 'e1-1', p: '9' });
  // A count the payload cannot hold: refused before it moves E's sequence, so E's next message is no "repeat".
  c.publish('nlbridge.E.g.2', runBytes(['v1']), { n: '1', k: '1000000', c: 'e1-1', p: '9' });
  c.publish('nlbridge.E.g.2', runBytes(['v2']), { n: '2', c: 'e1-2', p: '9' });
  const kinds = sink.frames.map((f) => (f.type === 'message' ? String(f.data) : `${f.type}:${String(f.host)}:${String(f.offset)}`));
  assert.deepEqual(kinds, ['x1', 'x2', 'malformed:A:40', 'y1', 'malformed:B:20', 'malformed:C:0', 'malformed:D:0', 'malformed:E:0', 'v2']);
  assert.match(String(sink.frames[2].reason), /ends before message 3 of the 3/);
  assert.match(String(sink.frames[4].reason), /message 2 of a run of 2: nlmsg_len 999/);
  assert.match(String(sink.frames[5].reason), /k="0" is not a count/);
  assert.match(String(sink.frames[7].reason), /k="1000000" is not a count of the 20-byte payload's messages/);
});

test('fleet cursors: "ID-S" is all of S seen in stream ID, "ID-S.i" the first i of its run; bare "S", "S.i" of earlier versions name no stream; anything else is no cursor', () => {
  const good: [string, ReplayFrom][] = [
    ['0a1b2c3d-5', { stream: '0a1b2c3d', seq: 6, skip: 0 }],
    ['0a1b2c3d-5.2', { stream: '0a1b2c3d', seq: 5, skip: 2 }],
    ['0a1b2c3d-0', { stream: '0a1b2c3d', seq: 1, skip: 0 }],
    [`ffffffff-${'9'.repeat(15)}.999999`, { stream: 'ffffffff', seq: 1e15 - 1, skip: 999999 }],
    ['5', { stream: null, seq: 6, skip: 0 }],
    ['5.2', { stream: null, seq: 5, skip: 2 }],
    ['0', { stream: null, seq: 1, skip: 0 }],
  ];
  for (const [text, from] of good) assert.deepEqual(parseFleetCursor(text), from, text);
  const bad = [
    '',
    '5.',
    '.2',
    '5.0',
    '0.1',
    '-1',
    '5.2.1',
    '1234567890123456',
    'e1-5', // a local cursor's epoch is no stream id
    '0A1B2C3D-5', // written lowercase
    '0a1b2c3-5',
    '0a1b2c3d5-5',
    '0a1b2c3d-',
    '0a1b2c3d-5.0',
    '0a1b2c3d-0.1',
    '0a1b2c3d--5',
    '0a1b2c3d-5-6',
    ' 0a1b2c3d-5',
  ];
  for (const text of bad) assert.equal(parseFleetCursor(text), null, text);
});

test('a stream id: 8 lowercase hex digits of its name and creation time; another of either is another id', () => {
  const id = streamId('NLBRIDGE', '2026-12-08T01:03:21.77036102Z');
  assert.equal(id, 'a7af4cac');
  assert.notEqual(streamId('NLBRIDGE', '2026-12-08T01:03:21.785940334Z'), id, 'created again');
  assert.notEqual(streamId('OTHER', '2026-12-08T01:03:21.77036102Z'), id, "another fleet's");
  assert.equal(streamId('NLBRIDGE', '2026-12-08T01:03:21.77036102Z'), id);
  assert.equal(cursorOf(id, 7, 0, 1), 'a7af4cac-7');
  assert.equal(cursorOf(id, 7, 0, 3), 'a7af4cac-7.1');
  assert.equal(cursorOf(id, 7, 2, 3), 'a7af4cac-7');
  assert.deepEqual(parseFleetCursor(cursorOf(id, 7, 1, 3)), { stream: id, seq: 7, skip: 2 });
});

/** A watcher over `r` whose frames are summed up as text: messages "data@cursor", gaps "gap:reason:lost:since:resumeFrom". */
function replaying(r: FakeReplay, since: ReplayFrom | null): { got: string[]; gaps: Record<string, unknown>[]; w: FleetWatcher } {
  const got: string[] = [];
  const gaps: Record<string, unknown>[] = [];
  const sink: FleetSink = {
    ...ROOMY,
    groups: [2],
    deliver: (m) => got.push(`${m.payload.toString()}@${m.cursor}`),
    flush() {},
    event: (t, f) => {
      got.push(`${t}:${String(f.reason)}:${String(f.lost)}:${String(f.since)}:${String(f.resumeFrom)}`);
      gaps.push(f);
    },
  };
  const w = new FleetWatcher({ hosts: null, groups: [2] }, sink, { ...r.plan(), since });
  w.attach(new FakeConn() as unknown as NatsConnection);
  return { got, gaps, w };
}

test("replay: a cursor of another stream (deleted and created again, or another fleet's) is a stream gap saying so, lost null, then the stream from its first message, with cursors of its id", async () => {
  for (const since of ['bbbbbbbb-7', 'bbbbbbbb-7.2', 'bbbbbbbb-70']) {
    const r = new FakeReplay(3, 9, null);
    const { got, gaps, w } = replaying(r, parseFleetCursor(since));
    await settle();
    assert.equal(r.opened[0].start, 3, since);
    r.stored(3, 'A', 2, 'a3');
    r.stored(4, 'A', 2, 'a4');
    const asked = since === 'bbbbbbbb-7.2' ? 6 : since === 'bbbbbbbb-70' ? 70 : 7;
    assert.deepEqual(got, [`gap:stream:null:${asked}:3`, `a3@${ID}-3`, `a4@${ID}-4`], since);
    assert.deepEqual(gaps[0], {
      reason: 'stream',
      host: null,
      lost: null,
      since: asked,
      resumeFrom: 3,
      detail: `the cursor names another stream (bbbbbbbb; this one is ${ID}): deleted and created again, or another fleet's; read from its first message`,
    });
    w.close();
  }
  // A stream created again and not yet written to says first 0, last 0: read from sequence 1.
  const empty = new FakeReplay(0, 0, null);
  const { got } = replaying(empty, parseFleetCursor('bbbbbbbb-7'));
  await settle();
  assert.equal(empty.opened[0].start, 1);
  empty.stored(1, 'A', 2, 'first');
  assert.deepEqual(got, ['gap:stream:null:7:1', `first@${ID}-1`], 'no stream gap for a sequence 0 never held');
});

test('replay: bare cursors of earlier versions are read by position only, as before; what they read carries the id', async () => {
  const cases: [string, number, string[]][] = [
    ['4', 5, [`a5@${ID}-5`]],
    ['0', 1, [`a1@${ID}-1`]], // since=0: from the stream's first message
    ['0', 3, ['gap:stream:2:0:3', `a3@${ID}-3`]], // … the first 2 discarded meanwhile
    ['9', 10, [`a10@${ID}-10`]], // the end: from now on
    ['12', 10, ['gap:stream:null:12:10', `a10@${ID}-10`]], // past the end: another stream's, not told which
  ];
  for (const [since, start, want] of cases) {
    const r = new FakeReplay(start === 3 ? 3 : 1, 9, null);
    const { got, w } = replaying(r, parseFleetCursor(since));
    await settle();
    assert.equal(r.opened[0].start, start, since);
    r.stored(start, 'A', 2, `a${start}`);
    assert.deepEqual(got, want, since);
    w.close();
  }
  // Inside a run: the rest of it.
  const run = new FakeReplay(1, 9, null);
  const { got } = replaying(run, parseFleetCursor('5.2'));
  await settle();
  assert.equal(run.opened[0].start, 5);
  run.storedRun(5, 'A', 2, 1, ['a1', 'a2', 'a3']);
  assert.deepEqual(got, [`a3@${ID}-5`]);
});

test('replay: a cursor of this stream resumes after it, with no gap', async () => {
  const r = new FakeReplay(1, 9, null);
  const { got } = replaying(r, parseFleetCursor(`${ID}-6`));
  await settle();
  assert.equal(r.opened[0].start, 7);
  r.stored(7, 'A', 2, 'a7');
  assert.deepEqual(got, [`a7@${ID}-7`]);
});

test('replay: a new connection finds the stream created again meanwhile (another id): its place is no place there, so a stream gap, then from the first message', async () => {
  const r = new FakeReplay(1, 9, 4);
  const { got, gaps, w } = replaying(r, parseFleetCursor(`${ID}-4`));
  await settle();
  r.stored(5, 'A', 2, 'a5');
  r.id = 'cccccccc';
  r.first = 1;
  r.last = 2;
  w.attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.deepEqual(
    r.opened.map((o) => [o.start, o.stopped]),
    [
      [5, true],
      [1, false],
    ],
  );
  r.stored(1, 'A', 2, 'new1');
  assert.deepEqual(got, [`a5@${ID}-5`, 'gap:stream:null:5:1', 'new1@cccccccc-1']);
  assert.match(String(gaps[0].detail), /another stream \(aaaaaaaa; this one is cccccccc\)/);
  w.close();
});

test('replay of runs: a frame of a run has S.i as cursor, its last S; resuming from S.i gives the rest of that run, then what follows', async () => {
  const r = new FakeReplay(1, 10, 4);
  const cursors: (string | undefined)[] = [];
  const texts: string[] = [];
  const sink: FleetSink = {
    ...ROOMY,
    groups: [2],
    deliver: (m) => (cursors.push(m.cursor), texts.push(m.payload.toString())),
    flush() {},
    event: (t) => texts.push(t),
  };
  new FleetWatcher({ hosts: null, groups: [2] }, sink, r.plan()).attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  r.storedRun(5, 'A', 2, 1, ['a1', 'a2', 'a3']);
  r.stored(6, 'A', 2, 'a4');
  assert.deepEqual(cursors, [`${ID}-5.1`, `${ID}-5.2`, `${ID}-5`, `${ID}-6`]);
  assert.deepEqual(texts, ['a1', 'a2', 'a3', 'a4']);

  const again = new FakeReplay(1, 10, null);
  const from: WatchReplay = { ...again.plan(), since: parseFleetCursor(`${ID}-5.2`) };
  const got: string[] = [];
  new FleetWatcher(
    { hosts: null, groups: [2] },
    { ...ROOMY, groups: [2], deliver: (m) => got.push(`${m.payload.toString()}@${m.cursor}`), flush() {}, event: (t) => got.push(t) },
    from,
  ).attach(new FakeConn() as unknown as NatsConnection);
  await settle();
  assert.equal(again.opened[0].start, 5, 'S.i reads S again');
  again.storedRun(5, 'A', 2, 1, ['a1', 'a2', 'a3']);
  again.stored(6, 'A', 2, 'a4');
  assert.deepEqual(got, [`a3@${ID}-5`, `a4@${ID}-6`]);
});

test("replay: a host's drop notice, live while the stream is read behind it, is told when the reading reaches its jump; the messages before it are all delivered", async () => {
  const c = new FakeConn();
  const sink = new Sink([2]);
  const r = new FakeReplay(1, 10, 0);
  const w = new FleetWatcher({ hosts: ['A'], groups: [2] }, sink, r.plan());
  w.attach(c as unknown as NatsConnection);
  // Before the stream is even open: the notice is already ahead of the reading.
  c.publish('nlbridge.A.events', Buffer.from(JSON.stringify({ type: 'dropped', host: 'A', run: 'e1', count: 1, from: 4, to: 4 })));
  await settle();
  r.storedRun(1, 'A', 2, 1, ['a1']);
  r.storedRun(2, 'A', 2, 2, ['a2', 'a3']);
  assert.deepEqual(shape(sink), ['a1', 'a2', 'a3'], 'nothing before the drop taken for seen');
  r.storedRun(3, 'A', 2, 5, ['a5']);
  assert.deepEqual(shape(sink), ['a1', 'a2', 'a3', 'gap:publisher:1', 'a5']);
  w.close();
});

test('replay is paced by the client: the reading stops above half its backlog, opens again at the next sequence below a quarter, ignores what the stopped one still hands over; a client full for stallMs is closed as stalled', async () => {
  const c = new FakeConn();
  const sink = new Sink([2]);
  const r = new FakeReplay(1, 10, 0);
  const w = new FleetWatcher({ hosts: ['A'], groups: [2] }, sink, r.plan());
  w.attach(c as unknown as NatsConnection);
  await settle();
  r.stored(1, 'A', 2, 'a1');
  sink.backlog = 0.6; // the client reads slowly
  r.stored(2, 'A', 2, 'a2');
  assert.equal(r.opened[0].stopped, true, 'the reading stopped after the message that filled the backlog');
  const stale = r.on!;
  stale.message({ subject: 'nlbridge.A.g.2', data: encodeMessage({ type: 16, payload: Buffer.from('in-flight') }), seq: 3 });
  sink.backlog = 0.3; // under half, not yet a quarter: still paused
  await new Promise((res) => setTimeout(res, 60));
  assert.equal(r.opened.length, 1);
  sink.backlog = 0.2;
  await waitFor('opened again', () => r.opened.length === 2, { timeoutMs: 2000 });
  assert.equal(r.opened[1].start, 3, 'opened again at the next sequence');
  r.stored(3, 'A', 2, 'a3');
  assert.deepEqual(shape(sink), ['a1', 'a2', 'a3'], "the stopped reading's message was not taken: read again, once");
  sink.backlog = 1; // now a client that never reads
  r.stored(4, 'A', 2, 'a4');
  await waitFor('closed as stalled', () => sink.stalls === 1, { timeoutMs: 2000 });
  assert.equal(r.opened.length, 2, 'not opened again for a stalled client');
  w.close();
});

test('any JSON on an events subject is read without a throw (a throw stalls the NATS connection): null, arrays, odd numbers are ignored', () => {
  const { c, sink } = watcher(['A'], [2]);
  send(c, 'A', 2, 1, 'a1');
  for (const body of ['null', '[1,2]', '7', '"x"', '{"type":"overrun","host":"A","lost":1e400}', '{"type":"overrun","lost":1.5}'])
    c.publish('nlbridge.A.events', Buffer.from(body));
  c.publish('nlbridge.A.events', Buffer.from(JSON.stringify({ type: 'dropped', host: 'A', run: 'e1', count: 99, from: 2, to: 3 })));
  send(c, 'A', 2, 2, 'a2');
  assert.deepEqual(shape(sink), ['a1', 'a2'], 'ignored; a count over its range is no notice');
});

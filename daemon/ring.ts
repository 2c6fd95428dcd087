// The recent-messages ring: every message the shared receive socket gets is
// numbered from one daemon-wide sequence and kept here, bounded by count, age
// and bytes. A cursor is "<epoch>-<seq>"; the epoch is random per daemon run,
// so a cursor from before a restart is recognised as such.
//
// Sequence numbers in the ring are contiguous (eviction is from the front
// only), so the slot of a seq is found by masking (see Columns).

import { randomBytes } from 'node:crypto';
import { NLMSG_HDRLEN, decodeHeader } from '../addon/codec';
import { copyKey } from './dedupe';
import type { RxMessage } from './frames';

export interface RingOptions {
  /** Most messages kept. */
  maxMessages: number;
  /** Messages older than this are dropped. */
  maxAgeMs: number;
  /** Cap on the accounted bytes (message bytes + ENTRY_OVERHEAD each). */
  maxBytes: number;
}

export const RING_DEFAULTS: RingOptions = { maxMessages: 10000, maxAgeMs: 5 * 60 * 1000, maxBytes: 16 * 1024 * 1024 };

/**
 * Accounted per entry on top of the message bytes (and twice the payload,
 * for its JSON when replayed): what an entry cost when the ring held objects.
 * Kept so that --ring-max-bytes means what it meant; the columns now cost
 * ≈ 41 bytes per slot.
 */
export const ENTRY_OVERHEAD = 256;

export interface GapInfo {
  /** evicted: the cursor fell out of the ring; epoch: it names another daemon run. */
  reason: 'evicted' | 'epoch';
  since: string;
  /** Messages (of every group) received after the cursor and no longer held; null when unknown. */
  lost: number | null;
  /** The first cursor still held, or null when the ring is empty. */
  resumeFrom: string | null;
}

export class CursorError extends Error {}

export interface ParsedCursor {
  epoch: string;
  seq: number;
}

const CURSOR_RE = /^([0-9a-z]{1,32})-([0-9]{1,15})$/;

export function parseCursor(text: string): ParsedCursor {
  const m = CURSOR_RE.exec(text);
  if (!m) throw new CursorError(`"${text.slice(0, 80)}" is not a cursor (EPOCH-SEQ, as in a message's "cursor")`);
  return { epoch: m[1], seq: Number(m[2]) };
}

/** How far before a resume cursor copies of one message are looked for. */
const COPY_LOOKBACK = 1024;
const COPY_LOOKBACK_MS = 1000;

const FLAG_UID = 1;
const FLAG_TRUNCATED = 2;
const FLAG_FROM_BRIDGE = 4;

const FIRST_SLOTS = 1024;
const FIRST_ARENA_BYTES = 64 * 1024;

/**
 * Storage of the ring: the message bytes one after another in an arena used
 * circularly, the rest in typed columns indexed by seq. Nothing per message
 * is a JavaScript object: a ring of objects (a message, its header, two
 * buffer views, an entry) put 10,000 live objects in the old generation and
 * every scavenge paid for the ones just promoted (GC was the largest cost
 * per message in the bench, issue 6). Messages are made as objects only when
 * read (since, recent), which is rare.
 */
class Columns {
  at: Float64Array;
  group: Uint32Array;
  portId: Uint32Array;
  uid: Uint32Array;
  flags: Uint8Array;
  offset: Float64Array;
  length: Uint32Array;
  size: Float64Array;

  constructor(readonly capacity: number) {
    this.at = new Float64Array(capacity);
    this.group = new Uint32Array(capacity);
    this.portId = new Uint32Array(capacity);
    this.uid = new Uint32Array(capacity);
    this.flags = new Uint8Array(capacity);
    this.offset = new Float64Array(capacity);
    this.length = new Uint32Array(capacity);
    this.size = new Float64Array(capacity);
  }
}

export class Ring {
  readonly epoch: string;
  /** Slot of seq s is s & (cols.capacity - 1); capacity is a power of two. */
  private cols = new Columns(FIRST_SLOTS);
  private arena = Buffer.allocUnsafeSlow(FIRST_ARENA_BYTES);
  /** Where the next message's bytes go in the arena. */
  private arenaTail = 0;
  /** seq of the oldest held message; lastSeq + 1 when empty. */
  private firstSeq = 1;
  private lastSeq = 0;
  private heldBytes = 0;
  /** Messages evicted, by reason (read by /metrics: a metrics update per eviction was per message once the ring is full). */
  readonly evicted = { count: 0, age: 0, bytes: 0 };

  constructor(
    readonly opts: RingOptions = RING_DEFAULTS,
    epoch?: string,
  ) {
    this.epoch = epoch ?? randomBytes(4).toString('hex');
  }

  get size(): number {
    return this.lastSeq - this.firstSeq + 1;
  }

  get bytes(): number {
    return this.heldBytes;
  }

  /** The seq the next message gets is lastSeq + 1. */
  get last(): number {
    return this.lastSeq;
  }

  cursorOf(seq: number): string {
    return `${this.epoch}-${seq}`;
  }

  /**
   * Numbers a received message and keeps a copy of its bytes (the datagram
   * buffer it points into is not retained), then evicts what no longer fits.
   * Returns the message with its cursor set, to route.
   */
  append(m: RxMessage, now: number): RxMessage {
    const len = m.bytes.length;
    const offset = this.place(len);
    m.bytes.copy(this.arena, offset);
    if (this.size === this.cols.capacity) this.growColumns();
    const seq = ++this.lastSeq;
    const c = this.cols;
    const i = seq & (c.capacity - 1);
    c.at[i] = m.receivedAt;
    c.group[i] = m.group;
    c.portId[i] = m.portId;
    c.uid[i] = m.uid ?? 0;
    c.flags[i] = (m.uid !== undefined ? FLAG_UID : 0) | (m.truncated ? FLAG_TRUNCATED : 0) | (m.fromBridge ? FLAG_FROM_BRIDGE : 0);
    c.offset[i] = offset;
    c.length[i] = len;
    const size = len + ENTRY_OVERHEAD + m.payload.length * 2;
    c.size[i] = size;
    this.heldBytes += size;
    this.arenaTail = offset + len;
    this.evict(now);
    m.cursor = this.cursorOf(seq);
    return m;
  }

  /** Drops what is over count, bytes or age. */
  evict(now: number): void {
    const o = this.opts;
    const c = this.cols;
    while (this.size > 0) {
      const i = this.firstSeq & (c.capacity - 1);
      let why: 'count' | 'bytes' | 'age' | null = null;
      if (this.size > o.maxMessages) why = 'count';
      else if (this.heldBytes > o.maxBytes) why = 'bytes';
      else if (now - c.at[i] > o.maxAgeMs) why = 'age';
      if (why === null) break;
      this.evicted[why]++;
      this.heldBytes -= c.size[i];
      this.firstSeq++;
    }
    if (this.size === 0) {
      this.heldBytes = 0;
      this.arenaTail = 0;
      // A burst grew the storage; an empty ring gives it back.
      if (this.arena.length > FIRST_ARENA_BYTES) this.arena = Buffer.allocUnsafeSlow(FIRST_ARENA_BYTES);
      if (c.capacity > FIRST_SLOTS) this.cols = new Columns(FIRST_SLOTS);
    }
  }

  /** Where `len` bytes fit in the arena after the newest message (wrapping, or growing it). */
  private place(len: number): number {
    if (this.size === 0) {
      this.arenaTail = 0;
      if (len > this.arena.length) this.arena = Buffer.allocUnsafeSlow(Math.max(len, this.arena.length * 2));
      return 0;
    }
    const head = this.cols.offset[this.firstSeq & (this.cols.capacity - 1)];
    const tail = this.arenaTail;
    if (tail > head) {
      if (tail + len <= this.arena.length) return tail;
      if (len <= head) return 0;
    } else if (tail + len <= head) return tail;
    this.growArena(len);
    return this.arenaTail;
  }

  /** A larger arena with the held messages packed at its start, oldest first. */
  private growArena(need: number): void {
    const c = this.cols;
    let live = 0;
    for (let s = this.firstSeq; s <= this.lastSeq; s++) live += c.length[s & (c.capacity - 1)];
    const next = Buffer.allocUnsafeSlow(Math.max(this.arena.length * 2, (live + need) * 2));
    let at = 0;
    for (let s = this.firstSeq; s <= this.lastSeq; s++) {
      const i = s & (c.capacity - 1);
      const off = c.offset[i];
      this.arena.copy(next, at, off, off + c.length[i]);
      c.offset[i] = at;
      at += c.length[i];
    }
    this.arena = next;
    this.arenaTail = at;
  }

  private growColumns(): void {
    const old = this.cols;
    const next = new Columns(old.capacity * 2);
    for (let s = this.firstSeq; s <= this.lastSeq; s++) {
      const i = s & (old.capacity - 1);
      const j = s & (next.capacity - 1);
      next.at[j] = old.at[i];
      next.group[j] = old.group[i];
      next.portId[j] = old.portId[i];
      next.uid[j] = old.uid[i];
      next.flags[j] = old.flags[i];
      next.offset[j] = old.offset[i];
      next.length[j] = old.length[i];
      next.size[j] = old.size[i];
    }
    this.cols = next;
  }

  /** The held message `seq` as an object of its own (its bytes copied out of the arena). */
  private message(seq: number): RxMessage {
    const c = this.cols;
    const i = seq & (c.capacity - 1);
    const off = c.offset[i];
    const bytes = Buffer.from(this.arena.subarray(off, off + c.length[i]));
    const flags = c.flags[i];
    const m: RxMessage = {
      group: c.group[i],
      portId: c.portId[i],
      header: decodeHeader(bytes, 0),
      payload: bytes.subarray(NLMSG_HDRLEN),
      bytes,
      truncated: (flags & FLAG_TRUNCATED) !== 0,
      receivedAt: c.at[i],
      fromBridge: (flags & FLAG_FROM_BRIDGE) !== 0,
      cursor: this.cursorOf(seq),
    };
    if (flags & FLAG_UID) m.uid = c.uid[i];
    return m;
  }

  /**
   * The held messages of `groups` after `since` (oldest first, one copy per
   * logical message), and the gap when the cursor is no longer covered.
   * Throws CursorError for a malformed cursor or one of this epoch not yet issued.
   */
  since(since: string, groups: readonly number[], now: number, limit = Number.POSITIVE_INFINITY): { gap: GapInfo | null; messages: RxMessage[] } {
    const c = parseCursor(since);
    this.evict(now);
    const resumeFrom = this.size > 0 ? this.cursorOf(this.firstSeq) : null;
    if (c.epoch !== this.epoch) {
      return { gap: { reason: 'epoch', since, lost: null, resumeFrom }, messages: this.select(this.firstSeq, groups, limit) };
    }
    if (c.seq > this.lastSeq) throw new CursorError(`cursor ${since} is ahead of the newest message (${this.cursorOf(this.lastSeq)})`);
    if (c.seq < this.firstSeq - 1) {
      const lost = this.firstSeq - 1 - c.seq;
      return { gap: { reason: 'evicted', since, lost, resumeFrom }, messages: this.select(this.firstSeq, groups, limit) };
    }
    return { gap: null, messages: this.select(c.seq + 1, groups, limit) };
  }

  /** The last `limit` messages of `groups`, oldest first, one copy per logical message. */
  recent(groups: readonly number[], limit: number, now: number): RxMessage[] {
    this.evict(now);
    const want = new Set(groups);
    const copies = new CopyFilter();
    const out: RxMessage[] = [];
    const c = this.cols;
    for (let s = this.lastSeq; s >= this.firstSeq && out.length < limit; s--) {
      if (!want.has(c.group[s & (c.capacity - 1)])) continue;
      const m = this.message(s);
      if (copies.first(m)) out.push(m);
    }
    return out.reverse();
  }

  private select(fromSeq: number, groups: readonly number[], limit: number): RxMessage[] {
    const want = new Set(groups);
    const copies = new CopyFilter();
    const out: RxMessage[] = [];
    const c = this.cols;
    const start = Math.max(fromSeq, this.firstSeq);
    // The client already has what came up to the cursor: a later copy of one
    // of those messages (on another of its groups) is not new. Copies arrive
    // together, so a short look-back suffices.
    const seed: RxMessage[] = [];
    const seedAt = start - 1 >= this.firstSeq ? c.at[(start - 1) & (c.capacity - 1)] : 0;
    for (let s = start - 1; s >= this.firstSeq && seed.length < COPY_LOOKBACK; s--) {
      const i = s & (c.capacity - 1);
      if (seedAt - c.at[i] > COPY_LOOKBACK_MS) break;
      if (want.has(c.group[i])) seed.push(this.message(s));
    }
    for (let i = seed.length - 1; i >= 0; i--) copies.first(seed[i]);
    for (let s = start; s <= this.lastSeq && out.length < limit; s++) {
      if (!want.has(c.group[s & (c.capacity - 1)])) continue;
      const m = this.message(s);
      if (copies.first(m)) out.push(m);
    }
    return out;
  }
}

/**
 * One copy per logical message, as the live dedupe does: the same key on
 * another group is a copy; on the same group again it is a new message (a
 * sender that does not vary its seq).
 */
export class CopyFilter {
  private readonly seen = new Map<string, Set<number>>();

  first(m: RxMessage): boolean {
    const k = copyKey(m.portId, m.header.pid, m.header.seq, m.header.type);
    const g = this.seen.get(k);
    if (g !== undefined && !g.has(m.group)) {
      g.add(m.group);
      return false;
    }
    this.seen.set(k, new Set([m.group]));
    return true;
  }
}

/** What a catch-up writes into (a WebSocket or SSE stream). */
export interface CatchUpTarget {
  readonly groups: readonly number[];
  /** Whether another frame may be written now (the client's backlog is under its limit). */
  room(): boolean;
  /** Writes one message frame now. */
  send(m: RxMessage): void;
  gap(info: GapInfo): void;
  /** End of a chunk: write what was queued. */
  flush(): void;
}

/** Messages read from the ring per step. */
const CATCH_UP_CHUNK = 256;
const CATCH_UP_POLL_MS = 25;

/**
 * A resume that reads from the ring at the pace the client drains, instead of
 * writing the whole backlog at once (which would overflow the client's
 * backlog and drop frames). While it runs, the stream ignores live messages
 * that have a cursor: they are in the ring and are read in turn. When a step
 * reaches the newest message it ends, in the same tick, so the switch to the
 * live stream has no gap and no duplicate. A client so slow that the ring
 * evicts past its position gets a gap event.
 */
export class CatchUp {
  private cursor: string | null;
  private timer: NodeJS.Timeout | null = null;
  private stuckSince: number | null = null;

  constructor(
    private readonly ring: Ring,
    private readonly target: CatchUpTarget,
    since: string,
    private readonly stallMs: number,
    private readonly onStall: () => void,
    private readonly onSent: (m: RxMessage) => void = () => undefined,
  ) {
    this.cursor = since;
  }

  get active(): boolean {
    return this.cursor !== null;
  }

  pump(): void {
    this.timer = null;
    while (this.cursor !== null) {
      if (!this.target.room()) {
        const now = Date.now();
        this.stuckSince ??= now;
        if (now - this.stuckSince > this.stallMs) {
          this.cursor = null;
          this.onStall();
          return;
        }
        this.timer = setTimeout(() => this.pump(), CATCH_UP_POLL_MS);
        return;
      }
      this.stuckSince = null;
      const { gap, messages } = this.ring.since(this.cursor, this.target.groups, Date.now(), CATCH_UP_CHUNK);
      if (gap) this.target.gap(gap);
      let sent = 0;
      for (const m of messages) {
        if (!this.target.room()) break;
        this.target.send(m);
        this.onSent(m);
        sent++;
      }
      this.target.flush();
      if (sent === messages.length && messages.length < CATCH_UP_CHUNK) {
        this.cursor = null; // caught up: live from here, same tick
        return;
      }
      // Past a gap for good (it is told once), then past what was written.
      if (gap) this.cursor = gap.resumeFrom === null ? this.ring.cursorOf(this.ring.last) : this.ring.cursorOf(parseCursor(gap.resumeFrom).seq - 1);
      if (sent > 0) this.cursor = messages[sent - 1].cursor!;
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.cursor = null;
  }
}

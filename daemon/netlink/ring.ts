// The recent-messages ring: every message the shared receive socket gets is
// numbered from one daemon-wide sequence and kept here, bounded by count, age
// and bytes. A cursor is "<epoch>-<seq>"; the epoch is random per daemon run,
// so a cursor from before a restart is recognised as such.
//
// Sequence numbers in the ring are contiguous (eviction is from the front
// only), so the slot of a seq is found by masking (see Columns).
//
// Eviction happens on writes (append) and on the owner's timer (evict), never
// on reads: a read leaves out what is over age without dropping it, so a
// /metrics scrape or a resume changes nothing.

import { randomBytes } from 'node:crypto';
import { NLMSG_HDRLEN, decodeHeader } from '../../addon/codec';
import { DedupeWindow, messageKey } from './dedupe';
import type { GapInfo, RxMessage } from './message';

export interface RingOptions {
  /** Most messages kept. */
  maxMessages: number;
  /** Messages older than this are dropped. */
  maxAgeMs: number;
  /** Cap on the accounted bytes (message bytes + ENTRY_OVERHEAD each). */
  maxBytes: number;
}

/**
 * Accounted per entry on top of the message bytes (and twice the payload,
 * for its JSON when replayed): what an entry cost when the ring held objects.
 * Kept so that --ring-max-bytes means what it meant; the columns now cost
 * ≈ 41 bytes per slot.
 */
export const ENTRY_OVERHEAD = 256;

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
    readonly opts: RingOptions,
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

  /** Drops what is over count, bytes or age (on append, and from the owner's timer for age). */
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
  since(
    since: string,
    groups: readonly number[],
    now: number,
    limit = Number.POSITIVE_INFINITY,
  ): { gap: GapInfo | null; messages: RxMessage[] } {
    const c = parseCursor(since);
    const first = this.firstHeld(now);
    const resumeFrom = first <= this.lastSeq ? this.cursorOf(first) : null;
    if (c.epoch !== this.epoch) {
      return { gap: { reason: 'epoch', since, lost: null, resumeFrom }, messages: this.select(first, first, groups, limit) };
    }
    if (c.seq > this.lastSeq) throw new CursorError(`cursor ${since} is ahead of the newest message (${this.cursorOf(this.lastSeq)})`);
    if (c.seq < first - 1) {
      const lost = first - 1 - c.seq;
      return { gap: { reason: 'evicted', since, lost, resumeFrom }, messages: this.select(first, first, groups, limit) };
    }
    return { gap: null, messages: this.select(first, c.seq + 1, groups, limit) };
  }

  /** The last `limit` messages of `groups`, oldest first, one copy per logical message. */
  recent(groups: readonly number[], limit: number, now: number): RxMessage[] {
    const first = this.firstHeld(now);
    const want = new Set(groups);
    const isFirstCopy = copyFilter();
    const out: RxMessage[] = [];
    const c = this.cols;
    for (let s = this.lastSeq; s >= first && out.length < limit; s--) {
      if (!want.has(c.group[s & (c.capacity - 1)])) continue;
      const m = this.message(s);
      if (isFirstCopy(m)) out.push(m);
    }
    return out.reverse();
  }

  /** The seq of the oldest message a read may return at `now`: the held ones not over age (evict drops those later). */
  private firstHeld(now: number): number {
    const c = this.cols;
    let s = this.firstSeq;
    while (s <= this.lastSeq && now - c.at[s & (c.capacity - 1)] > this.opts.maxAgeMs) s++;
    return s;
  }

  /** Messages of `groups` from `fromSeq` on, where `first` is the oldest a read may return. */
  private select(first: number, fromSeq: number, groups: readonly number[], limit: number): RxMessage[] {
    const want = new Set(groups);
    const isFirstCopy = copyFilter();
    const out: RxMessage[] = [];
    const c = this.cols;
    const start = Math.max(fromSeq, first);
    // The client already has what came up to the cursor: a later copy of one
    // of those messages (on another of its groups) is not new. Copies arrive
    // together, so a short look-back suffices.
    const seed: RxMessage[] = [];
    const seedAt = start - 1 >= first ? c.at[(start - 1) & (c.capacity - 1)] : 0;
    for (let s = start - 1; s >= first && seed.length < COPY_LOOKBACK; s--) {
      const i = s & (c.capacity - 1);
      if (seedAt - c.at[i] > COPY_LOOKBACK_MS) break;
      if (want.has(c.group[i])) seed.push(this.message(s));
    }
    for (let i = seed.length - 1; i >= 0; i--) isFirstCopy(seed[i]);
    for (let s = start; s <= this.lastSeq && out.length < limit; s++) {
      if (!want.has(c.group[s & (c.capacity - 1)])) continue;
      const m = this.message(s);
      if (isFirstCopy(m)) out.push(m);
    }
    return out;
  }
}

/**
 * One copy per logical message over one read, as the live dedupe does (the
 * same window, unbounded for the read): the same key on another group is a
 * copy; on the same group again it is a new message (a sender that does not
 * vary its seq).
 */
function copyFilter(): (m: RxMessage) => boolean {
  const window = new DedupeWindow<never>(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
  return (m) => !window.served(messageKey(m), 0, m.group).repeat;
}

// The recent-messages ring: every message the shared receive socket gets is
// numbered from one daemon-wide sequence and kept here, bounded by count, age
// and bytes. A cursor is "<epoch>-<seq>"; the epoch is random per daemon run,
// so a cursor from before a restart is recognised as such.
//
// Sequence numbers in the ring are contiguous (eviction is from the front
// only), so the entry of a seq is found by subtraction.

import { randomBytes } from 'node:crypto';
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

/** Accounted per entry on top of the message bytes: the object, its cached JSON (counted when made) and the slot. */
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

export interface RingEntry {
  m: RxMessage;
  size: number;
}

export class Ring {
  readonly epoch: string;
  private entries: RingEntry[] = [];
  private head = 0;
  /** seq of entries[head]; lastSeq + 1 when empty. */
  private firstSeq = 1;
  private lastSeq = 0;
  private heldBytes = 0;
  readonly evicted = { count: 0, age: 0, bytes: 0 };
  onEvict: ((reason: 'count' | 'age' | 'bytes') => void) | null = null;

  constructor(
    readonly opts: RingOptions = RING_DEFAULTS,
    epoch?: string,
  ) {
    this.epoch = epoch ?? randomBytes(4).toString('hex');
  }

  get size(): number {
    return this.entries.length - this.head;
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
   * Numbers a received message, keeps a copy of its bytes (the datagram buffer
   * it points into is not retained) and evicts what no longer fits. Returns
   * the message to route (the kept copy).
   */
  append(m: RxMessage, now: number): RxMessage {
    const seq = ++this.lastSeq;
    const bytes = Buffer.allocUnsafe(m.bytes.length);
    m.bytes.copy(bytes);
    const payloadStart = bytes.length - m.payload.length;
    // Written out, not `{ ...m }` + `delete`: objects made by spread (and
    // worse, with a property deleted) are slow to read, and every message is
    // read on the hot path; messageTail went from 0.5 to 5–6.5 µs (bench/).
    const kept: RxMessage = {
      group: m.group,
      portId: m.portId,
      header: m.header,
      payload: bytes.subarray(payloadStart),
      bytes,
      truncated: m.truncated,
      receivedAt: m.receivedAt,
      fromBridge: m.fromBridge,
      cursor: this.cursorOf(seq),
    };
    if (m.uid !== undefined) kept.uid = m.uid;
    const size = bytes.length + ENTRY_OVERHEAD + Math.max(0, m.payload.length * 2);
    if (this.size === 0) this.firstSeq = seq;
    this.entries.push({ m: kept, size });
    this.heldBytes += size;
    this.evict(now);
    // Routed as a twin: the JSON that delivery caches on the message (tail)
    // then dies young with the twin instead of being held by the ring for
    // minutes; holding it cost ≈ 3 µs of GC per message in the bench.
    const live: RxMessage = {
      group: kept.group,
      portId: kept.portId,
      header: kept.header,
      payload: kept.payload,
      bytes: kept.bytes,
      truncated: kept.truncated,
      receivedAt: kept.receivedAt,
      fromBridge: kept.fromBridge,
      cursor: kept.cursor,
    };
    if (kept.uid !== undefined) live.uid = kept.uid;
    return live;
  }

  /** Drops what is over count, bytes or age. */
  evict(now: number): void {
    const o = this.opts;
    while (this.size > 0) {
      const e = this.entries[this.head];
      let why: 'count' | 'bytes' | 'age' | null = null;
      if (this.size > o.maxMessages) why = 'count';
      else if (this.heldBytes > o.maxBytes) why = 'bytes';
      else if (now - e.m.receivedAt > o.maxAgeMs) why = 'age';
      if (why === null) break;
      this.evicted[why]++;
      this.onEvict?.(why);
      this.heldBytes -= e.size;
      this.entries[this.head] = undefined as unknown as RingEntry;
      this.head++;
      this.firstSeq++;
    }
    if (this.size === 0) {
      this.entries = [];
      this.head = 0;
      this.firstSeq = this.lastSeq + 1;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
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
    for (let i = this.entries.length - 1; i >= this.head && out.length < limit; i--) {
      const m = this.entries[i].m;
      if (want.has(m.group) && copies.first(m)) out.push(m);
    }
    return out.reverse();
  }

  private select(fromSeq: number, groups: readonly number[], limit: number): RxMessage[] {
    const want = new Set(groups);
    const copies = new CopyFilter();
    const out: RxMessage[] = [];
    const start = this.head + Math.max(0, fromSeq - this.firstSeq);
    // The client already has what came up to the cursor: a later copy of one
    // of those messages (on another of its groups) is not new. Copies arrive
    // together, so a short look-back suffices.
    const seed: RxMessage[] = [];
    for (let i = start - 1; i >= this.head && seed.length < COPY_LOOKBACK; i--) {
      const m = this.entries[i].m;
      if (this.entries[start - 1].m.receivedAt - m.receivedAt > COPY_LOOKBACK_MS) break;
      if (want.has(m.group)) seed.push(m);
    }
    for (let i = seed.length - 1; i >= 0; i--) copies.first(seed[i]);
    for (let i = start; i < this.entries.length && out.length < limit; i++) {
      const m = this.entries[i].m;
      if (want.has(m.group) && copies.first(m)) out.push(m);
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
  /** End of a chunk (uncork). */
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

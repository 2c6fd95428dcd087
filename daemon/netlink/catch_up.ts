// A resume paced by the client: what the ring holds after a cursor is read
// in chunks, each written only while the client's backlog has room, so a
// long backlog reaches a slow client whole instead of overflowing its queue.

import type { GapInfo, RxMessage } from './message';
import { parseCursor, type Ring } from './ring';

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
      if (gap)
        this.cursor =
          gap.resumeFrom === null ? this.ring.cursorOf(this.ring.last) : this.ring.cursorOf(parseCursor(gap.resumeFrom).seq - 1);
      if (sent > 0) this.cursor = messages[sent - 1].cursor!;
    }
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.cursor = null;
  }
}

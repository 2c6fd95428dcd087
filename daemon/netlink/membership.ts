// Which groups the shared receive socket belongs to: joined for the first
// subscriber of a group, counted per subscriber, and left a linger time
// after the last one went (--ring-linger-ms), so the ring keeps what arrives
// while a client reconnects to resume.

import type { Logger } from 'pino';
import type { NetlinkSocket } from '../../addon/socket';

export class Memberships {
  /** Subscribers per joined group; 0 while the group lingers. */
  private readonly refs = new Map<number, number>();
  private readonly lingers = new Map<number, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly rx: Pick<NetlinkSocket, 'join' | 'leave'>,
    private readonly lingerMs: number,
    private readonly log: Logger,
  ) {}

  /** Joined groups, ascending (lingering ones too). */
  groups(): number[] {
    return [...this.refs.keys()].sort((a, b) => a - b);
  }

  /** Subscribers per joined group (0 for a lingering one). */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.groups()) out[String(g)] = this.refs.get(g) ?? 0;
    return out;
  }

  /**
   * One more subscriber of each group, joining the ones nobody had. All or
   * nothing: when a join fails, the references taken are given back and its
   * NetlinkError is thrown.
   */
  take(groups: readonly number[]): void {
    const joinedNow: number[] = [];
    try {
      for (const g of groups) {
        const refs = this.refs.get(g);
        if (refs === undefined) {
          this.rx.join(g);
          joinedNow.push(g);
          this.log.debug({ group: g }, 'joined group');
        } else if (refs === 0) this.cancelLinger(g);
        this.refs.set(g, (refs ?? 0) + 1);
      }
    } catch (err) {
      // Undo the refs taken so far, up to the failing group (it took none).
      for (const g of groups) {
        const refs = this.refs.get(g);
        if (refs === undefined) break;
        if (refs <= 1) {
          if (joinedNow.includes(g)) {
            this.refs.delete(g);
            this.leave(g);
          } else this.release(g);
        } else this.refs.set(g, refs - 1);
      }
      throw err;
    }
  }

  /** One subscriber fewer of each group; the last one's going starts the linger. */
  give(groups: readonly number[]): void {
    for (const g of groups) {
      const refs = this.refs.get(g) ?? 0;
      if (refs <= 1) this.release(g);
      else this.refs.set(g, refs - 1);
    }
  }

  /** Stops the linger timers (the socket is about to close): nothing is left or joined after. */
  close(): void {
    this.closed = true;
    for (const [g, t] of this.lingers) {
      clearTimeout(t);
      if (this.refs.get(g) === 0) this.refs.delete(g);
    }
    this.lingers.clear();
  }

  private release(g: number): void {
    if (this.lingerMs <= 0 || this.closed) {
      this.refs.delete(g);
      this.leave(g);
      return;
    }
    this.refs.set(g, 0);
    this.cancelLinger(g);
    const t = setTimeout(() => {
      this.lingers.delete(g);
      if (this.refs.get(g) === 0) {
        this.refs.delete(g);
        this.leave(g);
      }
    }, this.lingerMs);
    t.unref();
    this.lingers.set(g, t);
  }

  private cancelLinger(g: number): void {
    const t = this.lingers.get(g);
    if (t) clearTimeout(t);
    this.lingers.delete(g);
  }

  private leave(g: number): void {
    if (this.closed) return;
    try {
      this.rx.leave(g);
      this.log.debug({ group: g }, 'left group');
    } catch (err) {
      this.log.warn({ err, group: g }, 'leaving a group failed');
    }
  }
}

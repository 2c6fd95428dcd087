// At most one of something per interval: the publisher's flushes, and, with
// --nats-linger-ms, its hand-overs to the client.
//
// Flushes (FLUSH_INTERVAL_MS): a flush is a PING the server answers with a
// PONG, and the publisher used to send one per round trip (as soon as the
// last was answered): nats-server then did a PONG write and a wake-up per
// round trip. At 100k msg/s that was about 1,200 PINGs a second, and the
// server spent 3.4–3.7 µs of CPU per netlink message; with at most one flush
// every 10 ms, 2.7–2.9 (at 2,000 msg/s: 103–116 µs, then 67–73). The daemon's
// own CPU did not change (bench/README.md, issue 18). Delivery does not wait
// for it: only the confirmation does, and with it `published` and the
// release of what is held.
//
// Hand-overs (--nats-linger-ms, 5 by default, only while messages come at
// --nats-linger-above or faster: rate_window.ts): each one is a socket write
// that nats-server must wake for and parse. At a high rate, a receive batch
// every few hundred microseconds, holding them for a few milliseconds makes
// one write of many batches; the first after a quiet spell goes at once.
// publisher.ts says when it does not wait.

/** At most one flush in this many ms (see above). */
export const FLUSH_INTERVAL_MS = 10;

export class Cadence {
  /** When the last one went (performance.now()). */
  private last = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {}

  /** Milliseconds until the next one may go; 0 or less: now. */
  wait(): number {
    return this.last + this.intervalMs - performance.now();
  }

  /** One went now: a timed one no longer waits. */
  sent(): void {
    this.cancel();
    this.last = performance.now();
  }

  /** Calls `fn` once the next one may go, unless a call is already set. */
  later(fn: () => void): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, Math.ceil(this.wait()));
    // Never what keeps the process alive: the publisher's close() hands over and flushes at once.
    this.timer.unref();
  }

  /** The connection went (or the publisher closes): nothing is timed, and the next one goes at once. */
  reset(): void {
    this.cancel();
    this.last = -Infinity;
  }

  private cancel(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }
}

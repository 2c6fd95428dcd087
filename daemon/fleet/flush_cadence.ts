// When the publisher's next flush may go. A flush is a PING the server
// answers with a PONG, and the publisher used to send one per round trip (as
// soon as the last was answered): nats-server then did a PONG write and a
// wake-up per round trip. At 100k msg/s that was about 1,200 PINGs a second,
// and the server spent 3.4–3.7 µs of CPU per netlink message; with at most one
// flush every 10 ms, 2.7–2.9 (at 2,000 msg/s: 103–116 µs, then 67–73). The
// daemon's own CPU did not change (bench/README.md, issue 18).
// Delivery does not wait for it: messages are handed to the client at the end
// of their receive batch, as before. Only the confirmation waits, and with it
// `published` and the release of what is held; the publisher does not wait
// when half its unflushed bound is reached, nor at close.

/** At most one flush in this many ms (see above). */
export const FLUSH_INTERVAL_MS = 10;

export class FlushCadence {
  /** When the last flush was sent (performance.now()). */
  private last = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly intervalMs: number) {}

  /** Milliseconds until the next flush may go; 0 or less: now. */
  wait(): number {
    return this.last + this.intervalMs - performance.now();
  }

  /** A flush went now: a timed one no longer waits. */
  sent(): void {
    this.cancel();
    this.last = performance.now();
  }

  /** Calls `fn` once the next flush may go, unless a call is already set. */
  later(fn: () => void): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      fn();
    }, Math.ceil(this.wait()));
    // Never what keeps the process alive: the publisher's close() flushes at once.
    this.timer.unref();
  }

  /** The connection went: nothing is timed, and the next connection's first flush goes at once. */
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

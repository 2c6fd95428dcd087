// Whether messages come fast enough for the linger to hold them
// (--nats-linger-above): the rate of the last whole window.
//
// Why a gate: holding hand-overs saves a socket write and a wake-up of
// nats-server per receive batch, which is worth it only when batches follow
// each other closely. At 1,000 msg/s every message is its own batch and the
// linger would only delay it; at 100,000 msg/s it took the daemon's CPU per
// message from 7.27 to 6.69 µs and nats-server's from 2.3–2.9 to 0.33
// (bench/README.md, issue 18). The rate is read from the publisher's message
// numbers at its hand-overs, so the gate costs nothing per message.

/** The rate is that of the last window of at least this many ms. */
export const RATE_WINDOW_MS = 10;

export class RateWindow {
  private start: number;
  private startNumber = 0;
  private rate = 0;

  /**
   * @param aboveRate msg/s at or above which it is busy; 0: always busy.
   * @param now the clock, ms (the tests' own)
   */
  constructor(
    private readonly aboveRate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.start = now();
  }

  /**
   * Busy: the last whole window's rate was at least aboveRate. `number` is
   * the count of messages so far (the publisher's message number); a window
   * closes at the first call RATE_WINDOW_MS or more after it opened, so after
   * a quiet spell the window that closes is long and its rate low.
   */
  busy(number: number): boolean {
    if (this.aboveRate <= 0) return true;
    const now = this.now();
    const span = now - this.start;
    if (span >= RATE_WINDOW_MS) {
      this.rate = ((number - this.startNumber) * 1000) / span;
      this.start = now;
      this.startNumber = number;
    }
    return this.rate >= this.aboveRate;
  }
}

// How long to wait between dials of NATS: ever longer while the server stays
// away, from BACKOFF_MIN_MS to BACKOFF_MAX_MS, stretched by a jitter of this
// daemon's own so that a fleet does not dial a restarted server all at once.
//
// Why a function of time, not of a count: nats.js calls its
// reconnectDelayHandler at the top of every turn of its dial loop, and a
// turn is a dial or a wake-up while it waits for one (dodialLoop in
// @nats-io/nats-core); it dials once `lastConnect + wait <= now`. A counter
// bumped per call grew the wait at every wake-up, so after the second dial
// the daemon dialled only every 5 s (measured: dials at 0, 0.3, 5.0, 9.9,
// 14.5 and 18.9 s). Half the time since the connection was lost, asked at
// any turn, gives dials at 0, 0.25, 0.5, 1, 2, 4 and 8 s, then every 5 s
// (each time stretched by the jitter).

export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 5000;

export class DialPacing {
  /** When the connection was lost (or the first dial began); null while connected. */
  private since: number | null = null;

  /** A factor in [0.75, 1): this daemon's own stretch of every wait. */
  constructor(
    readonly jitter = 0.75 + Math.random() * 0.25,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The wait before the next dial, ms; the first call after connected() starts the clock. */
  wait(): number {
    const t = this.now();
    this.since ??= t;
    return this.jitter * Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, (t - this.since) / 2));
  }

  /** Connected: the next loss starts the clock again. */
  connected(): void {
    this.since = null;
  }
}

/** The wait before first-connection dial `n` (1, 2, …), which the daemon paces itself: 0.25, 0.5, 1, 2, 4, then 5 s, stretched by the jitter. */
export function firstDialWait(n: number, jitter: number): number {
  return jitter * Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(n - 1, 8));
}

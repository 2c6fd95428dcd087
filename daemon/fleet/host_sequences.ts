// One /fleet stream's count of each host's sequence (the `n` header: 1, 2, …
// per run of the host's daemon, one per message meant for NATS), and the
// gaps it tells: a jump (`sequence`), or the host's own notice that it
// dropped some (`publisher`), each lost message told once.
//
// A host's run is the epoch of its cursors (the `c` header, and the `run` of
// its drop notices). Two runs are remembered per host: a restarted daemon
// begins a new one (its messages before the first seen here are lost: told
// from 1), and two daemons publishing as one host for a moment (before one
// of them stands aside, host_claim.ts) are counted each on its own, not as
// one sequence jumping back and forth.
//
// Notices come live, on the events subject, and may be ahead of the messages
// (a reading of the JetStream stream far behind): a notice is kept (bounded)
// and told when the reading reaches the jump it explains; one the reading has
// passed was told as that jump already. A notice never moves a count itself,
// so a forged one cannot make a host's real messages look like repeats.

/** What a gap frame carries about a host's messages. */
export interface SequenceGap {
  reason: 'sequence' | 'publisher';
  host: string;
  lost: number;
  from: number;
  to: number;
}

/** A host's notice on nlbridge.<host>.events: messages from..to of its run dropped (count of them). */
export interface DropNotice {
  host: string;
  /** The publisher's run (its cursors' epoch); null from a publisher that does not say it: its current run. */
  run: string | null;
  count: number;
  from: number;
  to: number;
}

interface RunCount {
  run: string;
  last: number;
}

interface HostState {
  current: RunCount;
  previous: RunCount | null;
}

/**
 * Hosts whose sequence one stream remembers: whoever may publish on NATS
 * names hosts, so the map is bounded; the oldest host seen is forgotten first
 * (its next message is a new baseline, as after a restart).
 */
export const MAX_TRACKED_HOSTS = 4096;
/** Notices kept for a reading behind them; the oldest is forgotten first (its jump is then told as `sequence`, the count the same). */
export const MAX_KEPT_NOTICES = 256;

export class HostSequences {
  private readonly hosts = new Map<string, HostState>();
  private kept: DropNotice[] = [];

  constructor(private readonly tell: (gap: SequenceGap) => void) {}

  /**
   * Messages n..n+k-1 of `host`'s run: how many of them were seen already
   * (k: all, a resend after the publisher's reconnect). A jump is told first.
   */
  message(host: string, run: string, n: number, k: number): number {
    const lastN = n + k - 1;
    const h = this.hosts.get(host);
    if (h === undefined) {
      // The first message of this host seen by this stream: the baseline.
      if (this.hosts.size >= MAX_TRACKED_HOSTS) this.hosts.delete(this.hosts.keys().next().value!);
      this.hosts.set(host, { current: { run, last: lastN }, previous: null });
      return 0;
    }
    const r = this.runOf(h, run);
    if (lastN <= r.last) return k;
    const seen = Math.max(0, r.last - n + 1);
    if (n > r.last + 1) this.jump(host, r.run, r.last + 1, n - 1);
    r.last = lastN;
    return seen;
  }

  /** A host's drop notice: kept until the reading reaches the jump it explains; one the reading passed was told as that jump. */
  dropped(e: DropNotice): void {
    const h = this.hosts.get(e.host);
    const run = e.run ?? h?.current.run;
    const r = h === undefined || run === undefined ? null : known(h, run);
    if (r !== null && e.to <= r.last) return;
    if (this.kept.length >= MAX_KEPT_NOTICES) this.kept.shift();
    this.kept.push({ ...e, run: run ?? null });
  }

  /** Forgets every host's count (the stream lost messages of every host between: each host's next message is a baseline). */
  clear(): void {
    this.hosts.clear();
  }

  /** The count of `run` for a host: the current one, the previous (a second daemon as this host), or a new run from 0 (a restart). */
  private runOf(h: HostState, run: string): RunCount {
    const r = known(h, run);
    if (r === h.current) return r;
    if (r !== null) {
      h.previous = h.current;
      h.current = r;
      return r;
    }
    h.previous = h.current;
    h.current = { run, last: 0 };
    return h.current;
  }

  /** Messages from..to of a host's run did not come: told as the kept notices say, the rest as `sequence`. */
  private jump(host: string, run: string, from: number, to: number): void {
    let at = from;
    const mine = this.kept.filter((e) => e.host === host && e.run === run && e.from >= from && e.to <= to).sort((x, y) => x.from - y.from);
    for (const e of mine) {
      if (e.from < at) continue;
      if (e.from > at) this.tell({ reason: 'sequence', host, lost: e.from - at, from: at, to: e.from - 1 });
      this.tell({ reason: 'publisher', host, lost: e.count, from: e.from, to: e.to });
      at = e.to + 1;
    }
    if (at <= to) this.tell({ reason: 'sequence', host, lost: to - at + 1, from: at, to });
    this.kept = this.kept.filter((e) => !(e.host === host && e.run === run && e.to <= to));
  }
}

/** The count of `run` among the two a host's state keeps, or null. */
function known(h: HostState, run: string): RunCount | null {
  if (h.current.run === run) return h.current;
  return h.previous !== null && h.previous.run === run ? h.previous : null;
}

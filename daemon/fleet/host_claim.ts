// One daemon per host id on the bus. Two daemons started with the same
// --host-id (two machines left with the same hostname, the default; a second
// instance on one machine) would both answer every request on
// nlbridge.<host>.send, so one request was sent twice (an outside check
// found it), and would both publish as <host>, so a receiver sees two runs
// interleaved and cannot count loss by `n`.
//
// So each daemon claims its host id on nlbridge.<host>.claim: it subscribes
// there and announces itself (run, start time, hostname, pid) at every
// (re)connect. Of two claimants the older (earlier start; the run breaks a
// tie) keeps the host id: the newer stands aside — publishes nothing and
// answers no sends, as if disconnected (what it would publish is held up to
// --nats-buffer-bytes, dropped and counted beyond) — and both log it and
// show it in /status. The older answers a newer's claim with its own, so a
// newer that missed the first announcement still learns of it. One standing
// aside announces again every CLAIM_RECHECK_MS and takes the host id over
// when no older claimant answers within CLAIM_SETTLE_MS (the older one
// stopped, or was restarted with another --host-id).
//
// A server that refuses this daemon the claim subject (permissions written
// before it existed) leaves the host id unchecked: the daemon goes on as
// before and says so once.

import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import type pino from 'pino';

/** How long a claim waits for an older claimant before this daemon holds the host id. */
export const CLAIM_SETTLE_MS = 300;
/** How often a daemon standing aside asks again (and a holder hears of it). */
export const CLAIM_RECHECK_MS = 10_000;

/** Who claims a host id: what a claim message carries (JSON). */
export interface Claimant {
  /** This run of the daemon: random at start. */
  run: string;
  /** When it started, ms since the epoch. */
  startedAt: number;
  hostname: string;
  pid: number;
}

/** checking: announced, waiting CLAIM_SETTLE_MS; unchecked: the server refuses the claim subject. */
export type ClaimState = 'checking' | 'holding' | 'standing-aside' | 'unchecked';

export interface HostClaimStatus {
  state: ClaimState;
  /** Another daemon claiming this host id, heard within the last 3 × CLAIM_RECHECK_MS; null if none. */
  other: Claimant | null;
}

/** Whether a has the host id before b: started earlier, or at the same ms with the smaller run. */
export function isOlder(a: Claimant, b: Claimant): boolean {
  return a.startedAt < b.startedAt || (a.startedAt === b.startedAt && a.run < b.run);
}

/** A claim message's claimant, or null for anything else (a claim subject is anyone's to publish on). */
export function parseClaimant(data: Uint8Array): Claimant | null {
  try {
    const c = JSON.parse(Buffer.from(data).toString('utf8')) as Partial<Claimant>;
    if (typeof c.run !== 'string' || typeof c.hostname !== 'string') return null;
    if (!Number.isSafeInteger(c.startedAt) || !Number.isSafeInteger(c.pid)) return null;
    return { run: c.run, startedAt: c.startedAt!, hostname: c.hostname, pid: c.pid! };
  } catch {
    return null;
  }
}

export class HostClaim {
  private state: ClaimState = 'checking';
  private other: Claimant | null = null;
  private otherHeardAt = 0;
  /** Whether an older claimant was heard since the last announcement. */
  private olderHeard = false;
  private conn: NatsConnection | null = null;
  private sub: Subscription | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private lastAnswer = 0;
  /** Other runs already logged, so a claimant asking every CLAIM_RECHECK_MS is logged once. */
  private readonly logged = new Set<string>();
  private readonly payload: string;

  constructor(
    private readonly subject: string,
    private readonly me: Claimant,
    private readonly log: pino.Logger,
    /** Called as this daemon comes to hold the host id (true) or to stand aside (false). */
    private readonly onHolding: (holding: boolean) => void,
  ) {
    this.payload = JSON.stringify(me);
  }

  holding(): boolean {
    return this.state === 'holding' || this.state === 'unchecked';
  }

  standingAside(): boolean {
    return this.state === 'standing-aside';
  }

  status(): HostClaimStatus {
    const fresh = this.other !== null && Date.now() - this.otherHeardAt < 3 * CLAIM_RECHECK_MS;
    return { state: this.state, other: fresh ? this.other : null };
  }

  /** A connection is up (the first, a reconnect, or a new one after a close): subscribe on it and announce. */
  connected(c: NatsConnection): void {
    if (this.conn !== c) {
      // The client subscribes again by itself after a reconnect; a new connection needs its own.
      this.conn = c;
      this.sub = c.subscribe(this.subject, { callback: (_err, m) => this.heard(m) });
    }
    this.announce();
  }

  /** A permission violation the server reported: true if it is about the claim subject (then handled here). */
  refused(operation: string, subject: string): boolean {
    if (subject !== this.subject) return false;
    if (this.state !== 'unchecked') {
      this.log.warn(
        { operation, subject, host: this.me },
        "cannot check that no other daemon uses this --host-id: the NATS server refuses this daemon the claim subject (systemd/README.md lists it in each host's permissions); going on unchecked",
      );
      const was = this.holding();
      this.state = 'unchecked';
      this.clearTimers();
      if (!was) this.onHolding(true);
    }
    return true;
  }

  close(): void {
    this.clearTimers();
    this.sub?.unsubscribe();
    this.sub = null;
    this.conn = null;
  }

  private announce(): void {
    const c = this.conn;
    if (c === null || this.state === 'unchecked' || c.isClosed()) return;
    this.olderHeard = false;
    c.publish(this.subject, this.payload);
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = setTimeout(() => this.settled(), CLAIM_SETTLE_MS).unref();
  }

  /** CLAIM_SETTLE_MS after an announcement: no older claimant answered, so the host id is this daemon's. */
  private settled(): void {
    this.settleTimer = null;
    if (this.olderHeard || this.state === 'holding' || this.state === 'unchecked') return;
    if (this.state === 'standing-aside')
      this.log.info({ subject: this.subject }, 'no older daemon claims this --host-id any more: this one publishes and answers sends now');
    this.state = 'holding';
    this.stopRecheck();
    this.onHolding(true);
  }

  private heard(m: Msg): void {
    const o = parseClaimant(m.data);
    if (o === null || o.run === this.me.run) return;
    // Whoever may publish as this host may send claims of made-up runs: the runs logged stay few.
    if (this.logged.size >= 64) this.logged.clear();
    this.other = o;
    this.otherHeardAt = Date.now();
    if (isOlder(o, this.me)) {
      this.olderHeard = true;
      if (this.state === 'standing-aside' || this.state === 'unchecked') return;
      if (!this.logged.has(o.run)) {
        this.logged.add(o.run);
        this.log.error(
          { subject: this.subject, other: o, me: this.me },
          'another daemon, started earlier, uses this --host-id: this one stands aside (publishes nothing, answers no sends) until it is gone; give each daemon its own --host-id',
        );
      }
      this.state = 'standing-aside';
      if (this.settleTimer !== null) clearTimeout(this.settleTimer);
      this.settleTimer = null;
      this.startRecheck();
      // From checking too: what waited for the claim is dropped, not published later.
      this.onHolding(false);
      return;
    }
    // A newer claimant: it stands aside when it hears this daemon's claim, sent again
    // here (at most once per CLAIM_SETTLE_MS) in case it missed the first.
    if (!this.logged.has(o.run)) {
      this.logged.add(o.run);
      this.log.error(
        { subject: this.subject, other: o, me: this.me },
        'another daemon, started later, uses this --host-id: it stands aside while this one runs; give each daemon its own --host-id',
      );
    }
    const now = Date.now();
    if (now - this.lastAnswer >= CLAIM_SETTLE_MS && this.conn !== null && !this.conn.isClosed()) {
      this.lastAnswer = now;
      this.conn.publish(this.subject, this.payload);
    }
  }

  private startRecheck(): void {
    if (this.recheckTimer === null) this.recheckTimer = setInterval(() => this.announce(), CLAIM_RECHECK_MS).unref();
  }

  private stopRecheck(): void {
    if (this.recheckTimer !== null) clearInterval(this.recheckTimer);
    this.recheckTimer = null;
  }

  private clearTimers(): void {
    this.stopRecheck();
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
  }
}

// The publishing side of the fleet: a subscriber of the bus, like a
// WebSocket stream, that puts each message of the published groups on NATS.
//
// Why it keeps its own buffer (the "Know the client"): the NATS
// client has none across a reconnect — what sits in its outbound buffer when
// the connection dies is discarded at the next dial, while its own counters
// say it was sent — and publish() has no backpressure. So a message is only
// counted as published once a flush (PING → PONG) that followed it came back:
// the server read everything before the PING. Until then it stays here; when
// the connection goes (or the flush is refused), the unconfirmed messages go
// back to the front of the queue and are sent again after the reconnect.
// That makes delivery across a reconnect at-least-once: a receiver drops a
// repeat by its `n` header. What does not fit in --nats-buffer-bytes is
// dropped at once, counted by reason, and told on the events subject.
//
// Why one NATS message may carry several netlink messages: under a flood the
// NATS client's per-message work (headers, encoding, the server's parsing)
// cost the local bridge two thirds of its WebSocket throughput (issue 18's
// profile: 25 % of the daemon's time in the client at one NATS message per
// netlink message). So messages are kept as runs: consecutive messages of
// one group and one sender go in one NATS message, back to back as in a
// netlink receive buffer (each at NLMSG_ALIGN of the one before, delimited by
// its own nlmsg_len), with `n` of the first and the count `k`. A message is
// copied into the open run as it arrives (into a shared slab: no object per
// message outlives its delivery, so thousands waiting for a flush's answer
// are not promoted to the old generation); a run ends at its hand-over or at
// a message that cannot join it. At a low rate a run is one message. A run
// is kept as formed: a resend after a reconnect is the same NATS message with
// the same Nats-Msg-Id, so JetStream's dedupe stays exact.
//
// Flushes are spaced (cadence.ts): at most one per FLUSH_INTERVAL_MS, unless
// half the unflushed bound is reached or at close. A receive batch is handed
// over at its end, except while messages come at --nats-linger-above msg/s or
// faster (rate_window.ts): then at most one hand-over per --nats-linger-ms,
// never waiting when half the unflushed bound waits, on a new connection, or
// at close. No NATS import here: the link is an interface (index.ts
// implements it over @nats-io/transport-node), so this runs against anything.

import type { MalformedInfo, RxMessage, Subscriber } from '../netlink/message';
import { Cadence, FLUSH_INTERVAL_MS } from './cadence';
import { RateWindow } from './rate_window';
import { RunWriter, runData, runHeaders, type RunEntry } from './runs';
import { eventsSubject, groupSubject } from './subjects';
import type { DropEpisode, DropReason, Entry, EventEntry, Link, PublisherCounts, PublisherOptions } from './publisher_types';

export { DROP_REASONS, type DropReason, type Link, type PublisherCounts, type PublisherOptions } from './publisher_types';

/** Per-message bytes counted beside the message itself: the subject and headers the client adds. */
const OVERHEAD_BYTES = 96;
/** The most payload one NATS message carries (and never above the server's max_payload). */
export const MAX_RUN_BYTES = 64 * 1024;
/** Room left under max_payload for a run's headers (the client counts them in). */
const HEADER_ROOM = 512;
/** NATS's default max_payload: the bound for runs formed before a server said its own. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export class FleetPublisher implements Subscriber {
  readonly groups: readonly number[];
  private readonly host: string;
  private readonly bufferBytes: number;
  /**
   * What deliver() holds up to: --nats-buffer-bytes (at least 1 KiB), or 0 while another daemon holds the
   * host id (standAside()): every message is then dropped, as `host-id`, on the one test deliver() makes anyway.
   */
  private holdLimit: number;
  private readonly unflushedMax: number;
  private readonly onDrop: PublisherOptions['onDrop'];
  private readonly cadence: Cadence;
  /** Hand-overs to the client, with --nats-linger-ms; null without. */
  private readonly linger: Cadence | null;
  /** Whether the linger holds: messages come at --nats-linger-above or faster. */
  private readonly rate: RateWindow;
  private readonly msgIdPrefix: string | null;
  private readonly events: string;
  private readonly runField: { run?: string };
  private readonly subjects = new Map<number, string>();

  private link: Link | null = null;
  /** The last server's max_payload: runs formed while disconnected fit it. */
  private knownMaxPayload = DEFAULT_MAX_PAYLOAD;
  /**
   * Entries not yet handed to the client; `head` is the first live index (shift() is O(n)).
   * This array and `unflushed` are emptied by `length = 0`, never replaced by a new `[]`: a new
   * empty array starts with small-integer elements, the first push of an entry changes its map,
   * and the bus's receive path, into which deliver() is inlined, was deoptimized for that
   * ("wrong map") three times in one daemon's warm-up and flood (bench/README.md, issue 18).
   */
  private waiting: Entry[] = [];
  private head = 0;
  /** The run messages are being added to; in `waiting` once closed. */
  private readonly runs = new RunWriter();
  /** Handed to the client, not yet confirmed by a flush. */
  private unflushed: Entry[] = [];
  private unflushedBytes = 0;
  /** Bytes of messages in waiting + unflushed (events are not counted: one per episode). */
  private heldBytes = 0;
  private heldMessages = 0;
  private flushing = false;
  /** Bumped when the unconfirmed entries are taken back: a late flush answer of before is ignored. */
  private epoch = 0;
  private number = 0;
  private published = 0;
  private readonly dropped: Record<DropReason, number> = { buffer: 0, 'max-payload': 0, 'host-id': 0 };
  private episode: DropEpisode | null = null;
  private closed = false;

  constructor(opts: PublisherOptions) {
    this.groups = [...opts.groups];
    this.host = opts.host;
    this.bufferBytes = opts.bufferBytes;
    this.holdLimit = opts.bufferBytes;
    this.unflushedMax = opts.unflushedBytes ?? Math.min(1024 * 1024, Math.max(4096, Math.floor(opts.bufferBytes / 4)));
    this.onDrop = opts.onDrop;
    this.cadence = new Cadence(opts.flushIntervalMs ?? FLUSH_INTERVAL_MS);
    this.linger = opts.lingerMs ? new Cadence(opts.lingerMs) : null;
    this.rate = new RateWindow(opts.lingerAboveRate ?? 0);
    this.msgIdPrefix = opts.msgIdPrefix ?? null;
    this.events = eventsSubject(opts.host);
    this.runField = opts.run === undefined ? {} : { run: opts.run };
    for (const g of this.groups) this.subjects.set(g, groupSubject(opts.host, g));
  }

  counts(): PublisherCounts {
    return { published: this.published, dropped: { ...this.dropped }, heldMessages: this.heldMessages, heldBytes: this.heldBytes };
  }

  /** The connection is up (first connect or reconnect): send what waits. */
  linkUp(link: Link): void {
    this.link = link;
    this.pump();
  }

  /**
   * A server's max_payload, known at connect before the link is up (while the
   * host id claim is checked: host_claim.ts), so that runs formed meanwhile fit it.
   */
  serverMaxPayload(maxPayload: number | undefined): void {
    if (maxPayload !== undefined) this.knownMaxPayload = maxPayload;
  }

  /** The connection is gone: nothing more is handed to the client, and what it was not seen to confirm is taken back. */
  linkDown(): void {
    this.link = null;
    this.takeBack();
  }

  /**
   * Another daemon holds this host id (host_claim.ts): nothing is published,
   * what is held and every message from now on is dropped as `host-id`, each
   * number counted, until standAside(false); the drop notice then goes out
   * first, on the events subject, when the link is up again. Notices of
   * overruns meanwhile are dropped with it: they would go out as that host's.
   */
  standAside(aside: boolean): void {
    this.holdLimit = aside ? 0 : this.bufferBytes;
    if (!aside) return;
    this.linkDown();
    this.closeRun();
    for (let i = this.head; i < this.waiting.length; i++) {
      const e = this.waiting[i];
      if (e.kind !== 'run') continue;
      this.release(e);
      for (let k = 0; k < e.count; k++) this.drop('host-id', e.n + k);
    }
    this.waiting.length = 0;
    this.head = 0;
  }

  // --- Subscriber (the bus calls these) ---

  deliver(m: RxMessage): void {
    if (this.closed) return;
    const n = ++this.number;
    const size = m.bytes.length + OVERHEAD_BYTES;
    if (this.heldBytes + size > this.holdLimit) {
      this.dropFull(n);
      return;
    }
    this.closeEpisode();
    this.heldBytes += size;
    this.heldMessages++;
    const ended = this.runs.add(m, n, size, this.runLimit(), this.unflushedMax);
    if (ended !== null) this.waiting.push(ended);
  }

  /** The end of a receive batch: what it brought goes out now, or, while messages come fast, within the linger. */
  flush(): void {
    this.handOver();
  }

  private handOver(): void {
    const linger = this.linger;
    // What the linger holds stays under half the smaller of the unflushed and the buffer bounds: at that it goes at once.
    const waitingBytes = this.heldBytes - this.unflushedBytes;
    if (
      linger === null ||
      this.closed ||
      linger.wait() <= 0 ||
      !this.rate.busy(this.number) ||
      waitingBytes * 2 >= Math.min(this.unflushedMax, this.bufferBytes)
    ) {
      this.pump();
      return;
    }
    linger.later(() => this.pump());
    // What was handed over already is confirmed on the flush cadence, not the linger's.
    if (this.link !== null) this.flushSoon(this.link);
  }

  overrun(lost: number): void {
    // Standing aside: this daemon speaks for no host (standAside()).
    if (this.holdLimit === 0) return;
    this.closeRun();
    const last = this.waiting.length > this.head ? this.waiting[this.waiting.length - 1] : null;
    if (last?.kind === 'event' && last.event.type === 'overrun') (last.event.lost as number) += lost;
    else this.waiting.push({ kind: 'event', event: { type: 'overrun', host: this.host, lost } });
  }

  malformed(_info: MalformedInfo): void {
    // Counted by the bus (nlbridge_received_rejected_total); nothing of it is published.
  }

  /** Stops taking messages and hands over what waits; the caller waits for the answers (see index.ts). */
  close(): void {
    this.closed = true;
    this.pump();
  }

  // --- the queue ---

  /** How long a run may grow: 64 KiB, and under the server's max_payload with room for the headers. */
  private runLimit(): number {
    return Math.min(MAX_RUN_BYTES, this.knownMaxPayload - HEADER_ROOM);
  }

  private closeRun(): void {
    const r = this.runs.close();
    if (r !== null) this.waiting.push(r);
  }

  /** Message n found the hold limit reached: the buffer full, or this daemon standing aside (kept out of deliver(), the hot path). */
  private dropFull(n: number): void {
    this.drop(this.holdLimit === 0 ? 'host-id' : 'buffer', n);
  }

  private drop(reason: DropReason, n: number, detail?: string): void {
    // A run's numbers follow each other: a drop ends it.
    this.closeRun();
    this.dropped[reason]++;
    const ep = this.episode;
    if (ep) {
      ep.count++;
      // Standing aside drops what waited, numbered below an episode already open.
      if (n < ep.from) ep.from = n;
      else if (n > ep.to) ep.to = n;
      ep.reasons[reason] = (ep.reasons[reason] ?? 0) + 1;
    } else {
      this.episode = { count: 1, from: n, to: n, reasons: { [reason]: 1 } };
      this.onDrop?.(reason, n, detail);
    }
  }

  /** A drop episode ends when a message is kept again (or the link is up with nothing waiting): its notice takes its place in the queue. */
  private closeEpisode(): void {
    const ep = this.episode;
    if (!ep) return;
    this.episode = null;
    this.closeRun();
    this.waiting.push(this.notice(ep));
  }

  private notice(ep: DropEpisode): EventEntry {
    return { kind: 'event', event: { type: 'dropped', host: this.host, ...this.runField, ...ep } };
  }

  /**
   * Drops the run at the head, over max_payload (a message above it, or a run
   * formed for a server with a larger one); its notice takes its place, so it goes out next.
   */
  private refuse(r: RunEntry, detail: string): void {
    this.release(r);
    // An episode open meanwhile (newer messages dropped, buffer full) goes on as its own:
    // merged, one notice said `from` 113 `to` 11 and a watcher counted the loss twice (an audit).
    const open = this.episode;
    this.episode = null;
    for (let i = 0; i < r.count; i++) this.drop('max-payload', r.n + i, detail);
    const ep = this.episode!;
    this.episode = open;
    this.waiting[this.head] = this.notice(ep);
  }

  private takeBack(): void {
    this.epoch++;
    this.flushing = false;
    this.cadence.reset();
    this.linger?.reset();
    if (this.unflushed.length === 0) return;
    this.waiting = this.unflushed.concat(this.waiting.slice(this.head));
    this.head = 0;
    this.unflushed.length = 0;
    this.unflushedBytes = 0;
  }

  private pump(): void {
    const link = this.link;
    if (!link) return;
    this.closeRun();
    if (this.episode && this.waiting.length === this.head) this.closeEpisode();
    const maxPayload = link.maxPayload();
    if (maxPayload !== null) this.knownMaxPayload = maxPayload;
    const from = this.head;
    while (this.head < this.waiting.length && this.unflushedBytes < this.unflushedMax) {
      const e = this.waiting[this.head];
      if (e.kind === 'run' && maxPayload !== null && e.bytes > maxPayload - (e.count > 1 ? HEADER_ROOM : 0)) {
        // The client would throw; the server would refuse it anyway.
        this.refuse(e, `${e.bytes} bytes > max_payload ${maxPayload}`);
        continue;
      }
      try {
        if (e.kind === 'run') link.publish(this.subjectOf(e.group), runData(e), runHeaders(e, this.msgIdPrefix));
        else link.publish(this.events, Buffer.from(JSON.stringify(e.event)), null);
      } catch (err) {
        if (/max_payload/i.test(String((err as Error).message))) {
          if (e.kind === 'run') this.refuse(e, (err as Error).message);
          // A notice over a max_payload smaller than it (under ~100 bytes) cannot go: it is
          // skipped, not retried forever at the head of the queue (which stopped all publishing).
          // What it said stays in /status and /metrics, and `n` shows the gap.
          else this.head++;
          continue;
        }
        // Closed or disconnected under us: the status loop will say so; keep it.
        break;
      }
      this.head++;
      this.unflushed.push(e);
      if (e.kind === 'run') this.unflushedBytes += e.size;
    }
    // The linger counts from a hand-over that handed something (not one the unflushed bound stopped).
    if (this.head > from) this.linger?.sent();
    this.compact();
    this.flushSoon(link);
  }

  /** Flushes what was handed over: now, or once the flush cadence allows. */
  private flushSoon(link: Link): void {
    if (this.unflushed.length === 0 || this.flushing) return;
    if (this.cadence.wait() <= 0 || this.closed || this.unflushedBytes * 2 >= this.unflushedMax) this.startFlush(link);
    else
      this.cadence.later(() => {
        const now = this.link;
        if (now !== null && !this.flushing && this.unflushed.length > 0) this.startFlush(now);
      });
  }

  private subjectOf(group: number): string {
    return this.subjects.get(group) ?? groupSubject(this.host, group);
  }

  private startFlush(link: Link): void {
    this.flushing = true;
    this.cadence.sent();
    const epoch = this.epoch;
    const k = this.unflushed.length;
    link.flush().then(
      () => {
        if (epoch !== this.epoch) return;
        const done = this.unflushed.splice(0, k);
        for (const e of done) {
          if (e.kind !== 'run') continue;
          this.published += e.count;
          this.unflushedBytes -= e.size;
          this.release(e);
        }
        this.flushing = false;
        // What waited for room goes now, or within the linger.
        this.handOver();
      },
      () => {
        if (epoch !== this.epoch) return;
        this.takeBack();
      },
    );
  }

  private release(r: RunEntry): void {
    this.heldBytes -= r.size;
    this.heldMessages -= r.count;
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}

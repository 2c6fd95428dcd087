// Watching the fleet (issue 18): what one /fleet/groups/… stream receives
// from NATS, turned into the messages and notices a local stream carries.
//
// Why a wildcard on every group of a host (nlbridge.<host|*>.g.*) and a
// filter here, not one subscription per watched group: a host's sequence
// header `n` counts every message it publishes, of every group. A watcher of
// group 2 alone would see n jump at each message of group 4 and could not
// tell those from lost ones. Seeing all of a host's groups, it counts the
// host's sequence exactly and hands the stream only its own groups. The cost
// is the traffic of the host's other published groups to this daemon.
//
// No NATS import here but its types, and nothing HTTP: the sink is what a
// streams/Subscription already offers (deliver, flush, event).

import type { Msg, MsgHdrs, NatsConnection, Subscription as NatsSubscription } from '@nats-io/transport-node';
import { NLMSG_HDRLEN, align, decodeHeader } from '../../addon/codec';
import type { RxMessage } from '../netlink/message';
import { cursorOf, type ReplayFrom } from './cursor';
import { HostSequences } from './host_sequences';
import { replayStart, type StreamBounds } from './replay_start';
import { HEADERS, SUBJECT_ROOT } from './subjects';
import type { WatchSelection } from './watch_selection';

export { cursorOf, parseFleetCursor, streamId, type ReplayFrom } from './cursor';
export { MAX_TRACKED_HOSTS } from './host_sequences';
export type { StreamBounds } from './replay_start';
export { MAX_WATCH_HOSTS, parseHosts, type WatchSelection } from './watch_selection';

/** What a fleet stream is fed through: a streams/Subscription. */
export interface FleetSink {
  readonly groups: readonly number[];
  deliver(m: RxMessage): void;
  flush(): void;
  event(type: string, fields: Record<string, unknown>): void;
  /** Whether the client's backlog is at most `fraction` of its bound (the reading of the stream is paced by it). */
  room(fraction: number): boolean;
  /** How long a client may stay over its backlog (--ws-stall-ms), and closing it when it did. */
  readonly stallMs: number;
  stalled(): void;
}

/** Pacing a reading of the stream: stopped above half the client's backlog bound, opened again below a quarter. */
const PAUSE_ABOVE = 0.5;
const RESUME_BELOW = 0.25;
const PACE_POLL_MS = 25;

/** A stored message as the watcher needs it (a JsMsg is one). */
export interface StoredMsg {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  /** Its stream sequence: the S of the frame's cursor. */
  seq: number;
}

/**
 * A watcher reading the JetStream stream (--nats-jetstream on) instead of
 * core subscriptions: index.ts binds these to the stream (jetstream.ts), so
 * this file imports no JetStream client.
 */
export interface WatchReplay {
  /** Where the client resumes (after the last message it saw). null: from now on. */
  since: ReplayFrom | null;
  bounds(c: NatsConnection): Promise<StreamBounds>;
  open(c: NatsConnection, start: number, on: { message(m: StoredMsg): void; trouble(detail: string): void }): Promise<{ stop(): void }>;
  /** The stream or this reader's consumer went: the daemon checks the stream now (and creates it again). */
  lost(): void;
}

export class FleetWatcher {
  private readonly groups: Set<number>;
  private readonly seqs: HostSequences;
  private subs: NatsSubscription[] = [];
  private closed = false;
  /** The stream sequence expected next (replay only): a message past it means the stream lost those between. */
  private nextSeq: number | null = null;
  /** A cursor inside a run ("S.i"): the messages of stream message S the client has. */
  private skipIn: ReplayFrom | null = null;
  /** The id of the stream read (its cursors' first part): where nextSeq is a place. */
  private streamOfCursors = '';
  private reading: { stop(): void } | null = null;
  /** While a reading is paced (paceReading): the look at the client's backlog. */
  private paused: NodeJS.Timeout | null = null;
  /** Where the stream is read from when it is opened: the client's cursor, null for the stream's end. */
  private since: ReplayFrom | null;
  /** Bumped at each attach/detach: a replay that opens after its connection was replaced is stopped at once. */
  private generation = 0;

  constructor(
    readonly selection: WatchSelection,
    private readonly sink: FleetSink,
    private readonly replay: WatchReplay | null = null,
  ) {
    this.groups = new Set(selection.groups);
    this.since = replay?.since ?? null;
    this.seqs = new HostSequences((gap) => {
      this.sink.event('gap', { ...gap });
      this.sink.flush();
    });
  }

  /** Subscribes on this connection (again after the fleet dialled a new one; the client itself resubscribes across a reconnect). */
  attach(c: NatsConnection): void {
    if (this.closed) return;
    this.detach();
    const hosts = this.selection.hosts ?? ['*'];
    try {
      for (const h of hosts) {
        if (this.replay === null)
          this.subs.push(c.subscribe(`${SUBJECT_ROOT}.${h}.g.*`, { callback: (err, m) => void (err === null && this.onMessage(m)) }));
        this.subs.push(c.subscribe(`${SUBJECT_ROOT}.${h}.events`, { callback: (err, m) => void (err === null && this.onEvent(m)) }));
      }
    } catch (err) {
      // A connection closing under us: the fleet dials again and attaches anew.
      this.detach();
      this.notice(`cannot subscribe on NATS: ${(err as Error).message}`);
      return;
    }
    if (this.replay !== null) void this.openReplay(c, this.replay, this.generation);
  }

  /** Reads the stream from the client's cursor (or from its end), telling first what the stream no longer holds. */
  private async openReplay(c: NatsConnection, replay: WatchReplay, generation: number): Promise<void> {
    const current = (): boolean => !this.closed && generation === this.generation;
    try {
      const bounds = await replay.bounds(c);
      if (!current()) return;
      // On a new connection the watcher's own place, in the stream it read (which may have been re-created since).
      const from =
        this.nextSeq === null
          ? this.since
          : { stream: this.streamOfCursors, seq: this.nextSeq, skip: this.skipIn?.seq === this.nextSeq ? this.skipIn.skip : 0 };
      const { start, skipIn, gap } = replayStart(bounds, from);
      if (gap !== null) {
        this.sink.event('gap', gap);
        // The stream lost messages of every host (or is another stream): each host's next message is a new baseline.
        this.seqs.clear();
      }
      this.skipIn = skipIn;
      this.streamOfCursors = bounds.id;
      this.sink.flush();
      this.nextSeq = start;
      const reading = await replay.open(c, start, {
        // A reading stopped (paced, replaced) may still hand over what was in flight: read again from nextSeq instead.
        message: (m) => {
          if (!current()) return;
          this.onStored(m);
          this.paceReading(c, replay);
        },
        trouble: (d) => {
          if (current()) this.streamLost(c, replay, d);
        },
      });
      if (!current()) reading.stop();
      else this.reading = reading;
    } catch (err) {
      if (current()) this.streamLost(c, replay, `cannot read the JetStream stream (${(err as Error).message})`);
    }
  }

  /**
   * The stream cannot be read (JetStream down, the stream or this reader's
   * consumer deleted): told, then the stream goes on live from core
   * subscriptions, without cursors, until the fleet dials a new connection.
   * Not the ordered consumer's own recovery: it would come back, if ever, on
   * a re-created stream whose sequences are not the client's cursors. A
   * resuming client is served as a live one: what it asked for is gone, and
   * a client closed here would come back with the same cursor (EventSource
   * does) and be told the same again.
   */
  private streamLost(c: NatsConnection, replay: WatchReplay, detail: string): void {
    this.generation++;
    this.reading?.stop();
    this.reading = null;
    // A later reading (a new connection) starts at the stream's end: what came meanwhile was delivered from core subscriptions.
    this.since = null;
    this.nextSeq = null;
    this.skipIn = null;
    replay.lost();
    this.notice(`${detail}: live from NATS instead, without cursors`);
    this.subscribeMessages(c);
  }

  private subscribeMessages(c: NatsConnection): void {
    try {
      for (const h of this.selection.hosts ?? ['*'])
        this.subs.push(c.subscribe(`${SUBJECT_ROOT}.${h}.g.*`, { callback: (err, m) => void (err === null && this.onMessage(m)) }));
    } catch (err) {
      this.notice(`cannot subscribe on NATS: ${(err as Error).message}`);
    }
  }

  private onStored(m: StoredMsg): void {
    if (this.closed) return;
    const next = this.nextSeq;
    if (next !== null && m.seq < next) return;
    if (next !== null && m.seq > next) {
      // The consumer's filter is the stream's one subject: every sequence is ours, so a jump is loss.
      this.sink.event('gap', { reason: 'stream', host: null, lost: m.seq - next, since: next - 1, resumeFrom: m.seq });
      // The hosts' own numbers jump by the same messages: a new baseline, not a second notice of them.
      this.seqs.clear();
    }
    this.nextSeq = m.seq + 1;
    const skip = this.skipIn !== null && this.skipIn.seq === m.seq ? this.skipIn.skip : 0;
    this.skipIn = null;
    this.take(m.subject, m.headers, m.data, m.seq, skip);
  }

  /**
   * Pacing: once the client's backlog is half full, the reading stops (its
   * consumer is deleted) and opens again at the next sequence once the
   * backlog is down to a quarter. A resume over a long stretch of the stream
   * then reaches a client whole at the pace it reads, as a local resume does
   * (netlink/catch_up.ts), where the consumer, which hands over as fast as
   * NATS delivers, made it `dropped` frames. One stopped reading costs a
   * consumer's creation and deletion. A client that stays over half its
   * bound for --ws-stall-ms is closed as stalled.
   */
  private paceReading(c: NatsConnection, replay: WatchReplay): void {
    if (this.paused !== null || this.sink.room(PAUSE_ABOVE)) return;
    this.generation++;
    this.reading?.stop();
    this.reading = null;
    const since = Date.now();
    this.paused = setInterval(() => {
      if (this.sink.room(RESUME_BELOW)) {
        this.stopPause();
        void this.openReplay(c, replay, this.generation);
      } else if (Date.now() - since > this.sink.stallMs) {
        this.stopPause();
        this.sink.stalled();
      }
    }, PACE_POLL_MS);
  }

  private stopPause(): void {
    if (this.paused !== null) clearInterval(this.paused);
    this.paused = null;
  }

  /** A disconnect from NATS: loss for core subscriptions; a stream reader resumes where it was. */
  disconnected(detail: string): void {
    if (this.replay === null) this.notice(detail);
  }

  /** Whether one of this watcher's NATS subscriptions is `sub`. */
  owns(sub: unknown): boolean {
    return this.subs.some((s) => s === sub);
  }

  /** Loss this daemon cannot count (a disconnect, a slow consumer): told at once; the count follows from `n` once messages come again. */
  notice(detail: string): void {
    if (this.closed) return;
    this.sink.event('gap', { reason: 'nats', host: null, lost: null, detail });
    this.sink.flush();
  }

  close(): void {
    this.closed = true;
    this.detach();
  }

  private detach(): void {
    this.generation++;
    this.stopPause();
    this.reading?.stop();
    this.reading = null;
    for (const s of this.subs) {
      try {
        s.unsubscribe();
      } catch {
        /* its connection is closed: nothing left to undo */
      }
    }
    this.subs = [];
  }

  private onMessage(m: Msg): void {
    if (this.closed) return;
    this.take(m.subject, m.headers, m.data, undefined, 0);
  }

  /**
   * A NATS message of nlbridge.<host>.g.<group>: one netlink message, or a
   * run of k back to back (publisher.ts). `streamSeq`: its stream sequence,
   * when read from the stream (the frames' cursors); `skip`: how many of its
   * messages the client already has (a cursor inside the run).
   */
  private take(subject: string, h: MsgHdrs | undefined, data: Uint8Array, streamSeq: number | undefined, skip: number): void {
    // A host id holds no ".", so four tokens.
    const parts = subject.split('.');
    if (parts.length !== 4) return;
    const host = parts[1];
    // The stream holds every host: a stream reader selects its own here.
    if (this.selection.hosts !== null && !this.selection.hosts.includes(host)) return;
    const group = Number(parts[3]);
    const portId = Number(h?.get(HEADERS.port) || 0);
    const kText = h?.get(HEADERS.count) || '1';
    const k = Number(kText);
    // A count the payload cannot hold is refused before it moves the host's sequence (n + k - 1).
    if (!Number.isSafeInteger(k) || k < 1 || (k > 1 && k * NLMSG_HDRLEN > data.byteLength)) {
      this.malformed(
        host,
        group,
        portId,
        `count header k=${JSON.stringify(kText.slice(0, 20))} is not a count of the ${data.byteLength}-byte payload's messages`,
        0,
        data.byteLength,
      );
      return;
    }
    const n = Number(h?.get(HEADERS.number));
    const origin = h?.get(HEADERS.cursor) ?? '';
    if (Number.isSafeInteger(n) && n > 0) skip = Math.max(skip, this.seqs.message(host, origin.split('-')[0], n, k));
    if (skip >= k || !this.groups.has(group)) return;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const receivedAt = Date.now();
    let at = 0;
    for (let i = 0; i < k; i++) {
      if (bytes.length - at < NLMSG_HDRLEN) {
        const reason =
          k === 1 ? 'shorter than a netlink header' : `the payload ends before message ${i + 1} of the ${k} its count header names`;
        this.malformed(host, group, portId, reason, at, bytes.length);
        return;
      }
      const header = decodeHeader(bytes, at);
      // One message may be cut (the publisher's read buffer was shorter): it is delivered as truncated, as locally.
      // In a run each message is whole, delimited by its nlmsg_len.
      if (k > 1 && (header.length < NLMSG_HDRLEN || at + header.length > bytes.length)) {
        this.malformed(
          host,
          group,
          portId,
          `message ${i + 1} of a run of ${k}: nlmsg_len ${header.length} does not fit the payload`,
          at,
          bytes.length,
        );
        return;
      }
      const own = k === 1 ? bytes : bytes.subarray(at, at + header.length);
      const end = Math.min(own.length, Math.max(NLMSG_HDRLEN, header.length));
      if (i >= skip)
        this.sink.deliver({
          group,
          portId,
          header,
          payload: own.subarray(NLMSG_HDRLEN, end),
          bytes: own,
          truncated: header.length > own.length,
          receivedAt,
          fromBridge: false,
          host,
          ...(streamSeq === undefined ? {} : { cursor: cursorOf(this.streamOfCursors, streamSeq, i, k) }),
        });
      at += align(header.length);
    }
    this.sink.flush();
  }

  private malformed(host: string, group: number, portId: number, reason: string, offset: number, length: number): void {
    this.sink.event('malformed', { host, group, portId, reason, offset, length });
    this.sink.flush();
  }

  private onEvent(m: Msg): void {
    if (this.closed) return;
    const host = m.subject.split('.')[1];
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(Buffer.from(m.data).toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    // Anyone allowed on a host's events subject can send any JSON: `null` threw here, in the NATS
    // client's callback, and stalled this daemon's whole connection (outside audit, this stop).
    if (e === null || typeof e !== 'object') return;
    if (e.type === 'overrun' && isCount(e.lost)) {
      this.sink.event('overrun', { host, lost: e.lost });
    } else if (
      e.type === 'dropped' &&
      isCount(e.count) &&
      isCount(e.from) &&
      isCount(e.to) &&
      e.from <= e.to &&
      e.count <= e.to - e.from + 1
    ) {
      // The publisher numbered the dropped messages (from..to) and sends this
      // notice before the next message it keeps: the jump that message shows
      // is this one, told once, as the publisher's (host_sequences.ts). Told at that jump, live or
      // from the stream: a notice moved the count at once before, and a forged one with a far `to`
      // made the host's next real messages look like repeats.
      this.seqs.dropped({ host, run: typeof e.run === 'string' ? e.run : null, count: e.count, from: e.from, to: e.to });
    } else return;
    this.sink.flush();
  }
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

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
import { decodeHeader } from '../../addon/codec';
import type { RxMessage } from '../netlink/message';
import { HEADERS, SUBJECT_ROOT, isSubjectToken } from './subjects';

/** The most hosts one stream may name in ?hosts= (each costs two NATS subscriptions). */
export const MAX_WATCH_HOSTS = 32;
/**
 * Hosts whose sequence one stream remembers: whoever may publish on NATS
 * names hosts, so the map is bounded; the oldest host seen is forgotten first
 * (its next message is a new baseline, as after a restart).
 */
export const MAX_TRACKED_HOSTS = 4096;
/** Longest host id accepted in ?hosts= (a NATS subject token; --host-id is a hostname's first label). */
export const MAX_HOST_ID_LENGTH = 64;

/** What a fleet stream is fed through: a streams/Subscription. */
export interface FleetSink {
  readonly groups: readonly number[];
  deliver(m: RxMessage): void;
  flush(): void;
  event(type: string, fields: Record<string, unknown>): void;
}

export interface WatchSelection {
  /** null: every host. */
  hosts: readonly string[] | null;
  groups: readonly number[];
}

/** Parses ?hosts=A,B; throws Error with what is wrong (the route makes it a 400 naming `hosts`). */
export function parseHosts(text: string): string[] {
  const hosts = text.split(',').map((s) => s.trim());
  if (hosts.some((h) => h === '')) throw new Error('an empty host id (write hosts=A,B)');
  for (const h of hosts) {
    if (h.length > MAX_HOST_ID_LENGTH) throw new Error(`host id "${h.slice(0, 20)}…" is longer than ${MAX_HOST_ID_LENGTH} characters`);
    if (!isSubjectToken(h)) throw new Error(`"${h}" is not a host id (no ".", "*", ">" or whitespace)`);
  }
  const unique = [...new Set(hosts)];
  if (unique.length > MAX_WATCH_HOSTS) throw new Error(`${unique.length} hosts, at most ${MAX_WATCH_HOSTS}`);
  return unique;
}

/** A stored message as the watcher needs it (a JsMsg is one). */
export interface StoredMsg {
  subject: string;
  data: Uint8Array;
  headers?: MsgHdrs;
  /** Its stream sequence: the frame's cursor. */
  seq: number;
}

/**
 * A watcher reading the JetStream stream (--nats-jetstream on) instead of
 * core subscriptions: index.ts binds these to the stream (jetstream.ts), so
 * this file imports no JetStream client.
 */
export interface WatchReplay {
  /** The stream sequence of the last message the client saw: it resumes after it. null: from now on. */
  since: number | null;
  bounds(c: NatsConnection): Promise<{ first: number; last: number }>;
  open(c: NatsConnection, start: number, on: { message(m: StoredMsg): void; trouble(detail: string): void }): Promise<{ stop(): void }>;
}

interface HostSeq {
  /** The publishing daemon's run (its cursor's epoch): a restart starts n at 1 again. */
  epoch: string;
  last: number;
}

export class FleetWatcher {
  private readonly groups: Set<number>;
  private readonly seqs = new Map<string, HostSeq>();
  private subs: NatsSubscription[] = [];
  private closed = false;
  /** The stream sequence expected next (replay only): a message past it means the stream lost those between. */
  private nextSeq: number | null = null;
  private reading: { stop(): void } | null = null;
  /** Bumped at each attach/detach: a replay that opens after its connection was replaced is stopped at once. */
  private generation = 0;

  constructor(
    readonly selection: WatchSelection,
    private readonly sink: FleetSink,
    private readonly replay: WatchReplay | null = null,
  ) {
    this.groups = new Set(selection.groups);
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
      const { first, last } = await replay.bounds(c);
      if (!current()) return;
      let start = this.nextSeq ?? (replay.since !== null ? replay.since + 1 : last + 1);
      if (start > last + 1) {
        // A cursor past the stream's end: another stream's, or this one purged or re-created.
        this.sink.event('gap', {
          reason: 'stream',
          host: null,
          lost: null,
          since: start - 1,
          resumeFrom: last + 1,
          detail: 'since is past the end of the stream',
        });
        start = last + 1;
      } else if (start < first) {
        // Discarded by the stream's limits (bytes, age) before the client came back.
        this.sink.event('gap', { reason: 'stream', host: null, lost: first - start, since: start - 1, resumeFrom: first });
        start = first;
      }
      this.sink.flush();
      this.nextSeq = start;
      const reading = await replay.open(c, start, { message: (m) => this.onStored(m), trouble: (d) => this.notice(d) });
      if (!current()) reading.stop();
      else this.reading = reading;
    } catch (err) {
      if (!current()) return;
      if (replay.since !== null) {
        this.notice(`cannot read the JetStream stream: ${(err as Error).message}`);
        return;
      }
      // A live stream goes on without the stream (the NATS side never stops a stream that needs no replay).
      this.notice(`cannot read the JetStream stream (${(err as Error).message}): live from NATS instead, without cursors`);
      this.subscribeMessages(c);
    }
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
    this.take(m.subject, m.headers, m.data, String(m.seq));
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
    this.take(m.subject, m.headers, m.data, undefined);
  }

  /** A message of nlbridge.<host>.g.<group>; `cursor`: its stream sequence, when read from the stream. */
  private take(subject: string, h: MsgHdrs | undefined, data: Uint8Array, cursor: string | undefined): void {
    // A host id holds no ".", so four tokens.
    const parts = subject.split('.');
    if (parts.length !== 4) return;
    const host = parts[1];
    // The stream holds every host: a stream reader selects its own here.
    if (this.selection.hosts !== null && !this.selection.hosts.includes(host)) return;
    const group = Number(parts[3]);
    const n = Number(h?.get(HEADERS.number));
    const origin = h?.get(HEADERS.cursor) ?? '';
    if (Number.isSafeInteger(n) && n > 0 && !this.sequence(host, origin.split('-')[0], n)) return;
    if (!this.groups.has(group)) return;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const portId = Number(h?.get(HEADERS.port) ?? 0);
    if (bytes.length < 16) {
      this.sink.event('malformed', { host, group, portId, reason: 'shorter than a netlink header', offset: 0, length: bytes.length });
      this.sink.flush();
      return;
    }
    const header = decodeHeader(bytes);
    const end = Math.min(bytes.length, Math.max(16, header.length));
    this.sink.deliver({
      group,
      portId,
      header,
      payload: bytes.subarray(16, end),
      bytes,
      truncated: header.length > bytes.length,
      receivedAt: Date.now(),
      fromBridge: false,
      host,
      ...(cursor === undefined ? {} : { cursor }),
    });
    this.sink.flush();
  }

  /** Checks a host's n: false for a repeat (a resend after the publisher's reconnect); a jump is told as a gap. */
  private sequence(host: string, epoch: string, n: number): boolean {
    const s = this.seqs.get(host);
    if (s === undefined || s.epoch !== epoch) {
      // The first message of this host seen by this stream, or a new run of its daemon: the baseline.
      if (s === undefined && this.seqs.size >= MAX_TRACKED_HOSTS) this.seqs.delete(this.seqs.keys().next().value!);
      this.seqs.set(host, { epoch, last: n });
      return true;
    }
    if (n <= s.last) return false;
    if (n > s.last + 1) this.sink.event('gap', { reason: 'sequence', host, lost: n - s.last - 1, from: s.last + 1, to: n - 1 });
    s.last = n;
    return true;
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
    if (e.type === 'overrun' && typeof e.lost === 'number' && e.lost > 0) {
      this.sink.event('overrun', { host, lost: e.lost });
    } else if (e.type === 'dropped' && typeof e.count === 'number' && typeof e.from === 'number' && typeof e.to === 'number') {
      // The publisher numbered the dropped messages (from..to) and sends this
      // notice before the next message it keeps: the jump that message shows
      // is this one, told once, as the publisher's.
      const s = this.seqs.get(host);
      if (s !== undefined && e.to > s.last) {
        if (e.from > s.last + 1)
          this.sink.event('gap', { reason: 'sequence', host, lost: e.from - s.last - 1, from: s.last + 1, to: e.from - 1 });
        s.last = e.to;
      }
      this.sink.event('gap', { reason: 'publisher', host, lost: e.count, from: e.from, to: e.to });
    } else return;
    this.sink.flush();
  }
}

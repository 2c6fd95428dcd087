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
// netlink message). So what waits when the publisher pumps is sent as runs:
// consecutive messages of one group and one sender go in one NATS message,
// back to back as in a netlink receive buffer (each at NLMSG_ALIGN of the
// one before, delimited by its own nlmsg_len), with `n` of the first and the
// count `k`. At a low rate nothing waits, and a run is one message. A run,
// once formed, is kept as sent: a resend after a reconnect is the same NATS
// message with the same Nats-Msg-Id, so JetStream's dedupe stays exact.
//
// No NATS import here: the link is an interface (index.ts implements it over
// @nats-io/transport-node), so this logic runs against anything.

import type { MalformedInfo, RxMessage, Subscriber } from '../netlink/message';
import { NATS_DROP_REASONS } from '../metrics';
import { align } from '../../addon/codec';
import { HEADERS, eventsSubject, groupSubject } from './subjects';

export const DROP_REASONS = NATS_DROP_REASONS;
export type DropReason = (typeof DROP_REASONS)[number];

/** What the publisher needs of a NATS connection. */
export interface Link {
  /** Hands a message to the client; throws when it refuses it (over max_payload, closed). */
  publish(subject: string, data: Uint8Array, headers: readonly (readonly [string, string])[] | null): void;
  /** Resolves once the server has read everything published before it; rejects when the connection goes first. */
  flush(): Promise<void>;
  /** The server's max_payload, once known. */
  maxPayload(): number | null;
}

/** Per-message bytes counted beside the message itself: the subject and headers the client adds. */
const OVERHEAD_BYTES = 96;
/** The most payload one NATS message carries (and never above the server's max_payload). */
export const MAX_RUN_BYTES = 64 * 1024;
/** Room left under max_payload for a run's headers (the client counts them in). */
const HEADER_ROOM = 512;

interface MessageEntry {
  kind: 'message';
  n: number;
  size: number;
  m: RxMessage;
}

interface EventEntry {
  kind: 'event';
  /** Filled in until it is published: overruns that follow each other add up in one notice. */
  event: Record<string, unknown>;
}

/** One NATS message of a run of messages, as handed to the client: kept so a resend is the same message. */
interface RunEntry {
  kind: 'run';
  /** The first message's number. */
  n: number;
  subject: string;
  data: Uint8Array;
  headers: [string, string][];
  /** Its netlink messages and their accounted bytes. */
  count: number;
  size: number;
}

type Entry = MessageEntry | EventEntry | RunEntry;

interface DropEpisode {
  count: number;
  from: number;
  to: number;
  reasons: Partial<Record<DropReason, number>>;
}

export interface PublisherCounts {
  published: number;
  dropped: Record<DropReason, number>;
  /** Messages held here (waiting or unconfirmed) and their accounted bytes. */
  heldMessages: number;
  heldBytes: number;
}

export interface PublisherOptions {
  host: string;
  groups: readonly number[];
  bufferBytes: number;
  /** Bytes handed to the client and not yet confirmed by a flush (default: a quarter of the buffer, at most 1 MiB). */
  unflushedBytes?: number;
  /**
   * --nats-jetstream on: each message carries Nats-Msg-Id <prefix><n> (the prefix names host and
   * run), so the stream stores a resend after a reconnect once. Off: no such header (each costs throughput).
   */
  msgIdPrefix?: string | null;
  /** Told once per drop episode and per refused message (the caller logs). */
  onDrop?(reason: DropReason, n: number, detail?: string): void;
}

export class FleetPublisher implements Subscriber {
  readonly groups: readonly number[];
  private readonly host: string;
  private readonly bufferBytes: number;
  private readonly unflushedMax: number;
  private readonly onDrop: PublisherOptions['onDrop'];
  private readonly msgIdPrefix: string | null;
  private readonly events: string;
  private readonly subjects = new Map<number, string>();

  private link: Link | null = null;
  /** Entries not yet handed to the client; `head` is the first live index (shift() is O(n)). */
  private waiting: Entry[] = [];
  private head = 0;
  /** Handed to the client, not yet confirmed by a flush. */
  private unflushed: (EventEntry | RunEntry)[] = [];
  private unflushedBytes = 0;
  /** Bytes of messages in waiting + unflushed (events are not counted: one per episode). */
  private heldBytes = 0;
  private heldMessages = 0;
  private flushing = false;
  /** Bumped when the unconfirmed entries are taken back: a late flush answer of before is ignored. */
  private epoch = 0;
  private number = 0;
  private published = 0;
  private readonly dropped: Record<DropReason, number> = { buffer: 0, 'max-payload': 0 };
  private episode: DropEpisode | null = null;
  private closed = false;

  constructor(opts: PublisherOptions) {
    this.groups = [...opts.groups];
    this.host = opts.host;
    this.bufferBytes = opts.bufferBytes;
    this.unflushedMax = opts.unflushedBytes ?? Math.min(1024 * 1024, Math.max(4096, Math.floor(opts.bufferBytes / 4)));
    this.onDrop = opts.onDrop;
    this.msgIdPrefix = opts.msgIdPrefix ?? null;
    this.events = eventsSubject(opts.host);
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

  /** The connection is gone: nothing more is handed to the client, and what it was not seen to confirm is taken back. */
  linkDown(): void {
    this.link = null;
    this.takeBack();
  }

  // --- Subscriber (the bus calls these) ---

  deliver(m: RxMessage): void {
    if (this.closed) return;
    const n = ++this.number;
    const size = m.bytes.length + OVERHEAD_BYTES;
    if (this.heldBytes + size > this.bufferBytes) {
      this.drop('buffer', n);
      return;
    }
    this.closeEpisode();
    this.waiting.push({ kind: 'message', n, size, m });
    this.heldBytes += size;
    this.heldMessages++;
  }

  flush(): void {
    this.pump();
  }

  overrun(lost: number): void {
    const last = this.waiting.length > this.head ? this.waiting[this.waiting.length - 1] : null;
    if (last?.kind === 'event' && last.event.type === 'overrun') (last.event.lost as number) += lost;
    else this.waiting.push({ kind: 'event', event: { type: 'overrun', host: this.host, lost } });
  }

  malformed(_info: MalformedInfo): void {
    // Counted by the bus (nlbridge_received_rejected_total); nothing of it is published.
  }

  /** Stops taking messages; what is left is the caller's to flush (see index.ts). */
  close(): void {
    this.closed = true;
  }

  // --- the queue ---

  private drop(reason: DropReason, n: number, detail?: string): void {
    this.dropped[reason]++;
    const ep = this.episode;
    if (ep) {
      ep.count++;
      ep.to = n;
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
    this.waiting.push(this.notice(ep));
  }

  private notice(ep: DropEpisode): EventEntry {
    return { kind: 'event', event: { type: 'dropped', host: this.host, count: ep.count, from: ep.from, to: ep.to, reasons: ep.reasons } };
  }

  /** Drops the message (or the run, resent after a reconnect) at the head over max_payload; its notice takes its place, so it goes out next. */
  private refuse(e: MessageEntry | RunEntry, detail: string): void {
    this.release(e);
    const count = e.kind === 'run' ? e.count : 1;
    for (let i = 0; i < count; i++) this.drop('max-payload', e.n + i, detail);
    const ep = this.episode!;
    this.episode = null;
    this.waiting[this.head] = this.notice(ep);
  }

  private takeBack(): void {
    this.epoch++;
    this.flushing = false;
    if (this.unflushed.length === 0) return;
    this.waiting = (this.unflushed as Entry[]).concat(this.waiting.slice(this.head));
    this.head = 0;
    this.unflushed = [];
    this.unflushedBytes = 0;
  }

  private pump(): void {
    const link = this.link;
    if (!link) return;
    if (this.episode && this.waiting.length === this.head) this.closeEpisode();
    const maxPayload = link.maxPayload();
    // The client counts the headers in max_payload too: a run leaves them room.
    let runBytes = Math.min(MAX_RUN_BYTES, (maxPayload ?? MAX_RUN_BYTES) - HEADER_ROOM);
    while (this.head < this.waiting.length && this.unflushedBytes < this.unflushedMax) {
      const e = this.waiting[this.head];
      if (e.kind === 'message' && maxPayload !== null && e.m.bytes.length > maxPayload) {
        // The client would throw; the server would refuse it anyway.
        this.refuse(e, `${e.m.bytes.length} bytes > max_payload ${maxPayload}`);
        continue;
      }
      const out = e.kind === 'message' ? this.run(runBytes) : e;
      try {
        if (out.kind === 'run') link.publish(out.subject, out.data, out.headers);
        else link.publish(this.events, Buffer.from(JSON.stringify(out.event)), null);
      } catch (err) {
        const detail = (err as Error).message;
        if (/max_payload/i.test(detail) && e.kind !== 'event') {
          if (e.kind === 'message' && out.kind === 'run' && out.count > 1)
            runBytes = 0; // its headers were longer than the room: one by one
          else this.refuse(e, detail);
          continue;
        }
        // Closed or disconnected under us: the status loop will say so; keep it (a run formed here stays one).
        if (out !== e && out.kind === 'run') this.waiting.splice(this.head, out.count, out);
        break;
      }
      this.head += out.kind === 'run' && e.kind === 'message' ? out.count : 1;
      this.unflushed.push(out);
      if (out.kind === 'run') this.unflushedBytes += out.size;
    }
    this.compact();
    if (this.unflushed.length > 0 && !this.flushing) this.startFlush(link);
  }

  /**
   * The run of waiting messages from the head: one group, one sender, whole
   * messages (a cut one is not delimited by its nlmsg_len), at most maxBytes.
   * Their numbers follow each other: a dropped message ends a run with its notice.
   */
  private run(maxBytes: number): RunEntry {
    const first = this.waiting[this.head] as MessageEntry;
    let count = 1;
    let bytes = first.m.bytes.length;
    let size = first.size;
    if (whole(first.m)) {
      for (let j = this.head + 1; j < this.waiting.length; j++) {
        const e = this.waiting[j];
        if (e.kind !== 'message' || e.m.group !== first.m.group || e.m.portId !== first.m.portId || !whole(e.m)) break;
        const next = align(bytes) + e.m.bytes.length;
        // The bound on what the client holds unconfirmed holds for a run too (its first message aside).
        if (next > maxBytes || this.unflushedBytes + size + e.size > this.unflushedMax) break;
        bytes = next;
        size += e.size;
        count++;
      }
    }
    let data: Uint8Array = first.m.bytes;
    if (count > 1) {
      const buf = Buffer.alloc(bytes);
      let at = 0;
      for (let j = this.head; j < this.head + count; j++) {
        const b = (this.waiting[j] as MessageEntry).m.bytes;
        b.copy(buf, at);
        at = align(at + b.length);
      }
      data = buf;
    }
    return {
      kind: 'run',
      n: first.n,
      subject: this.subjects.get(first.m.group) ?? groupSubject(this.host, first.m.group),
      data,
      headers: headersOf(first, count, this.msgIdPrefix),
      count,
      size,
    };
  }

  private startFlush(link: Link): void {
    this.flushing = true;
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
        this.pump();
      },
      () => {
        if (epoch !== this.epoch) return;
        this.takeBack();
      },
    );
  }

  private release(e: MessageEntry | RunEntry): void {
    this.heldBytes -= e.size;
    this.heldMessages -= e.kind === 'run' ? e.count : 1;
  }

  private compact(): void {
    if (this.head === this.waiting.length) {
      this.waiting = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting = this.waiting.slice(this.head);
      this.head = 0;
    }
  }
}

/** JetStream's dedupe header (its name is JetStream's, not ours to shorten). */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

/** A message its own nlmsg_len delimits: not cut by the read buffer, its length field its size. */
function whole(m: RxMessage): boolean {
  return !m.truncated && m.header.length === m.bytes.length;
}

/** The headers of a run: its first message's n, the count when more than one, the sender, the first's cursor. */
function headersOf(first: MessageEntry, count: number, msgIdPrefix: string | null): [string, string][] {
  const m = first.m;
  const h: [string, string][] = [
    [HEADERS.number, String(first.n)],
    [HEADERS.group, String(m.group)],
    [HEADERS.port, String(m.portId)],
  ];
  if (count > 1) h.push([HEADERS.count, String(count)]);
  if (m.cursor !== undefined) h.push([HEADERS.cursor, m.cursor]);
  if (msgIdPrefix !== null) h.push([MSG_ID_HEADER, msgIdPrefix + first.n]);
  return h;
}

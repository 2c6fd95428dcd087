// One client's subscription to groups, whatever carries it: the hello frame,
// the per-stream counter n, catch-up gating on resume, the backlog bound,
// drop and stall policy, and the event frames that report loss. The
// transport is a StreamWriter (writer.ts); this file knows none of them.

import type { FastifyBaseLogger } from 'fastify';
import type { Bus, Endpoint } from '../netlink/bus';
import type { CatchUp } from '../netlink/catch_up';
import type { GapInfo, MalformedInfo, RxMessage, Subscriber } from '../netlink/message';
import type { GroupList } from '../netlink/groups';
import { eventFrame, messageFrame, messageTail } from '../frames';
import type { Metrics } from '../metrics';
import type { StreamWriter } from './writer';

export interface SubscriptionOptions {
  groups: GroupList;
  format: 'json' | 'binary';
  batch: boolean;
  unicast: boolean;
  /** --ws-buffer-bytes: above this backlog messages are dropped (and counted). */
  bufferBytes: number;
  /** --ws-stall-ms: a client over its backlog this long is closed. */
  stallMs: number;
  /** --ws-max-payload, told in the hello frame. */
  maxPayload: number;
  /** What else the hello frame says of the stream's source (a fleet stream: its hosts). */
  hello?: Record<string, unknown>;
}

/**
 * What a subscription uses of its source: kept narrow so the netlink rooms
 * can move without touching this one. The local bus is one; a fleet stream's
 * is another (http/fleet_request.ts: the local protocol names the types, and
 * unsubscribe drops its NATS subscriptions). Whatever the source, it feeds
 * the Subscription through the same deliver/flush/event calls.
 */
export type StreamBus = Pick<Bus, 'protocol' | 'tx' | 'unsubscribe' | 'closeClientEndpoint'>;

/** How often a client over its backlog is looked at (drain → 'dropped' notice; stall → closed). */
const DRAIN_CHECK_MS = 25;

export class Subscription<W extends StreamWriter = StreamWriter> implements Subscriber {
  readonly groups: GroupList;
  private n = 0;
  private dropped = 0;
  private overSince: number | null = null;
  private drainTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly dummy: boolean;
  /** The counters' labels: WebSocket series stay unlabelled (their names predate SSE), others carry their transport. */
  private readonly labels: Record<string, string>;
  /** The client's own netlink socket (?unicast=1), closed with the subscription. */
  endpoint: Endpoint | null = null;
  /** A resume in progress (?since=, Last-Event-ID): live messages with a cursor are read from the ring by it instead. */
  catchUp: CatchUp | null = null;

  constructor(
    readonly writer: W,
    private readonly opts: SubscriptionOptions,
    private readonly bus: StreamBus,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {
    this.groups = opts.groups;
    this.dummy = bus.protocol.name === 'dummy';
    this.labels = transportLabels(writer.transport);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The first frame (n = 0): what this stream is and its limits. */
  hello(): void {
    const proto = this.bus.protocol;
    this.writer.open(
      eventFrame('hello', 0, {
        portId: this.endpoint ? this.endpoint.portId : this.bus.tx.portId,
        bridgePortId: this.bus.tx.portId,
        groups: this.groups,
        protocol: { name: proto.name, number: proto.number },
        format: this.opts.format,
        batch: this.opts.batch,
        unicast: this.opts.unicast,
        limits: { maxPayload: this.opts.maxPayload, bufferBytes: this.opts.bufferBytes, stallMs: this.opts.stallMs },
        ...this.opts.hello,
      }),
    );
  }

  deliver(m: RxMessage): void {
    if (this.catchUp !== null && this.catchUp.active && m.cursor !== undefined) return;
    this.send(m);
  }

  /** For the catch-up and a fleet stream's reading: whether the client's backlog is at most `fraction` of its bound. */
  room(fraction = 1): boolean {
    return !this.closed && this.writer.isOpen() && this.writer.backlogBytes() <= this.opts.bufferBytes * fraction;
  }

  /** --ws-stall-ms: how long a client may stay over its backlog. */
  get stallMs(): number {
    return this.opts.stallMs;
  }

  /** For the catch-up: a client that stayed full for --ws-stall-ms. */
  stalled(): void {
    this.closeSlow('closing a resuming client that stayed over its backlog');
  }

  /** Writes one message frame (or counts it dropped when the backlog is full; it still uses up its n). */
  send(m: RxMessage): void {
    if (this.closed) return;
    const n = ++this.n;
    if (!this.hasRoom()) {
      this.dropped++;
      this.metrics.wsDropped.inc(this.labels);
      return;
    }
    this.writer.message(this.writer.binary ? m.bytes : messageFrame(n, messageTail(m, this.dummy)), m);
  }

  flush(): void {
    this.writer.flush();
  }

  overrun(lost: number): void {
    if (this.closed) return;
    this.event('overrun', { lost });
  }

  malformed(info: MalformedInfo): void {
    if (this.closed) return;
    this.event('malformed', { ...info });
  }

  gap(info: GapInfo): void {
    if (this.closed) return;
    this.event('gap', { ...info });
  }

  /** An event frame: never dropped (they are how loss is reported), kept in order with messages. */
  event(type: string, fields: Record<string, unknown>): void {
    if (this.closed) return;
    // Never dropped, but not unbounded either: a client over its backlog is
    // watched as when messages are dropped, and closed after --ws-stall-ms. A
    // peer sending only malformed datagrams makes events the whole stream,
    // and a stalled client's backlog grew without limit (reliability case 2).
    this.watchBacklog();
    this.writer.event(type, eventFrame(type, ++this.n, fields));
  }

  /** Room in the client's backlog; starts the watch that reports drops and closes stalled clients. */
  private hasRoom(): boolean {
    if (this.writer.backlogBytes() <= this.opts.bufferBytes) {
      if (this.dropped > 0) this.reportDropped();
      return true;
    }
    this.watchBacklog();
    return false;
  }

  private watchBacklog(): void {
    if (this.overSince === null && this.writer.backlogBytes() > this.opts.bufferBytes) {
      this.overSince = Date.now();
      this.drainTimer ??= setInterval(() => this.checkDrain(), DRAIN_CHECK_MS);
    }
  }

  private checkDrain(): void {
    if (this.closed) return this.stopDrainWatch();
    if (this.writer.backlogBytes() <= this.opts.bufferBytes) {
      this.overSince = null;
      this.stopDrainWatch();
      if (this.dropped > 0) this.reportDropped();
      return;
    }
    if (this.overSince !== null && Date.now() - this.overSince > this.opts.stallMs) {
      this.stopDrainWatch();
      this.closeSlow('closing a client that stayed over its backlog');
    }
  }

  private closeSlow(message: string): void {
    this.metrics.wsClosedSlow.inc(this.labels);
    this.log.warn({ transport: this.writer.transport, dropped: this.dropped, backlogBytes: this.writer.backlogBytes() }, message);
    this.writer.closeSlow();
  }

  private reportDropped(): void {
    const count = this.dropped;
    this.dropped = 0;
    this.overSince = null;
    this.event('dropped', { count });
  }

  private stopDrainWatch(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.catchUp?.stop();
    this.stopDrainWatch();
    this.bus.unsubscribe(this);
    if (this.endpoint) this.bus.closeClientEndpoint(this.endpoint);
  }
}

const WEBSOCKET_LABELS: Record<string, string> = {};
const labelsByTransport = new Map<string, Record<string, string>>();

/** Labels of a transport's frame counters (one object per transport, not one per call). */
export function transportLabels(transport: string): Record<string, string> {
  if (transport === 'websocket') return WEBSOCKET_LABELS;
  let labels = labelsByTransport.get(transport);
  if (labels === undefined) labelsByTransport.set(transport, (labels = { transport }));
  return labels;
}

// The netlink side of the bridge: the shared sockets, group memberships
// (refcounted, lingering), the daemon-wide sequence counter, running the
// send planner's legs (send_plan.ts), and the receive path: decode → ring →
// dedupe → route by group to subscribers.
//
// Two shared sockets: `tx` sends (and receives the kernel's acks and
// replies), `rx` joins the groups subscribers want. Netlink never delivers a
// broadcast back to the sending socket, so with one socket a subscriber would
// not see what POST /send put on its group.
//
// Over 400 lines because what is left here shares the sockets, the seq
// counter and the subscriber tables; every pure part is in a file of its own
// (send_plan, ring, catch_up, dedupe, membership).

import type { Logger } from 'pino';
import { NLM_F_REQUEST, encodeMessage, forEachMessage, type CodecErrorCode, type MessageSink, type NlMsgHeader } from '../../addon/codec';
import { DnlMsgType, decodeStats, type DnlStats } from '../../addon/dummy_netlink';
import { NetlinkConn, type ConnHandler } from '../../addon/request';
import { NetlinkSocket, type NetlinkError } from '../../addon/socket';
import type { Datagram, NetlinkSocketOptions, SendResult } from '../../addon/types';
import type { Metrics } from '../metrics';
import { DedupeWindow, messageKey } from './dedupe';
import { BusError, WHAT } from './errors';
import { Memberships } from './membership';
import { CatchUp, type CatchUpTarget } from './catch_up';
import type { MalformedInfo, RxMessage, Subscriber } from './message';
import type { ProtocolInfo } from './protocol';
import { CursorError, Ring, type RingOptions } from './ring';
import { SendTally, checkGroupRange, planSend, type SendFailure, type SendReport, type SendRequest } from './send_plan';

export type OpenSocket = (opts: NetlinkSocketOptions) => NetlinkSocket;

/** A socket the bridge sends from (the shared tx, or a client's own): request/ack pairing of the addon. */
export type Endpoint = NetlinkConn;

export interface BusOptions {
  protocol: ProtocolInfo;
  rcvbuf: number;
  ackTimeoutMs: number;
  dedupeWindowMs: number;
  /** The resume ring's bounds. */
  ring: RingOptions;
  /** How long a group stays joined after its last subscriber left (--ring-linger-ms). */
  ringLingerMs: number;
  log: Logger;
  metrics: Metrics;
  openSocket?: OpenSocket;
}

/** How often the ring drops what is over age when nothing arrives (a read never does). */
const RING_EXPIRY_MS = 1000;

export class Bus {
  readonly protocol: ProtocolInfo;
  readonly tx: Endpoint;
  readonly rx: NetlinkSocket;
  private readonly rxBufferBytes: number;
  readonly ring: Ring;
  private readonly dedupeWindowMs: number;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly ackTimeoutMs: number;
  private readonly openSocket: OpenSocket;
  private readonly dedupe: DedupeWindow<Subscriber> | null;
  private readonly memberships: Memberships;
  private readonly byGroup = new Map<number, Set<Subscriber>>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly clientEndpoints = new Set<Endpoint>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly bridgePorts = new Set<number>();
  private readonly ringExpiry: NodeJS.Timeout;
  private touched = new Set<Subscriber>();
  private seq = 0;
  private closed = false;
  private overrunEpisode: { startedAt: number; lost: number; reports: number } | null = null;
  readonly startedAt = Date.now();

  constructor(opts: BusOptions) {
    this.protocol = opts.protocol;
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.ackTimeoutMs = opts.ackTimeoutMs;
    this.openSocket = opts.openSocket ?? ((o) => NetlinkSocket.open(o));
    this.ring = new Ring(opts.ring);
    this.dedupeWindowMs = opts.dedupeWindowMs;
    this.dedupe = opts.dedupeWindowMs > 0 ? new DedupeWindow<Subscriber>(opts.dedupeWindowMs) : null;
    // Seqs start at a random point so two daemon runs do not reuse them inside a peer's dedupe window.
    this.seq = Math.floor(Math.random() * 0x7fffffff);

    const txSock = this.openSocket({ protocol: this.protocol.number, receiveBufferBytes: 1024 * 1024 });
    let rx: NetlinkSocket;
    try {
      rx = this.openSocket({ protocol: this.protocol.number, receiveBufferBytes: opts.rcvbuf, passCredentials: true });
    } catch (err) {
      txSock.close();
      throw err;
    }
    this.rx = rx;
    this.memberships = new Memberships(rx, opts.ringLingerMs, this.log);
    this.tx = new NetlinkConn(txSock, {
      ...this.countingHandler(),
      // Nobody reads the tx socket's own traffic: counted, then dropped.
      message: () => this.metrics.received.inc({ group: 'unclaimed' }),
      batchEnd: () => undefined,
    });
    this.bridgePorts.add(txSock.portId);
    this.rxBufferBytes = opts.rcvbuf;
    txSock.unref();
    rx.on('datagrams', this.onRxBatch);
    rx.on('overrun', (ev) => this.onOverrun(ev.lost, ev.totalDrops));
    rx.on('error', (err: NetlinkError) => this.log.error({ err }, 'netlink receive failed'));
    txSock.on('error', (err: NetlinkError) => this.log.error({ err }, 'netlink receive (tx socket) failed'));
    rx.unref();
    this.ringExpiry = setInterval(() => this.ring.evict(Date.now()), RING_EXPIRY_MS);
    this.ringExpiry.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  joinedGroups(): number[] {
    return this.memberships.groups();
  }

  subscriberCounts(): Record<string, number> {
    return this.memberships.counts();
  }

  get clientEndpointCount(): number {
    return this.clientEndpoints.size;
  }

  /** Checks that these groups exist on the protocol; throws BusError GROUP_RANGE naming `what`. */
  checkGroups(groups: readonly number[], what: string): void {
    checkGroupRange(groups, this.protocol, what);
  }

  /** Checks a resume cursor; throws BusError BAD_CURSOR naming `what`. */
  checkCursor(since: string, what: string): void {
    try {
      this.ring.since(since, [], Date.now());
    } catch (err) {
      if (err instanceof CursorError) throw new BusError('BAD_CURSOR', err.message, { what });
      throw err;
    }
  }

  /**
   * Resumes a just-subscribed consumer after `since`: what the ring holds of
   * its groups is written at the pace the client drains (a gap event first
   * when the cursor is not covered), then the live stream. Called in the same
   * tick as subscribe(). Replayed messages are marked in the dedupe window so
   * a late copy on another group is not delivered again.
   */
  resume(sub: Subscriber & CatchUpTarget, since: string, stallMs: number, onStall: () => void): CatchUp {
    const c = new CatchUp(this.ring, sub, since, stallMs, onStall, (m) => {
      const now = Date.now();
      if (this.dedupe && now - m.receivedAt <= this.dedupeWindowMs) {
        // No group: a key already seen on its group is not taken for a new message.
        this.dedupe.served(messageKey(m), now).served.add(sub);
      }
    });
    c.pump();
    return c;
  }

  /** Joins what the subscriber needs (refcounted). Throws BusError. */
  subscribe(sub: Subscriber): void {
    if (this.closed) throw new BusError('SHUTTING_DOWN', 'the bridge is shutting down');
    this.checkGroups(sub.groups, WHAT.subscription);
    try {
      this.memberships.take(sub.groups);
    } catch (err) {
      const e = err as NetlinkError;
      throw new BusError('SYSCALL', `joining the groups failed: ${e.message}`, { what: WHAT.subscription, errno: e.code ?? 'EINVAL' });
    }
    this.subscribers.add(sub);
    for (const g of sub.groups) {
      let set = this.byGroup.get(g);
      if (!set) this.byGroup.set(g, (set = new Set()));
      set.add(sub);
    }
  }

  unsubscribe(sub: Subscriber): void {
    if (!this.subscribers.delete(sub)) return;
    for (const g of sub.groups) {
      const set = this.byGroup.get(g);
      set?.delete(sub);
      if (set && set.size === 0) this.byGroup.delete(g);
    }
    this.memberships.give(sub.groups);
    this.dedupe?.forget(sub);
  }

  /** A socket of a client's own (?unicast=1): what is sent to its port id reaches that client only. */
  openClientEndpoint(onMessage: (m: RxMessage) => void, onBatchEnd: () => void, onOverrun: (lost: number) => void): Endpoint {
    if (this.closed) throw new BusError('SHUTTING_DOWN', 'the bridge is shutting down');
    let sock: NetlinkSocket;
    try {
      sock = this.openSocket({ protocol: this.protocol.number, receiveBufferBytes: 1024 * 1024, passCredentials: true });
    } catch (err) {
      const e = err as NetlinkError;
      throw new BusError('SYSCALL', `opening the client's socket failed: ${e.message}`, {
        what: WHAT.clientSocket,
        errno: e.code ?? 'EIO',
      });
    }
    sock.unref();
    const ep = new NetlinkConn(sock, {
      ...this.countingHandler(),
      message: (d, header, payload, bytes) => {
        this.metrics.received.inc({ group: d.group });
        onMessage({
          group: d.group,
          portId: d.portId,
          ...(d.uid !== undefined ? { uid: d.uid } : {}),
          header,
          payload,
          bytes,
          truncated: d.truncated,
          receivedAt: Date.now(),
          fromBridge: false,
        });
      },
      batchEnd: onBatchEnd,
    });
    sock.on('overrun', (ev) => {
      this.metrics.overruns.inc();
      this.metrics.overrunLost.inc({}, ev.lost);
      onOverrun(ev.lost);
    });
    sock.on('error', (err: NetlinkError) => this.log.error({ err }, 'netlink receive (client socket) failed'));
    this.clientEndpoints.add(ep);
    this.bridgePorts.add(sock.portId);
    return ep;
  }

  closeClientEndpoint(ep: Endpoint): void {
    if (this.clientEndpoints.delete(ep)) this.bridgePorts.delete(ep.portId);
    ep.close();
  }

  /** What a sending socket counts of what it receives: cut and malformed datagrams, the kernel's acks. */
  private countingHandler(): Pick<ConnHandler, 'reject' | 'ack'> {
    return { reject: (d, reason) => this.countReject(d, reason), ack: (a) => this.metrics.kernelAcks.inc({ code: a.code }) };
  }

  private countReject(d: Datagram, reason: CodecErrorCode): void {
    if (d.truncated) this.metrics.truncated.inc();
    this.metrics.rejected.inc({ reason });
  }

  /** Sends one logical message; `from` is a client's own endpoint or the shared tx. Throws BusError. */
  send(req: SendRequest, from: Endpoint = this.tx): Promise<SendReport> {
    if (this.closed) return Promise.reject(new BusError('SHUTTING_DOWN', 'the bridge is shutting down'));
    let p: Promise<SendReport>;
    try {
      p = this.runSend(req, from);
    } catch (err) {
      return Promise.reject(err);
    }
    // Only a send waiting for acks is still in flight once it returns: close()
    // waits for those. (Tracking every send cost two promise reactions per
    // request, bench/.)
    if (req.ack) {
      this.inflight.add(p);
      const forget = (): void => void this.inflight.delete(p);
      p.then(forget, forget);
    }
    return p;
  }

  /** The planner's legs, one sendto each, from `from`; the acks when asked. */
  private runSend(req: SendRequest, from: Endpoint): Promise<SendReport> {
    const plan = planSend(req, this.protocol);
    const seq = this.nextSeq();
    const tally = new SendTally(plan, this.protocol);
    const pending = plan.ack ? from.expect(seq, this.ackTimeoutMs) : null;
    const buf = encodeMessage({ type: plan.type, flags: plan.flags, seq, pid: from.portId, payload: plan.payload });
    for (const leg of plan.legs) {
      const to = leg.kind === 'group' ? { portId: 0, groups: leg.mask } : { portId: leg.kind === 'port' ? leg.portId : 0, groups: 0 };
      let sent: SendResult | SendFailure;
      try {
        sent = from.sock.send(buf, to);
        this.metrics.sent.inc({ group: leg.kind === 'group' ? leg.group : 0 });
      } catch (err) {
        const e = err as NetlinkError;
        sent = { code: e.code ?? 'EIO', message: e.message };
        this.metrics.sendErrors.inc({ code: sent.code });
      }
      tally.record(leg, sent);
    }
    if (pending === null) return Promise.resolve(tally.finish(seq, from.portId, buf.length, null));
    pending.expectAcks(tally.ackSlots.length);
    return pending.done.then((replies) => tally.finish(seq, from.portId, buf.length, replies.acks));
  }

  /** The module's STATS reply. Throws BusError. */
  async kernelStats(): Promise<DnlStats> {
    if (this.protocol.name !== 'dummy') {
      throw new BusError(
        'NO_KERNEL_ENDPOINT',
        `protocol ${this.protocol.name} (${this.protocol.number}) has no dummy_netlink kernel endpoint to ask for STATS`,
      );
    }
    let replies;
    try {
      replies = await this.tx.execute({ type: DnlMsgType.STATS, flags: NLM_F_REQUEST, seq: this.nextSeq() }, this.ackTimeoutMs);
    } catch (err) {
      const e = err as NetlinkError;
      this.metrics.sendErrors.inc({ code: e.code ?? 'EIO' });
      throw new BusError('SYSCALL', `STATS request failed: ${e.message}`, { errno: e.code });
    }
    const reply = replies.messages.find((m) => m.header.type === DnlMsgType.STATS);
    if (reply) {
      try {
        return decodeStats(reply.payload);
      } catch {
        this.metrics.rejected.inc({ reason: 'EDNLPAYLOAD' });
      }
    }
    const ack = replies.acks[0];
    if (ack && ack.errno !== 0) throw new BusError('KERNEL_REFUSED', `the kernel refused STATS: ${ack.code}`, { errno: ack.code });
    throw new BusError('KERNEL_TIMEOUT', `no STATS reply from the kernel within ${this.ackTimeoutMs} ms`);
  }

  /** The shared receive socket's batch: counted per group, then decoded message by message. */
  private readonly onRxBatch = (batch: Datagram[]): void => {
    const batchStart = performance.now();
    // Counted per run of datagrams on one group, not per datagram (a metrics
    // update per message was a visible share of the bench's profile).
    let runGroup = -1;
    let run = 0;
    for (const d of batch) {
      if (d.group !== runGroup) {
        if (run > 0) this.metrics.received.inc({ group: runGroup }, run);
        runGroup = d.group;
        run = 0;
      }
      run++;
    }
    if (run > 0) this.metrics.received.inc({ group: runGroup }, run);
    this.now = Date.now();
    forEachMessage(batch, this.rxSink);
    // A new Set per batch, not two swapped and cleared: clear() allocates a new
    // table, and a table held by the long-lived bus is promoted to the old
    // generation (issue 16: 288 against 98 B per message surviving to a major
    // GC, and the paused-client RSS peak 8 MiB higher, with the swap).
    const touched = this.touched;
    this.touched = new Set();
    for (const s of touched) s.flush();
    // Once per batch, not per message (see Metrics.deliveryLatency).
    if (touched.size !== 0) this.metrics.deliveryLatency.observe((performance.now() - batchStart) / 1000);
  };

  /** The receive time of the batch being decoded: one clock read per batch. */
  private now = 0;

  private readonly rxSink: MessageSink = {
    message: (d, header, payload, bytes) => this.receive(d, header, payload, bytes),
    reject: (d, reason, offset) => {
      this.countReject(d, reason);
      const subs = this.byGroup.get(d.group);
      if (!subs) return;
      const info: MalformedInfo = { group: d.group, portId: d.portId, reason, offset, length: d.length };
      for (const s of subs) {
        s.malformed(info);
        this.touched.add(s);
      }
    },
  };

  /** One received message of the shared socket: numbered and kept by the ring, then routed. */
  private receive(d: Datagram, header: NlMsgHeader, payload: Buffer, bytes: Buffer): void {
    const now = this.now;
    // Every field written, in one order: one object shape on the hot path.
    const m: RxMessage = {
      group: d.group,
      portId: d.portId,
      uid: d.uid,
      header,
      payload,
      bytes,
      truncated: false,
      receivedAt: now,
      fromBridge: this.bridgePorts.has(d.portId),
      cursor: undefined,
    };
    this.route(this.ring.append(m, now), now);
  }

  private route(m: RxMessage, now: number): void {
    const subs = this.byGroup.get(m.group);
    if (!subs || subs.size === 0) return;
    // Copies of one logical message arrive once per group; with subscribers on
    // a single group there is nothing to dedupe, and the window (a string key,
    // a Map update and a Set per message) was the largest cost per message.
    if (!this.dedupe || this.byGroup.size === 1) {
      for (const s of subs) {
        s.deliver(m);
        this.touched.add(s);
      }
      return;
    }
    const { served, repeat } = this.dedupe.served(messageKey(m), now, m.group);
    for (const s of subs) {
      if (served.has(s)) continue;
      served.add(s);
      s.deliver(m);
      this.touched.add(s);
    }
    if (repeat) this.metrics.duplicates.inc({}, 1);
  }

  private onOverrun(lost: number, totalDrops: number): void {
    this.metrics.overruns.inc();
    this.metrics.overrunLost.inc({}, lost);
    for (const s of this.subscribers) {
      s.overrun(lost);
      this.touched.add(s);
    }
    const now = Date.now();
    // One log line per episode: overruns less than a second apart are one episode.
    const ep = this.overrunEpisode;
    if (ep && now - ep.startedAt < 1000) {
      ep.lost += lost;
      ep.reports++;
      return;
    }
    if (ep && ep.reports > 1) this.log.warn({ lost: ep.lost, reports: ep.reports }, 'netlink overrun episode ended');
    this.overrunEpisode = { startedAt: now, lost, reports: 1 };
    this.log.warn({ lost, totalDrops, rcvbuf: this.rxBufferBytes }, 'netlink receive queue overran (ENOBUFS): messages lost');
  }

  /** Waits for in-flight sends (bounded by the ack timeout), then closes every socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ringExpiry);
    this.memberships.close();
    await Promise.allSettled([...this.inflight]);
    for (const ep of this.clientEndpoints) ep.close();
    this.clientEndpoints.clear();
    this.tx.close();
    this.rx.close();
  }
}

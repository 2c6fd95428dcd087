// The netlink side of the bridge: sockets, group memberships (refcounted),
// the daemon-wide sequence counter, sends with per-destination results and
// kernel acks, receive with decode → dedupe → route by group.
//
// Two shared sockets: `tx` sends (and receives the kernel's acks and
// replies), `rx` joins the groups subscribers want. Netlink never delivers a
// broadcast back to the sending socket, so with one socket a subscriber would
// not see what POST /send put on its group.

import type { Logger } from 'pino';
import { NetlinkSocket, type NetlinkError } from '../addon/socket';
import type { Datagram, NetlinkSocketOptions } from '../addon/types';
import {
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_REQUEST,
  decodeAck,
  decodeDatagram,
  decodeHeader,
  encodeMessage,
  soleMessageLength,
  type NlMessage,
  type NlMsgHeader,
} from '../addon/codec';
import { DNL_BCAST_GROUPS_MAX, DnlMsgType, decodeStats, encodeBcast, encodeRelay, type DnlStats } from '../addon/dummy_netlink';
import { DedupeWindow, copyKey } from './dedupe';
import { Problem, problemForErrno } from './errors';
import type { RxMessage } from './frames';
import { MASK_GROUPS, groupBit } from './groups';
import type { Metrics } from './metrics';
import type { ProtocolInfo } from './protocol';
import { CatchUp, CursorError, RING_DEFAULTS, Ring, type CatchUpTarget, type GapInfo, type RingOptions } from './ring';

export type OpenSocket = (opts: NetlinkSocketOptions) => NetlinkSocket;

export interface MalformedInfo {
  group: number;
  portId: number;
  reason: string;
  offset: number;
  length: number;
}

/** A consumer of received messages (one per WebSocket stream). */
export interface Subscriber {
  readonly groups: readonly number[];
  deliver(m: RxMessage): void;
  /** The cursor a resume asked for is not covered: what was lost. */
  gap?(info: GapInfo): void;
  /** End of one receive batch: a chance to pack what was delivered. */
  flush(): void;
  overrun(lost: number): void;
  malformed(info: MalformedInfo): void;
}

export interface SendRequest {
  groups?: number[];
  pid?: number;
  relay?: number;
  data: Buffer;
  type?: number;
  flags?: number;
  ack?: boolean;
}

export interface AckInfo {
  errno: number;
  code: string;
}

export interface DestinationResult {
  to: 'group' | 'port' | 'kernel' | 'relay';
  group?: number;
  portId?: number;
  /**
   * delivered: the socket layer took it (a broadcast reached every listener
   * with room; a unicast reached the port's queue). kernel-broadcast: the
   * kernel was asked (BCAST) to deliver to this group. no-kernel-endpoint:
   * nothing answers on port 0 of this protocol. port-unreachable: no socket
   * has that port id. busy: the port's receive queue is full (EAGAIN).
   * error: another failure, see `code`.
   */
  result: 'delivered' | 'kernel-broadcast' | 'no-kernel-endpoint' | 'port-unreachable' | 'busy' | 'error';
  code?: string;
  /** The kernel's ack for this destination, when `ack` was asked. */
  ack?: AckInfo | { errno: null; code: 'ETIMEDOUT' };
}

export interface SendReport {
  seq: number;
  portId: number;
  type: number;
  flags: number;
  bytes: number;
  ok: boolean;
  results: DestinationResult[];
}

export interface BusOptions {
  protocol: ProtocolInfo;
  rcvbuf: number;
  ackTimeoutMs: number;
  dedupeWindowMs: number;
  /** The resume ring's bounds (default RING_DEFAULTS). */
  ring?: RingOptions;
  /** How long a group stays joined after its last subscriber left (default 0). */
  ringLingerMs?: number;
  log: Logger;
  metrics: Metrics;
  openSocket?: OpenSocket;
}

interface Waiter {
  kind: 'ack' | 'stats';
  acks: AckInfo[];
  expected: number;
  stats?: DnlStats;
  settle: () => void;
}

/**
 * Decodes a received datagram and counts it in /metrics when it was cut or
 * malformed. A cut datagram (longer than the read buffer) is rejected even
 * when the cut fell between two messages: its tail is lost all the same.
 */
function decodeCounted(d: Datagram, metrics: Metrics): { messages: NlMessage[]; reject: { reason: string; offset: number } | null } {
  const { messages, error } = decodeDatagram(d.data);
  if (d.truncated) metrics.truncated.inc();
  if (!error && !d.truncated) return { messages, reject: null };
  const reject = { reason: d.truncated ? 'ETRUNC' : error!.code, offset: error ? error.offset : d.data.length };
  metrics.rejected.inc({ reason: reject.reason });
  return { messages, reject };
}

/** A socket the bridge sends from; it also collects acks and replies to its seqs. */
export class Endpoint {
  private readonly waiters = new Map<number, Waiter>();

  constructor(
    readonly sock: NetlinkSocket,
    private readonly onMessage: (m: RxMessage) => void,
    private readonly onBatchEnd: () => void,
    private readonly metrics: Metrics,
  ) {
    sock.on('datagrams', this.onDatagrams);
  }

  get portId(): number {
    return this.sock.portId;
  }

  /** Registers interest in replies to `seq` before the request goes out. */
  expect(seq: number, kind: 'ack' | 'stats', timeoutMs: number): { done: Promise<Waiter>; setExpected(n: number): void } {
    let resolve!: (w: Waiter) => void;
    const done = new Promise<Waiter>((r) => (resolve = r));
    const waiter: Waiter = {
      kind,
      acks: [],
      expected: Number.POSITIVE_INFINITY,
      settle: () => {
        clearTimeout(timer);
        this.waiters.delete(seq);
        resolve(waiter);
      },
    };
    const timer = setTimeout(() => waiter.settle(), timeoutMs);
    this.waiters.set(seq, waiter);
    return {
      done,
      setExpected: (n: number) => {
        waiter.expected = n;
        if (waiter.acks.length >= n) waiter.settle();
      },
    };
  }

  private readonly onDatagrams = (batch: Datagram[]): void => {
    const now = Date.now();
    for (const d of batch) {
      const { messages } = decodeCounted(d, this.metrics);
      for (const msg of messages) {
        const h = msg.header;
        // Replies from the kernel (port 0) to one of our pending requests.
        if (d.portId === 0 && h.type === NLMSG_ERROR) {
          const ack = decodeAck(msg.payload);
          if (!(ack instanceof Error) && ack.request) {
            const code = ack.errno === 0 ? 'OK' : (ack.code ?? `ERRNO_${ack.errno}`);
            this.metrics.kernelAcks.inc({ code });
            const w = this.waiters.get(ack.request.seq);
            if (w) {
              w.acks.push({ errno: ack.errno, code });
              if (w.kind === 'stats' || w.acks.length >= w.expected) w.settle();
            }
            continue;
          }
        }
        if (d.portId === 0 && h.type === DnlMsgType.STATS) {
          const w = this.waiters.get(h.seq);
          if (w && w.kind === 'stats') {
            try {
              w.stats = decodeStats(msg.payload);
            } catch {
              this.metrics.rejected.inc({ reason: 'EDNLPAYLOAD' });
            }
            w.settle();
            continue;
          }
        }
        this.metrics.received.inc({ group: d.group });
        this.onMessage({
          group: d.group,
          portId: d.portId,
          ...(d.uid !== undefined ? { uid: d.uid } : {}),
          header: h,
          payload: msg.payload,
          bytes: messageBytes(d.data, msg.payload),
          truncated: d.truncated,
          receivedAt: now,
          fromBridge: false,
        });
      }
    }
    this.onBatchEnd();
  };

  close(): void {
    for (const w of [...this.waiters.values()]) w.settle();
    this.sock.close();
  }
}

/** Offset of a payload view inside its datagram. */
function msgOffset(datagram: Buffer, payload: Buffer): number {
  return payload.byteOffset - datagram.byteOffset;
}

/** The header + payload bytes of a message whose payload view is `payload`. */
function messageBytes(datagram: Buffer, payload: Buffer): Buffer {
  const start = msgOffset(datagram, payload) - 16;
  return datagram.subarray(start, start + 16 + payload.length);
}

export class Bus {
  readonly protocol: ProtocolInfo;
  readonly tx: Endpoint;
  readonly rx: NetlinkSocket;
  readonly rxBufferBytes: number;
  readonly ring: Ring;
  private readonly dedupeWindowMs: number;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly ackTimeoutMs: number;
  private readonly openSocket: OpenSocket;
  private readonly dedupe: DedupeWindow<Subscriber> | null;
  /** Subscribers per joined group; 0 while the group lingers (see release). */
  private readonly groupRefs = new Map<number, number>();
  private readonly lingers = new Map<number, NodeJS.Timeout>();
  private readonly lingerMs: number;
  private readonly byGroup = new Map<number, Set<Subscriber>>();
  private readonly subscribers = new Set<Subscriber>();
  private readonly clientEndpoints = new Set<Endpoint>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly bridgePorts = new Set<number>();
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
    this.ring = new Ring(opts.ring ?? RING_DEFAULTS);
    this.dedupeWindowMs = opts.dedupeWindowMs;
    this.lingerMs = opts.ringLingerMs ?? 0;
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
    this.tx = new Endpoint(txSock, () => this.metrics.received.inc({ group: 'unclaimed' }), () => undefined, this.metrics);
    this.bridgePorts.add(txSock.portId);
    this.rxBufferBytes = opts.rcvbuf;
    txSock.unref();
    rx.on('datagrams', this.onRxBatch);
    rx.on('overrun', (ev) => this.onOverrun(ev.lost, ev.totalDrops));
    rx.on('error', (err: NetlinkError) => this.log.error({ err }, 'netlink receive failed'));
    txSock.on('error', (err: NetlinkError) => this.log.error({ err }, 'netlink receive (tx socket) failed'));
    rx.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  joinedGroups(): number[] {
    return [...this.groupRefs.keys()].sort((a, b) => a - b);
  }

  subscriberCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const g of this.joinedGroups()) out[String(g)] = this.groupRefs.get(g) ?? 0;
    return out;
  }

  get subscriberTotal(): number {
    return this.subscribers.size;
  }

  get clientEndpointCount(): number {
    return this.clientEndpoints.size;
  }

  /** Checks that these groups exist on the protocol; throws Problem. */
  checkGroups(groups: readonly number[], field: string): void {
    for (const g of groups) {
      if (g > this.protocol.maxGroup) {
        throw new Problem(
          'BAD_GROUPS',
          `${field}: group ${g} is above the ${this.protocol.maxGroup} groups of protocol ${this.protocol.name} (${this.protocol.number})`,
          { field },
        );
      }
    }
  }

  /** Checks a resume cursor (?since, Last-Event-ID); throws Problem 400. */
  checkCursor(since: string, field: string): void {
    try {
      this.ring.since(since, [], Date.now());
    } catch (err) {
      if (err instanceof CursorError) throw new Problem('VALIDATION', `${field}: ${err.message}`, { field });
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
        this.dedupe.served(copyKey(m.portId, m.header.pid, m.header.seq, m.header.type), now).served.add(sub);
      }
    });
    c.pump();
    return c;
  }

  /** Joins what the subscriber needs (refcounted). Throws Problem. */
  subscribe(sub: Subscriber): void {
    if (this.closed) throw new Problem('SHUTTING_DOWN', 'the bridge is shutting down');
    this.checkGroups(sub.groups, 'mask');
    const joinedNow: number[] = [];
    try {
      for (const g of sub.groups) {
        const refs = this.groupRefs.get(g);
        if (refs === undefined) {
          this.rx.join(g);
          joinedNow.push(g);
          this.log.debug({ group: g }, 'joined group');
        } else if (refs === 0) this.cancelLinger(g);
        this.groupRefs.set(g, (refs ?? 0) + 1);
      }
    } catch (err) {
      // Undo the refs taken so far (the failing group took none).
      for (const g of sub.groups) {
        if (g === (err as { group?: number }).group) break;
        const refs = this.groupRefs.get(g);
        if (refs === undefined) break;
        if (refs <= 1) {
          if (joinedNow.includes(g)) {
            this.groupRefs.delete(g);
            this.tryLeave(g);
          } else this.release(g);
        } else this.groupRefs.set(g, refs - 1);
      }
      const e = err as NetlinkError;
      throw problemForErrno(e.code ?? 'EINVAL', `mask: joining the groups failed: ${e.message}`, 'mask');
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
      const refs = this.groupRefs.get(g) ?? 0;
      if (refs <= 1) this.release(g);
      else this.groupRefs.set(g, refs - 1);
    }
    this.dedupe?.forget(sub);
  }

  /**
   * The last subscriber of `g` left. The group stays joined for the linger
   * time (--ring-linger-ms) so the ring keeps what arrives while a client
   * reconnects to resume; then it is left.
   */
  private release(g: number): void {
    if (this.lingerMs <= 0 || this.closed) {
      this.groupRefs.delete(g);
      this.tryLeave(g);
      return;
    }
    this.groupRefs.set(g, 0);
    this.cancelLinger(g);
    const t = setTimeout(() => {
      this.lingers.delete(g);
      if (this.groupRefs.get(g) === 0) {
        this.groupRefs.delete(g);
        this.tryLeave(g);
      }
    }, this.lingerMs);
    t.unref();
    this.lingers.set(g, t);
  }

  private cancelLinger(g: number): void {
    const t = this.lingers.get(g);
    if (t) clearTimeout(t);
    this.lingers.delete(g);
  }

  private tryLeave(g: number): void {
    if (this.closed) return;
    try {
      this.rx.leave(g);
      this.log.debug({ group: g }, 'left group');
    } catch (err) {
      this.log.warn({ err, group: g }, 'leaving a group failed');
    }
  }

  /** A socket of a client's own (?unicast=1): what is sent to its port id reaches that client only. */
  openClientEndpoint(onMessage: (m: RxMessage) => void, onBatchEnd: () => void, onOverrun: (lost: number) => void): Endpoint {
    if (this.closed) throw new Problem('SHUTTING_DOWN', 'the bridge is shutting down');
    let sock: NetlinkSocket;
    try {
      sock = this.openSocket({ protocol: this.protocol.number, receiveBufferBytes: 1024 * 1024, passCredentials: true });
    } catch (err) {
      const e = err as NetlinkError;
      throw problemForErrno(e.code ?? 'EIO', `unicast: opening the client's socket failed: ${e.message}`, 'unicast');
    }
    sock.unref();
    const ep = new Endpoint(sock, onMessage, onBatchEnd, this.metrics);
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

  /** Sends one logical message; `from` is a client's own endpoint or the shared tx. */
  send(req: SendRequest, from: Endpoint = this.tx): Promise<SendReport> {
    if (this.closed) return Promise.reject(new Problem('SHUTTING_DOWN', 'the bridge is shutting down'));
    const p = this.doSend(req, from);
    // Only a send waiting for acks is still in flight once doSend returns:
    // close() waits for those. (Tracking every send cost two promise
    // reactions per request, bench/.)
    if (req.ack) {
      this.inflight.add(p);
      const forget = (): void => void this.inflight.delete(p);
      p.then(forget, forget);
    }
    return p;
  }

  private async doSend(req: SendRequest, from: Endpoint): Promise<SendReport> {
    const proto = this.protocol;
    const type = req.type ?? DnlMsgType.DATA;
    const groups = req.groups ?? [];
    const hasGroups = groups.length > 0;
    const hasPid = req.pid !== undefined;
    const hasRelay = req.relay !== undefined;
    if (!hasGroups && !hasPid && !hasRelay) {
      throw new Problem('VALIDATION', 'groups: name a destination: groups, pid or relay', { field: 'groups' });
    }
    if (hasRelay && (hasGroups || hasPid)) {
      throw new Problem('VALIDATION', 'relay: a RELAY request goes to the kernel alone; do not combine it with groups or pid', { field: 'relay' });
    }
    if (hasRelay && proto.name !== 'dummy') {
      throw new Problem('NEEDS_KERNEL', `relay: RELAY is a dummy_netlink request; protocol ${proto.name} (${proto.number}) has no such kernel endpoint`, { field: 'relay' });
    }
    const wide = groups.some((g) => g > MASK_GROUPS);
    if (wide && proto.name !== 'dummy') {
      throw new Problem(
        'NEEDS_KERNEL',
        `groups: groups above ${MASK_GROUPS} need the kernel's BCAST (dummy_netlink); protocol ${proto.name} (${proto.number}) has none`,
        { field: 'groups' },
      );
    }
    this.checkGroups(groups, 'groups');
    if (wide && groups.length > DNL_BCAST_GROUPS_MAX) {
      throw new Problem('BAD_GROUPS', `groups: one BCAST names at most ${DNL_BCAST_GROUPS_MAX} groups, got ${groups.length}`, { field: 'groups' });
    }
    if (wide && type !== DnlMsgType.DATA) {
      throw new Problem('VALIDATION', `type: the kernel's BCAST delivers DATA (${DnlMsgType.DATA}); another type cannot go to groups above ${MASK_GROUPS}`, { field: 'type' });
    }
    const kernelLegs = proto.kernelEndpoint && (hasGroups || hasRelay || req.pid === 0);
    if (req.ack && !proto.kernelEndpoint) {
      throw new Problem('NO_KERNEL_ENDPOINT', `ack: protocol ${proto.name} (${proto.number}) has no kernel endpoint to acknowledge`, { field: 'ack' });
    }
    if (req.ack && !kernelLegs) {
      throw new Problem('VALIDATION', 'ack: only the kernel acknowledges; this request has no kernel destination (groups, pid 0 or relay)', { field: 'ack' });
    }
    if (!hasGroups && !hasRelay && req.pid === 0 && !proto.kernelEndpoint) {
      throw new Problem('NO_KERNEL_ENDPOINT', `pid: port 0 is the kernel, and protocol ${proto.name} (${proto.number}) has no kernel endpoint`, { field: 'pid' });
    }

    const seq = this.nextSeq();
    const flags = ((req.flags ?? NLM_F_REQUEST) | (req.ack ? NLM_F_ACK : 0)) & 0xffff;
    const pid = from.portId;
    const results: DestinationResult[] = [];
    // Kernel-bound legs in send order, to pair with the acks (the kernel's
    // input runs inside sendto, so its acks queue in the same order).
    const ackSlots: DestinationResult[] = [];
    const waiter = req.ack ? from.expect(seq, 'ack', this.ackTimeoutMs) : null;
    let firstError: NetlinkError | null = null;
    const sendOne = (buf: Buffer, portId: number, mask: number, label: number): 'ok' | NetlinkError => {
      try {
        from.sock.send(buf, { portId, groups: mask });
        this.metrics.sent.inc({ group: label });
        return 'ok';
      } catch (err) {
        const e = err as NetlinkError;
        this.metrics.sendErrors.inc({ code: e.code ?? 'EIO' });
        firstError ??= e;
        return e;
      }
    };

    let bytes: number;
    if (hasRelay) {
      const buf = encodeMessage({ type: DnlMsgType.RELAY, flags, seq, pid, payload: encodeRelay(req.relay!, req.data) });
      bytes = buf.length;
      const r = sendOne(buf, 0, 0, 0);
      const res: DestinationResult = { to: 'relay', portId: req.relay!, result: r === 'ok' ? 'delivered' : 'error' };
      if (r !== 'ok') res.code = r.code;
      else ackSlots.push(res);
      results.push(res);
    } else if (wide) {
      const buf = encodeMessage({ type: DnlMsgType.BCAST, flags, seq, pid, payload: encodeBcast(groups, req.data) });
      bytes = buf.length;
      const r = sendOne(buf, 0, 0, 0);
      const kernelRes: DestinationResult = { to: 'kernel', result: r === 'ok' ? 'delivered' : 'error' };
      if (r !== 'ok') kernelRes.code = r.code;
      else ackSlots.push(kernelRes);
      for (const g of groups) {
        results.push({ to: 'group', group: g, result: r === 'ok' ? 'kernel-broadcast' : 'error', ...(r !== 'ok' ? { code: r.code } : {}) });
      }
      results.push(kernelRes);
    } else {
      const buf = encodeMessage({ type, flags, seq, pid, payload: req.data });
      bytes = buf.length;
      let kernelLeg: DestinationResult | null = null;
      for (const g of groups) {
        // nl_pid 0: the kernel leg. On dummy_netlink the module receives every
        // copy (dst_group set) and keeps one per (port id, seq); on USERSOCK
        // it fails with ECONNREFUSED after the broadcast, reported by the
        // addon as unicast 'no-kernel-endpoint'.
        let res: DestinationResult;
        try {
          const sr = from.sock.send(buf, { portId: 0, groups: groupBit(g) });
          this.metrics.sent.inc({ group: g });
          res = { to: 'group', group: g, result: 'delivered' };
          if (sr.unicast === 'no-kernel-endpoint') kernelLeg ??= { to: 'kernel', result: 'no-kernel-endpoint' };
          else if (proto.kernelEndpoint) ackSlots.push(res);
        } catch (err) {
          const e = err as NetlinkError;
          this.metrics.sendErrors.inc({ code: e.code ?? 'EIO' });
          firstError ??= e;
          res = { to: 'group', group: g, result: 'error', code: e.code };
        }
        results.push(res);
      }
      if (kernelLeg) results.push(kernelLeg);
      if (hasPid && !(hasGroups && req.pid === 0)) {
        const r = sendOne(buf, req.pid!, 0, 0);
        const res: DestinationResult =
          req.pid === 0 ? { to: 'kernel', result: 'delivered' } : { to: 'port', portId: req.pid!, result: 'delivered' };
        if (r === 'ok') {
          if (req.pid === 0) ackSlots.push(res);
        } else if (r.code === 'ECONNREFUSED') {
          res.result = req.pid === 0 ? 'no-kernel-endpoint' : 'port-unreachable';
          res.code = r.code;
        } else if (r.code === 'EAGAIN') {
          res.result = 'busy';
          res.code = r.code;
        } else {
          res.result = 'error';
          res.code = r.code;
        }
        results.push(res);
      }
    }

    if (waiter) {
      waiter.setExpected(ackSlots.length);
      const w = await waiter.done;
      ackSlots.forEach((slot, i) => {
        slot.ack = w.acks[i] ?? { errno: null, code: 'ETIMEDOUT' };
      });
    }

    const failed = results.filter((r) => r.result !== 'delivered' && r.result !== 'kernel-broadcast' && !(r.to === 'kernel' && r.result === 'no-kernel-endpoint' && hasGroups));
    const delivered = results.filter((r) => r.result === 'delivered' || r.result === 'kernel-broadcast');
    const report: SendReport = { seq, portId: pid, type: hasRelay ? DnlMsgType.RELAY : wide ? DnlMsgType.BCAST : type, flags, bytes, ok: failed.length === 0, results };
    if (delivered.length === 0) {
      // Nothing went anywhere: answer with the problem that says why.
      const only = failed[0];
      const extra = { results, seq };
      if (only?.result === 'busy') {
        throw new Problem('PEER_BUSY', `pid: port ${only.portId} is not reading (its receive queue is full); retry later`, { field: 'pid', errno: 'EAGAIN', extra });
      }
      if (only?.result === 'port-unreachable') {
        throw new Problem('PORT_UNREACHABLE', `pid: no socket is bound to port id ${only.portId} on protocol ${proto.number}`, { field: 'pid', errno: 'ECONNREFUSED', extra });
      }
      if (firstError) {
        const e = firstError as NetlinkError;
        const p = problemForErrno(e.code, `send failed: ${e.message}`, hasGroups ? 'groups' : hasRelay ? 'relay' : 'pid');
        // With what happened per destination, as the busy and unreachable answers above.
        throw new Problem(p.code, p.message, { field: p.field, errno: p.errno, extra });
      }
    }
    return report;
  }

  /** The module's STATS reply. */
  async kernelStats(): Promise<DnlStats> {
    if (this.protocol.name !== 'dummy') {
      throw new Problem('NO_KERNEL_ENDPOINT', `protocol ${this.protocol.name} (${this.protocol.number}) has no dummy_netlink kernel endpoint to ask for STATS`);
    }
    const seq = this.nextSeq();
    const w = this.tx.expect(seq, 'stats', this.ackTimeoutMs);
    try {
      this.tx.sock.send(encodeMessage({ type: DnlMsgType.STATS, flags: NLM_F_REQUEST, seq, pid: this.tx.portId }), { portId: 0 });
    } catch (err) {
      const e = err as NetlinkError;
      this.metrics.sendErrors.inc({ code: e.code ?? 'EIO' });
      w.setExpected(0);
      throw problemForErrno(e.code, `STATS request failed: ${e.message}`);
    }
    const res = await w.done;
    if (res.stats) return res.stats;
    const ack = res.acks[0];
    if (ack && ack.errno !== 0) throw problemForErrno(ack.code, `the kernel refused STATS: ${ack.code}`);
    throw new Problem('KERNEL_TIMEOUT', `no STATS reply from the kernel within ${this.ackTimeoutMs} ms`);
  }

  private readonly onRxBatch = (batch: Datagram[]): void => {
    const now = Date.now();
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
      const data = d.data;
      const sole = d.truncated ? 0 : soleMessageLength(data);
      if (sole > 0) {
        this.receive(d, decodeHeader(data, 0), data.subarray(NLMSG_HDRLEN, sole), sole === data.length ? data : data.subarray(0, sole), now);
        continue;
      }
      const { messages, reject } = decodeCounted(d, this.metrics);
      for (const msg of messages) this.receive(d, msg.header, msg.payload, messageBytes(data, msg.payload), now);
      if (reject) {
        const subs = this.byGroup.get(d.group);
        if (subs) {
          const info: MalformedInfo = { group: d.group, portId: d.portId, reason: reject.reason, offset: reject.offset, length: d.length };
          for (const s of subs) {
            s.malformed(info);
            this.touched.add(s);
          }
        }
      }
    }
    if (run > 0) this.metrics.received.inc({ group: runGroup }, run);
    const touched = this.touched;
    this.touched = new Set();
    for (const s of touched) s.flush();
    // Once per batch, not per message (see Metrics.deliveryLatency).
    if (touched.size !== 0) this.metrics.deliveryLatency.observe((performance.now() - batchStart) / 1000);
  };

  /** One received message of the shared socket: numbered and kept by the ring, then routed. */
  private receive(d: Datagram, header: NlMsgHeader, payload: Buffer, bytes: Buffer, now: number): void {
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
      tail: undefined,
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
    const { served, repeat } = this.dedupe.served(copyKey(m.portId, m.header.pid, m.header.seq, m.header.type), now, m.group);
    let fresh = 0;
    for (const s of subs) {
      if (served.has(s)) continue;
      served.add(s);
      s.deliver(m);
      this.touched.add(s);
      fresh++;
    }
    if (repeat) this.metrics.duplicates.inc({}, 1);
    void fresh;
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
    for (const [g, t] of this.lingers) {
      clearTimeout(t);
      if (this.groupRefs.get(g) === 0) this.groupRefs.delete(g);
    }
    this.lingers.clear();
    await Promise.allSettled([...this.inflight]);
    for (const ep of this.clientEndpoints) ep.close();
    this.clientEndpoints.clear();
    this.tx.close();
    this.rx.close();
  }
}

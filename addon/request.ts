// Request/reply pairing over one NetlinkSocket, as mdlayher/netlink's
// Conn.Execute: a request carries a seq, and the kernel (port 0) answers it
// with NLMSG_ERROR acks naming that seq, or with replies of that seq. What no
// pending request claims goes on to the handler, so one socket both sends
// requests and receives traffic (a client's own socket does both).

import {
  NLMSG_ERROR,
  decodeAck,
  encodeMessage,
  forEachMessage,
  type CodecErrorCode,
  type MessageSink,
  type NlMessage,
  type NlMsgHeader,
} from './codec';
import type { NetlinkSocket } from './socket';
import type { Datagram } from './types';

/** A kernel ack: errno 0 ('OK') or the errno the request failed with. */
export interface AckInfo {
  errno: number;
  /** 'OK', 'EINVAL', … ('ERRNO_<n>' for a number the system has no name for). */
  code: string;
}

/** What the kernel answered to one request, by the time it settled. */
export interface Replies {
  /** Acks, in arrival order (which is send order: the kernel's input runs inside sendto). */
  acks: AckInfo[];
  /** Replies other than acks (requests expecting one only). */
  messages: NlMessage[];
}

/** Where a NetlinkConn puts what it receives and no request claims. */
export interface ConnHandler {
  message(d: Datagram, header: NlMsgHeader, payload: Buffer, bytes: Buffer): void;
  /** A datagram cut by the read buffer or malformed (see MessageSink.reject). */
  reject(d: Datagram, reason: CodecErrorCode, offset: number): void;
  /** After each receive batch. */
  batchEnd(): void;
  /** Every ack the kernel sent this socket, claimed or not (for counting). */
  ack?(ack: AckInfo): void;
}

/** A request registered before it goes out; settles on its answers or its timeout. */
export interface PendingRequest {
  readonly done: Promise<Replies>;
  /** How many acks complete it, known once every copy was sent (0 settles it now). */
  expectAcks(n: number): void;
}

interface Waiter {
  /** 'acks': settles at the expected number of acks; 'reply': at the first answer of any kind. */
  mode: 'acks' | 'reply';
  expected: number;
  replies: Replies;
  settle(): void;
}

const NO_HANDLER: ConnHandler = { message: () => undefined, reject: () => undefined, batchEnd: () => undefined };

export class NetlinkConn {
  private readonly pending = new Map<number, Waiter>();
  private readonly sink: MessageSink;

  constructor(
    readonly sock: NetlinkSocket,
    private readonly handler: ConnHandler = NO_HANDLER,
  ) {
    this.sink = {
      message: (d, h, payload, bytes) => this.onMessage(d, h, payload, bytes),
      reject: (d, reason, offset) => handler.reject(d, reason, offset),
    };
    sock.on('datagrams', this.onDatagrams);
  }

  get portId(): number {
    return this.sock.portId;
  }

  /**
   * Registers interest in the kernel's answers to `seq`; call it before the
   * request goes out. Settles with what came when `timeoutMs` passes.
   */
  expect(seq: number, timeoutMs: number, mode: 'acks' | 'reply' = 'acks'): PendingRequest {
    let resolve!: (r: Replies) => void;
    const done = new Promise<Replies>((r) => (resolve = r));
    const waiter: Waiter = {
      mode,
      expected: Number.POSITIVE_INFINITY,
      replies: { acks: [], messages: [] },
      settle: () => {
        clearTimeout(timer);
        if (this.pending.get(seq) === waiter) this.pending.delete(seq);
        resolve(waiter.replies);
      },
    };
    const timer = setTimeout(() => waiter.settle(), timeoutMs);
    this.pending.set(seq, waiter);
    return {
      done,
      expectAcks: (n: number) => {
        waiter.expected = n;
        if (waiter.replies.acks.length >= n) waiter.settle();
      },
    };
  }

  /**
   * Sends one request to the kernel and resolves with its answer: the first
   * reply or ack of its seq, or nothing after `timeoutMs`. A failed sendto
   * throws its NetlinkError.
   */
  execute(request: { type: number; flags: number; seq: number; payload?: Buffer }, timeoutMs: number): Promise<Replies> {
    const p = this.expect(request.seq, timeoutMs, 'reply');
    try {
      this.sock.send(encodeMessage({ ...request, pid: this.portId }), { portId: 0 });
    } catch (err) {
      p.expectAcks(0);
      throw err;
    }
    return p.done;
  }

  private readonly onDatagrams = (batch: Datagram[]): void => {
    forEachMessage(batch, this.sink);
    this.handler.batchEnd();
  };

  private onMessage(d: Datagram, h: NlMsgHeader, payload: Buffer, bytes: Buffer): void {
    // Only the kernel (port 0) answers requests; anyone else's message is traffic.
    if (d.portId === 0) {
      if (h.type === NLMSG_ERROR) {
        const ack = decodeAck(payload);
        if (!(ack instanceof Error) && ack.request) {
          const info: AckInfo = { errno: ack.errno, code: ack.errno === 0 ? 'OK' : (ack.code ?? `ERRNO_${ack.errno}`) };
          this.handler.ack?.(info);
          const w = this.pending.get(ack.request.seq);
          if (w) {
            w.replies.acks.push(info);
            if (w.mode === 'reply' || w.replies.acks.length >= w.expected) w.settle();
          }
          return;
        }
      }
      const w = this.pending.get(h.seq);
      if (w !== undefined && w.mode === 'reply') {
        w.replies.messages.push({ header: h, payload });
        w.settle();
        return;
      }
    }
    this.handler.message(d, h, payload, bytes);
  }

  /** Settles every pending request with what it has, then closes the socket. */
  close(): void {
    for (const w of [...this.pending.values()]) w.settle();
    this.sock.close();
  }
}

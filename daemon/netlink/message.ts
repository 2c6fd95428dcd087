// What the bus hands its consumers: received messages, and the events a
// subscriber is told besides (malformed datagrams, gaps in a resume, overruns).

import type { NlMsgHeader } from '../../addon/codec';

/** One received netlink message, as the bus hands it to subscribers. */
export interface RxMessage {
  /** Arrival group, 0 for a unicast. */
  group: number;
  /** The sender's real port id (from the datagram's source address). */
  portId: number;
  uid?: number;
  header: NlMsgHeader;
  payload: Buffer;
  /** The message's own bytes (header + payload). */
  bytes: Buffer;
  truncated: boolean;
  receivedAt: number;
  /** Sent by this bridge (its tx socket or a client's own socket). */
  fromBridge: boolean;
  /** Daemon-wide cursor ("<epoch>-<seq>", see ring.ts); messages of a client's own socket have none. */
  cursor?: string;
  /** The publishing host's id: set on messages a /fleet stream received from NATS (daemon/fleet/watch.ts). */
  host?: string;
}

export interface MalformedInfo {
  group: number;
  portId: number;
  reason: string;
  offset: number;
  length: number;
}

export interface GapInfo {
  /** evicted: the cursor fell out of the ring; epoch: it names another daemon run. */
  reason: 'evicted' | 'epoch';
  since: string;
  /** Messages (of every group) received after the cursor and no longer held; null when unknown. */
  lost: number | null;
  /** The first cursor still held, or null when the ring is empty. */
  resumeFrom: string | null;
}

/** A consumer of received messages (one per WebSocket or SSE stream). */
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

// The one thing a transport implements to carry a Subscription.
//
// Kept small on purpose: the policy (hello, catch-up gating, backlog bound,
// drop and stall, frame counters) lives once in subscription.ts, and a new
// transport (a NATS fleet bus, a browser console page) plugs in by writing
// these few methods and nothing else. Today's two: ws_writer.ts, sse_writer.ts.

import type { RxMessage } from '../netlink/message';

/** Which transport a writer is: the label its counters carry. */
export type Transport = 'websocket' | 'sse';

export interface StreamWriter {
  readonly transport: Transport;
  /** True: messages are handed over as their netlink bytes (?format=binary), not as JSON frames. */
  readonly binary: boolean;
  /** The hello frame, alone in its own frame, before anything else (SSE puts its retry line first). */
  open(hello: string): void;
  /** One message: its JSON frame (or its bytes when `binary`), and the message itself (its cursor, for SSE ids). */
  message(frame: string | Buffer, m: RxMessage): void;
  /** A non-message frame (hello, dropped, overrun, gap, malformed, sent, error): never dropped. */
  event(type: string, frame: string): void;
  /** End of a receive batch (or of a burst of events): send what is held. */
  flush(): void;
  /** Bytes accepted but not yet on the wire: the backlog the drop and stall policy reads. */
  backlogBytes(): number;
  /** Whether the peer can still take frames. */
  isOpen(): boolean;
  /** The peer stayed over its backlog for --ws-stall-ms: end it the transport's way. */
  closeSlow(): void;
}

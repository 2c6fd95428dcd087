// A bound on what waits to be written to the NATS server. The client answers
// each PING of the server with a PONG written at once, and neither it nor its
// socket bounds what waits to be written: against a server that sends PINGs
// and reads nothing (an outside audit's fake server) the daemon grew to 4 GB
// and aborted, heap out of memory, 110 s after connecting. So while a
// connection is open the daemon looks at its socket's write queue every
// WRITE_CHECK_MS and drops the connection when the queue passes
// WRITE_QUEUE_MAX bytes or WRITE_QUEUE_MAX_WRITES writes; the client then
// dials again as after any loss (paced).
//
// Nothing the daemon writes comes near either bound: the publisher hands the
// client at most 1 MiB unconfirmed (publisher.ts), which the client writes in
// pieces of tens of KiB, and the rest are small and few. A PONG is a write of
// its own (6 bytes, and a few hundred bytes of heap while it waits), so the
// count is what bounds a flood of them: by bytes alone (2 MiB, checked every
// 50 ms) the daemon still peaked at 425-525 MiB.
// The socket is the client's own (protocol.transport.socket, @nats-io
// transport-node 3.x): read by shape, so a release that moves it makes this
// check find nothing, and tests/host/fleet_hostile_server.test.ts fail.

import type { NatsConnection } from '@nats-io/transport-node';

export const WRITE_QUEUE_MAX = 2 * 1024 * 1024;
export const WRITE_QUEUE_MAX_WRITES = 10_000;
export const WRITE_CHECK_MS = 50;

interface ClientSocket {
  writableLength: number;
  /** Node's count of writes waiting (stream.Writable's state; number since Node 15). */
  _writableState: { bufferedRequestCount: number };
  destroyed: boolean;
  destroy(err?: Error): void;
}

/** The client's socket to the server, if the client's internals are as expected. */
function socketOf(c: NatsConnection): ClientSocket | null {
  const s = (c as unknown as { protocol?: { transport?: { socket?: unknown } } }).protocol?.transport?.socket as
    Partial<ClientSocket> | undefined;
  return s &&
    typeof s.writableLength === 'number' &&
    typeof s._writableState?.bufferedRequestCount === 'number' &&
    typeof s.destroy === 'function'
    ? (s as ClientSocket)
    : null;
}

/** Watches `c` until it closes; `onOver` is told before a connection is dropped. Returns a stop function. */
export function boundWriteQueue(c: NatsConnection, onOver: (queuedBytes: number) => void): () => void {
  const timer = setInterval(() => {
    const s = socketOf(c);
    if (s === null || s.destroyed) return;
    if (s.writableLength <= WRITE_QUEUE_MAX && s._writableState.bufferedRequestCount <= WRITE_QUEUE_MAX_WRITES) return;
    onOver(s.writableLength);
    s.destroy(new Error(`the NATS server read nothing while ${s.writableLength} bytes waited to be written to it`));
  }, WRITE_CHECK_MS).unref();
  void c.closed().finally(() => clearInterval(timer));
  return () => clearInterval(timer);
}

/** Whether the client's socket can be found (the tests check it, so an upgrade cannot silently drop the bound). */
export function canBoundWriteQueue(c: NatsConnection): boolean {
  return socketOf(c) !== null;
}

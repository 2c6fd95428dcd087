// What the Subscription unit tests (WebSocket and SSE writers) share: a bus
// that only names itself, a logger that says nothing, and a received message.
import type { Bus } from '../../../daemon/netlink/bus';
import type { RxMessage } from '../../../daemon/netlink/message';

export const fakeBus = { protocol: { name: 'usersock', number: 2 }, tx: { portId: 7 }, unsubscribe: () => undefined } as unknown as Bus;
export const silentLog = { info: () => undefined, warn: () => undefined, debug: () => undefined, error: () => undefined } as never;

/** A one-byte DATA message on group 2 from port 9. */
export function msg(seq: number, cursor?: string): RxMessage {
  return {
    group: 2,
    portId: 9,
    header: { length: 17, type: 16, flags: 0, seq, pid: 0 },
    payload: Buffer.from('x'),
    bytes: Buffer.alloc(17),
    truncated: false,
    receivedAt: 0,
    fromBridge: false,
    cursor,
  };
}

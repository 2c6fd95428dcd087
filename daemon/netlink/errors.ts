// What the netlink side refuses or fails at, in its own words. It names the
// part of a request at fault (`what`) and, when a syscall or the kernel said
// no, the errno; the HTTP side turns that into its answer in one place
// (problemOf in daemon/errors.ts).

export type BusErrorCode =
  /** The bus is closing. */
  | 'SHUTTING_DOWN'
  /** A send names no destination: no groups, no port id, no relay. */
  | 'NO_DESTINATION'
  /** A RELAY combined with groups or a port id: the kernel takes it alone. */
  | 'RELAY_NOT_ALONE'
  /** A request only dummy_netlink's kernel side serves (RELAY; BCAST for groups above 32), on another protocol. */
  | 'NEEDS_MODULE'
  /** A group above the protocol's highest. */
  | 'GROUP_RANGE'
  /** More groups than one BCAST can name. */
  | 'BCAST_TOO_WIDE'
  /** A BCAST (groups above 32) of a type other than DATA. */
  | 'BCAST_TYPE'
  /** Something only a kernel socket does (ack, port 0, STATS) on a protocol without one. */
  | 'NO_KERNEL_ENDPOINT'
  /** An ack asked for a request that goes to no kernel socket. */
  | 'ACK_WITHOUT_KERNEL'
  /** The one destination, a port, has a full receive queue (EAGAIN). */
  | 'PEER_BUSY'
  /** The one destination, a port id, has no socket bound to it (ECONNREFUSED). */
  | 'PORT_UNREACHABLE'
  /** sendto failed for every destination; errno says why. */
  | 'SEND_FAILED'
  /** Another syscall failed (joining a group, opening a socket, sending a request); errno says why. */
  | 'SYSCALL'
  /** The kernel answered a request with an error (errno). */
  | 'KERNEL_REFUSED'
  /** The kernel did not answer in time. */
  | 'KERNEL_TIMEOUT'
  /** A resume cursor that is malformed or names a message not yet received. */
  | 'BAD_CURSOR';

export interface BusErrorOptions {
  /** The part of the request at fault, as the caller named it or as the send request does (groups, pid, relay, type, ack). */
  what?: string;
  /** The errno's name ('EAGAIN') when a syscall or the kernel failed. */
  errno?: string;
}

export class BusError extends Error {
  readonly code: BusErrorCode;
  readonly what?: string;
  readonly errno?: string;

  constructor(code: BusErrorCode, message: string, opts: BusErrorOptions = {}) {
    super(message);
    this.name = 'BusError';
    this.code = code;
    if (opts.what !== undefined) this.what = opts.what;
    if (opts.errno !== undefined) this.errno = opts.errno;
  }
}

/** What the bus names the parts of its own operations that can fail (not fields of a request). */
export const WHAT = {
  /** The groups a subscriber asked for. */
  subscription: 'subscription',
  /** A client's own socket (Bus.openClientEndpoint). */
  clientSocket: 'client socket',
} as const;

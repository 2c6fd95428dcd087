// The public shapes of the netlink addon. addon/socket.ts implements them over
// the native binding; the daemon and the tests depend only on these.

/** Options for NetlinkSocket.open(). */
export interface NetlinkSocketOptions {
  /** Netlink protocol (unit) number, e.g. 2 for NETLINK_USERSOCK. */
  protocol: number;
  /** Port id to bind; 0 (default) lets the kernel assign one. */
  portId?: number;
  /** 32-bit group mask to bind (groups 1..32); default 0. */
  groups?: number;
  /** Receive buffer in bytes (SO_RCVBUFFORCE when permitted, else SO_RCVBUF). */
  receiveBufferBytes?: number;
  /** Set NETLINK_NO_ENOBUFS: overruns are then silent (still counted via SO_MEMINFO). */
  noEnobufs?: boolean;
  /** Ask for SCM_CREDENTIALS so each datagram reports the sender's uid. */
  passCredentials?: boolean;
  /** Largest datagram to read without truncation (default 65536). */
  maxDatagramBytes?: number;
  /** Open the socket inside this network namespace (a NetworkNamespace of socket.ts; needs CAP_SYS_ADMIN). */
  netns?: NetworkNamespaceShape;
}

/** An open network namespace file: NetworkNamespace.open() in socket.ts. */
export interface NetworkNamespaceShape {
  /** The path it was opened from. */
  readonly path: string;
  close(): void;
}

/** One datagram as read from the socket. */
export interface Datagram {
  /** The bytes read (at most maxDatagramBytes). */
  data: Buffer;
  /** Sender's real port id (from the source address; 0 = the kernel). */
  portId: number;
  /** Group it arrived on (from NETLINK_PKTINFO), 0 for unicast. */
  group: number;
  /** The datagram was longer than the read buffer; `data` is cut. */
  truncated: boolean;
  /** The datagram's real length (larger than data.length when truncated). */
  length: number;
  /** Sender's uid when passCredentials is on and the kernel sent it. */
  uid?: number;
}

/** Destination of a send, as sendto's sockaddr_nl. */
export interface SendDestination {
  /** nl_pid: a port id, 0 = the kernel (default 0). */
  portId?: number;
  /** nl_groups: a 32-bit mask; the kernel delivers to ffs(mask) only. */
  groups?: number;
}

/** What one sendto did. Real failures throw a NetlinkError instead. */
export interface SendResult {
  /** Group the broadcast went to (ffs of the mask), 0 when none. */
  broadcastGroup: number;
  /**
   * The unicast leg: 'delivered'; 'no-kernel-endpoint' when a broadcast went
   * out but port 0 has no kernel socket on this protocol (ECONNREFUSED after
   * the broadcast, e.g. NETLINK_USERSOCK).
   */
  unicast: 'delivered' | 'no-kernel-endpoint';
}

/** Emitted as 'overrun' when the receive queue overflowed (ENOBUFS). */
export interface OverrunEvent {
  /** Messages dropped since the last report (SK_MEMINFO_DROPS delta). */
  lost: number;
  /** Socket's total drop counter. */
  totalDrops: number;
}

/** Error thrown or emitted for a failed syscall. */
export interface NetlinkErrorShape extends Error {
  /** 'ECONNREFUSED', 'EPERM', 'EAGAIN', ... */
  code: string;
  /** Negative errno, as Node's own errors. */
  errno: number;
  /** 'socket', 'bind', 'sendto', 'setsockopt', 'recvmmsg', ... */
  syscall: string;
}

// The typed face of the native netlink binding (addon/src/netlink_socket.cc).
// The C++ does syscalls and readiness; what results mean, how errors look and
// when to poll is decided here.
//

import { EventEmitter } from 'node:events';
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import { loadBinding, type NativeBatchCallback, type NativeBinding, type NativeHandle, type NativeNetns } from './binding';
import type {
  Datagram,
  NetlinkErrorShape,
  NetlinkSocketOptions,
  NetworkNamespaceShape,
  OverrunEvent,
  SendDestination,
  SendResult,
} from './types';

/** Words per datagram in the native batch's metadata array. */
const META_WORDS = 6;
const META_FLAG_TRUNCATED = 1;
const META_FLAG_HAS_UID = 2;

const DEFAULT_MAX_DATAGRAM_BYTES = 65536;
const MAX_DATAGRAM_BYTES_LIMIT = 16 * 1024 * 1024;

/** 1-based index of the lowest set bit of a 32-bit mask, 0 for 0 (as ffs(3)). */
export function ffs(mask: number): number {
  const m = mask >>> 0;
  if (m === 0) return 0;
  return 32 - Math.clz32(m & -m);
}

let errnoMap: Map<number, [string, string]> | null = null;
function errnoInfo(errno: number): [string, string] {
  errnoMap ??= getSystemErrorMap();
  return errnoMap.get(errno) ?? [`ERRNO_${-errno}`, `unknown error ${-errno}`];
}

/** A failed syscall: code ('ECONNREFUSED'), negative errno, syscall name. */
export class NetlinkError extends Error implements NetlinkErrorShape {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
  /**
   * On a failed send with a group mask: the group the broadcast leg already
   * reached before the unicast leg failed (sendto broadcasts first).
   */
  broadcastGroup?: number;

  constructor(message: string, code: string, errno: number, syscall: string) {
    super(message);
    this.name = 'NetlinkError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }

  /** From a negative errno, with a message saying what was attempted. */
  static fromErrno(errno: number, syscall: string, attempted: string): NetlinkError {
    const [code, text] = errnoInfo(errno);
    return new NetlinkError(`${attempted}: ${text}`, code, errno, syscall);
  }

  /** Wraps an error thrown by the native binding; other errors pass as they are. */
  static fromNative(err: unknown): unknown {
    if (err instanceof NetlinkError) return err;
    if (
      err instanceof Error &&
      !(err instanceof TypeError) &&
      typeof (err as Partial<NetlinkErrorShape>).code === 'string' &&
      typeof (err as Partial<NetlinkErrorShape>).errno === 'number' &&
      typeof (err as Partial<NetlinkErrorShape>).syscall === 'string'
    ) {
      const e = err as NetlinkErrorShape;
      return new NetlinkError(e.message, e.code, e.errno, e.syscall);
    }
    return err;
  }
}

function native<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw NetlinkError.fromNative(err);
  }
}

function checkUint32(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new TypeError(`The "${name}" argument must be an integer in 0..2^32-1, got ${String(value)}`);
  }
  return value;
}

function checkGroup(value: unknown): number {
  const g = checkUint32(value, 'group');
  if (g === 0) throw new TypeError('The "group" argument must be a group number >= 1, got 0');
  return g;
}

const hex = (n: number): string => `0x${(n >>> 0).toString(16)}`;

const { ECONNREFUSED, EBADF } = osConstants.errno;

/**
 * A network namespace that sockets can be opened in (the `netns` option of
 * NetlinkSocket.open), as `ip netns exec` would but for those sockets only:
 * for each socket the calling thread enters the namespace (setns, which
 * needs CAP_SYS_ADMIN), calls socket() and returns at once. A socket stays
 * in the namespace it was created in; nothing else the process opens moves.
 */
export class NetworkNamespace implements NetworkNamespaceShape {
  readonly path: string;
  /** The native handle, for NetlinkSocket. */
  readonly native: NativeNetns;

  /**
   * Opens `path` (/run/netns/NAME, /proc/PID/ns/net); throws NetlinkError:
   * ENOENT, EACCES, or EINVAL (syscall 'ioctl') when the file is not a
   * network namespace.
   */
  static open(path: string, binding: NativeBinding = loadBinding()): NetworkNamespace {
    if (typeof path !== 'string' || path === '') throw new TypeError('The "path" argument must be a non-empty string');
    const Ctor = binding.NetnsHandle;
    if (Ctor === undefined) throw new TypeError('this binding cannot open network namespaces');
    return new NetworkNamespace(
      path,
      native(() => new Ctor(path)),
    );
  }

  private constructor(path: string, handle: NativeNetns) {
    this.path = path;
    this.native = handle;
  }

  /** Sockets already open stay in the namespace; new ones can no longer be opened in it. */
  close(): void {
    this.native.close();
  }
}

/** Events of NetlinkSocket, for EventEmitter's typed signatures. */
export interface NetlinkSocketEvents {
  datagrams: [batch: Datagram[]];
  overrun: [ev: OverrunEvent];
  error: [err: NetlinkError];
  newListener: [event: string | symbol, listener: (...args: unknown[]) => void];
  removeListener: [event: string | symbol, listener: (...args: unknown[]) => void];
}

/**
 * A bound netlink socket. Receiving runs while at least one 'datagrams'
 * listener is attached; while it runs the socket keeps the event loop alive
 * unless unref() was called (as net.Socket). Without a listener the kernel
 * queues into the receive buffer (and counts drops once it is full).
 */
export class NetlinkSocket extends EventEmitter<NetlinkSocketEvents> {
  readonly protocol: number;
  readonly portId: number;
  readonly maxDatagramBytes: number;
  private readonly handle: NativeHandle;
  private closed = false;
  private receiving = false;
  private lastDrops = 0;

  /** Opens and binds; throws NetlinkError. `binding` is injectable for tests. */
  static open(opts: NetlinkSocketOptions, binding?: NativeBinding): NetlinkSocket {
    return new NetlinkSocket(opts, binding);
  }

  constructor(opts: NetlinkSocketOptions, binding: NativeBinding = loadBinding()) {
    super();
    if (opts === null || typeof opts !== 'object') throw new TypeError('The "opts" argument must be an object');
    const protocol = checkUint32(opts.protocol, 'protocol');
    const portId = checkUint32(opts.portId ?? 0, 'portId');
    const groups = checkUint32(opts.groups ?? 0, 'groups');
    const maxDatagramBytes = checkUint32(opts.maxDatagramBytes ?? DEFAULT_MAX_DATAGRAM_BYTES, 'maxDatagramBytes');
    if (maxDatagramBytes < 1 || maxDatagramBytes > MAX_DATAGRAM_BYTES_LIMIT) {
      throw new TypeError(`The "maxDatagramBytes" argument must be in 1..${MAX_DATAGRAM_BYTES_LIMIT}`);
    }
    if (opts.receiveBufferBytes !== undefined) checkUint32(opts.receiveBufferBytes, 'receiveBufferBytes');
    for (const k of ['noEnobufs', 'passCredentials'] as const) {
      if (opts[k] !== undefined && typeof opts[k] !== 'boolean') {
        throw new TypeError(`The "${k}" option must be a boolean`);
      }
    }

    this.protocol = protocol;
    this.maxDatagramBytes = maxDatagramBytes;
    if (opts.netns !== undefined && !(opts.netns instanceof NetworkNamespace)) {
      throw new TypeError('The "netns" option must be a NetworkNamespace');
    }
    const netns = opts.netns?.native;
    const handle = native(() =>
      netns === undefined
        ? new binding.NetlinkHandle(protocol, maxDatagramBytes)
        : new binding.NetlinkHandle(protocol, maxDatagramBytes, netns),
    );
    try {
      // Options that affect what is queued go on before bind joins groups.
      if (opts.receiveBufferBytes !== undefined) handle.setReceiveBuffer(opts.receiveBufferBytes);
      if (opts.noEnobufs) handle.setNoEnobufs(true);
      if (opts.passCredentials) handle.setPassCred(true);
      handle.bind(portId, groups);
      this.portId = handle.localPortId();
    } catch (err) {
      handle.close();
      throw NetlinkError.fromNative(err);
    }
    this.handle = handle;

    this.on('newListener', (event) => {
      if (event === 'datagrams' && !this.receiving && !this.closed) this.startReceiving();
    });
    this.on('removeListener', (event) => {
      if (event === 'datagrams' && this.receiving && this.listenerCount('datagrams') === 0) {
        this.receiving = false;
        this.handle.stop();
      }
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  join(group: number): void {
    const g = checkGroup(group);
    this.live('setsockopt');
    native(() => this.handle.addMembership(g));
  }

  leave(group: number): void {
    const g = checkGroup(group);
    this.live('setsockopt');
    native(() => this.handle.dropMembership(g));
  }

  /** Groups this socket belongs to (bind mask and joins), ascending. */
  memberships(): number[] {
    this.live('getsockopt');
    return native(() => this.handle.listMemberships());
  }

  /** Sets the receive buffer; returns what the kernel reports (twice the request, capped). */
  setReceiveBuffer(bytes: number): number {
    const b = checkUint32(bytes, 'bytes');
    this.live('setsockopt');
    return native(() => this.handle.setReceiveBuffer(b));
  }

  setNoEnobufs(on: boolean): void {
    if (typeof on !== 'boolean') throw new TypeError('The "on" argument must be a boolean');
    this.live('setsockopt');
    native(() => this.handle.setNoEnobufs(on));
  }

  /**
   * sendto(portId, groups) with MSG_DONTWAIT. The kernel broadcasts to group
   * ffs(groups) first, then unicasts to portId (0 = the kernel). When groups
   * is set, portId is 0 and no kernel socket exists (NETLINK_USERSOCK), the
   * unicast leg fails with ECONNREFUSED after the broadcast went out: that is
   * reported as unicast 'no-kernel-endpoint', not thrown. Other failures
   * throw NetlinkError (EAGAIN when a unicast peer's buffer is full).
   */
  send(data: Buffer | Uint8Array, dest: SendDestination = {}): SendResult {
    if (!(data instanceof Uint8Array)) throw new TypeError('The "data" argument must be a Buffer or Uint8Array');
    if (dest === null || typeof dest !== 'object') throw new TypeError('The "dest" argument must be an object');
    const portId = checkUint32(dest.portId ?? 0, 'dest.portId');
    const groups = checkUint32(dest.groups ?? 0, 'dest.groups');
    this.live('sendto');
    const rc = this.handle.send(data, portId, groups);
    const broadcastGroup = ffs(groups);
    if (rc >= 0) return { broadcastGroup, unicast: 'delivered' };
    // Every broadcast on a protocol without a kernel socket ends here: answer
    // before building an error (its stack capture cost 3 µs of a 4 µs send).
    if (rc === -ECONNREFUSED && groups !== 0 && portId === 0) return { broadcastGroup, unicast: 'no-kernel-endpoint' };
    const err = NetlinkError.fromErrno(rc, 'sendto', `sendto port ${portId} groups ${hex(groups)}`);
    // ECONNREFUSED and EAGAIN come from the unicast leg, after the broadcast.
    if (groups !== 0 && (err.code === 'ECONNREFUSED' || err.code === 'EAGAIN')) err.broadcastGroup = broadcastGroup;
    throw err;
  }

  /** The socket's drop counter (SK_MEMINFO_DROPS): messages lost to overruns. */
  drops(): number {
    this.live('getsockopt');
    return native(() => this.handle.drops());
  }

  /** Let an active receive keep the process alive (the default). */
  ref(): this {
    if (!this.closed) this.handle.ref();
    return this;
  }

  /** Let the process exit even while receiving. */
  unref(): this {
    if (!this.closed) this.handle.unref();
    return this;
  }

  /** Closes the fd and the poll handle. Idempotent; safe inside a listener. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.receiving = false;
    this.handle.close();
  }

  private live(syscall: string): void {
    if (this.closed) throw NetlinkError.fromErrno(-EBADF, syscall, `${syscall} on a closed socket`);
  }

  private startReceiving(): void {
    this.receiving = true;
    try {
      this.handle.start(this.onBatch);
    } catch (err) {
      this.receiving = false;
      throw NetlinkError.fromNative(err);
    }
  }

  // Runs inside the native poll callback: must not throw on its own account.
  private readonly onBatch: NativeBatchCallback = (bytes, meta, count, totalDrops, errno, failedCall = 'recvmmsg') => {
    if (this.closed) return;
    const lost = (totalDrops - this.lastDrops) >>> 0;
    if (lost > 0) {
      this.lastDrops = totalDrops;
      this.emit('overrun', { lost, totalDrops });
      if (this.closed) return;
    }
    if (count > 0 && bytes !== null && meta !== null) {
      this.emit('datagrams', splitBatch(bytes, meta, count));
      if (this.closed) return;
    }
    if (errno !== 0) {
      const attempted = failedCall === 'realloc' ? 'grow the receive batch' : failedCall;
      const err = NetlinkError.fromErrno(-errno, failedCall, `${attempted} on protocol ${this.protocol} port ${this.portId}`);
      // An unhandled 'error' would throw out of the poll callback; warn instead.
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else process.emitWarning(err);
    }
  };
}

/** Splits a native batch (packed bytes + metadata words) into Datagrams. */
export function splitBatch(bytes: Buffer, meta: Uint32Array, count: number): Datagram[] {
  const out: Datagram[] = new Array<Datagram>(count);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const m = i * META_WORDS;
    const stored = meta[m];
    const flags = meta[m + 4];
    const d: Datagram = {
      data: bytes.subarray(offset, offset + stored),
      length: meta[m + 1],
      portId: meta[m + 2],
      group: meta[m + 3],
      truncated: (flags & META_FLAG_TRUNCATED) !== 0,
    };
    if (flags & META_FLAG_HAS_UID) d.uid = meta[m + 5];
    out[i] = d;
    offset += stored;
  }
  return out;
}

// The compiled addon (build/Release/nlbridge_netlink.node, from
// addon/src/*.cc): the shapes of its native classes, and its one loader.
// Everything typed on top of them is in socket.ts and seccomp.ts.

import * as path from 'node:path';

/**
 * Receive callback of the native handle, called once per poll wake-up.
 * `totalDrops` is the socket's SK_MEMINFO_DROPS, read on every wake-up: the
 * exact loss, where ENOBUFS only says that a congestion began. `failedCall`
 * names what `errno` came from: 'recvmmsg', 'uv_poll', 'uv_poll_start', or
 * 'realloc' (ENOMEM: the batch buffer could not grow; the datagrams not read
 * yet wait in the kernel's queue).
 */
export type NativeBatchCallback = (
  bytes: Buffer | null,
  meta: Uint32Array | null,
  count: number,
  totalDrops: number,
  errno: number,
  failedCall?: string,
) => void;

/** One native socket (class NetlinkHandle in netlink_socket.cc). */
export interface NativeHandle {
  bind(portId: number, groups: number): void;
  localPortId(): number;
  addMembership(group: number): void;
  dropMembership(group: number): void;
  listMemberships(): number[];
  setReceiveBuffer(bytes: number): number;
  setNoEnobufs(on: boolean): void;
  setPassCred(on: boolean): void;
  /** Bytes sent, or a negative errno (sendto is never thrown). */
  send(data: Uint8Array, portId: number, groups: number): number;
  drops(): number;
  start(onBatch: NativeBatchCallback): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** An open network namespace (class NetnsHandle in netlink_socket.cc). */
export interface NativeNetns {
  close(): void;
}

/** The module object of build/Release/nlbridge_netlink.node, or a fake. */
export interface NativeBinding {
  NetlinkHandle: new (protocol: number, maxDatagramBytes: number, netns?: NativeNetns) => NativeHandle;
  /** Absent in fakes that do not model namespaces. */
  NetnsHandle?: new (path: string) => NativeNetns;
  stats(): { openSockets: number; livePollHandles: number };
}

let loadedBinding: NativeBinding | null = null;

/** Loads the compiled addon once (from the repo root's build/Release). */
export function loadBinding(): NativeBinding {
  if (loadedBinding === null) {
    // dist/addon/binding.js -> repo root
    const root = path.resolve(__dirname, '../..');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loadedBinding = require(path.join(root, 'build/Release/nlbridge_netlink.node')) as NativeBinding;
  }
  return loadedBinding;
}

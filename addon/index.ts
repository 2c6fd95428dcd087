// The addon's public surface: the socket, request/ack pairing over it, its
// types, the seccomp restriction, the nlmsghdr codec and the dummy_netlink
// UAPI mirror.

export { NetlinkSocket, NetlinkError, NetworkNamespace, ffs, splitBatch } from './socket';
export type { NetlinkSocketEvents } from './socket';
export { loadBinding } from './binding';
export type { NativeBinding, NativeHandle, NativeNetns, NativeBatchCallback } from './binding';
export { NetlinkConn } from './request';
export type { AckInfo, ConnHandler, PendingRequest, Replies } from './request';
export { restrictNetlink } from './seccomp';
export type { NativeRestrictNetlink, NetlinkRestriction, RestrictNetlinkOptions } from './seccomp';
export type {
  Datagram,
  NetlinkErrorShape,
  NetlinkSocketOptions,
  NetworkNamespaceShape,
  OverrunEvent,
  SendDestination,
  SendResult,
} from './types';
export * from './codec';
export * from './dummy_netlink';

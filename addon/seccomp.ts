// restrictNetlink: contains what CAP_NET_ADMIN lets code running inside this
// process do, once the netlink sockets it needs are open (addon/src/seccomp.cc
// installs the filter; daemon/README.md "What the seccomp filter contains").

import { loadBinding } from './binding';
import { NetlinkError } from './socket';

export interface RestrictNetlinkOptions {
  /** Netlink protocols socket(AF_NETLINK, …) may still open (0..31). May be empty. */
  protocols: readonly number[];
}

export interface NetlinkRestriction {
  /** The protocols still allowed, ascending, without duplicates. */
  protocols: number[];
  /** The ABI the filter admits ('x86_64' or 'aarch64'); every other one is refused. */
  arch: string;
  /** True when an earlier call had installed the same filter: nothing was done. */
  alreadyRestricted: boolean;
}

/** The native function (absent from a build without addon/src/seccomp.cc). */
export type NativeRestrictNetlink = (protocols: number[]) => NetlinkRestriction;

/**
 * Installs a seccomp filter on every thread of the process, now and later
 * (and on its children): socket(AF_NETLINK, …) fails with EPERM unless the
 * protocol is listed; socket() of families other than AF_UNIX, AF_INET,
 * AF_INET6 and AF_NETLINK, network-configuration ioctls, netfilter's socket
 * options, SO_MARK, TCP_REPAIR, IP(V6)_TRANSPARENT, io_uring, bpf and
 * pidfd_getfd fail with EPERM; other ABIs (i386, x32) get EPERM for every
 * syscall. It cannot be removed.
 *
 * Once per process: a second call with the same protocols returns
 * `alreadyRestricted: true` and installs nothing; with other protocols it
 * throws NetlinkError EALREADY (a filter cannot be widened, and stacking a
 * narrower one would make the outcome depend on call order).
 *
 * Throws TypeError for bad arguments; NetlinkError (code, errno, syscall) when
 * the filter cannot be installed: ENOTSUP on an architecture without a filter,
 * EBUSY when an io_uring is open (UV_USE_IO_URING=1: its operations bypass
 * seccomp), EPERM from seccomp(2) when an outer filter forbids it (systemd's
 * @system-service does not list seccomp).
 */
export function restrictNetlink(
  opts: RestrictNetlinkOptions,
  native: NativeRestrictNetlink | undefined = (loadBinding() as { restrictNetlink?: NativeRestrictNetlink }).restrictNetlink,
): NetlinkRestriction {
  if (opts === null || typeof opts !== 'object') throw new TypeError('The "opts" argument must be an object');
  const list: unknown = opts.protocols;
  if (!Array.isArray(list)) throw new TypeError('The "opts.protocols" argument must be an array of netlink protocol numbers');
  list.forEach((p: unknown, i) => {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 31) {
      throw new TypeError(`The "opts.protocols" argument must hold integers in 0..31, got ${String(p)} at index ${i}`);
    }
  });
  if (native === undefined) {
    throw new NetlinkError(
      'restrictNetlink: this build of the addon has no seccomp filter (addon/src/seccomp.cc)',
      'ENOTSUP',
      -95,
      'seccomp',
    );
  }
  try {
    return native([...new Set(list as number[])].sort((a, b) => a - b));
  } catch (err) {
    throw NetlinkError.fromNative(err);
  }
}

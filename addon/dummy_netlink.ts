// TypeScript mirror of module/include/uapi/linux/dummy_netlink.h.
// tests/unit/uapi_mirror.test.ts parses the header and checks every constant
// and struct size here against it: change both together.

export const DNL_VERSION = 2;
export const DNL_UNIT_DEFAULT = 25;
export const DNL_NGROUPS_MIN = 32;
export const DNL_NGROUPS_MAX = 1024;
export const DNL_PAYLOAD_MAX = 4096;
export const DNL_BCAST_GROUPS_MAX = 64;
/** Once-only: a copy is recognised this long after the first, ... */
export const DNL_ONCE_WINDOW_MS = 2000;
/** ... and across fewer than this many of the same socket's own requests. */
export const DNL_ONCE_KEYS = 120;

export enum DnlMsgType {
  DATA = 0x10,
  RELAY = 0x11,
  BCAST = 0x12,
  TICK = 0x13,
  STATS = 0x14,
  /** A RELAY's delivery, from port 0: struct dnl_relayed (who asked), then the data. */
  RELAYED = 0x15,
}

/** Byte sizes of the UAPI structs (no padding in any of them). */
export const DNL_STRUCT_SIZES = {
  dnl_relay: 8,
  dnl_relayed: 8,
  dnl_bcast: 8,
  dnl_tick: 24,
  dnl_stats: 80,
} as const;

export function dnlTypeName(type: number): string | null {
  return DnlMsgType[type] ?? null;
}

export class DnlPayloadError extends Error {
  readonly code = 'EDNLPAYLOAD';
  constructor(message: string) {
    super(message);
    this.name = 'DnlPayloadError';
  }
}

/** RELAY request payload: deliver `data` to `portId`. */
export function encodeRelay(portId: number, data: Uint8Array): Buffer {
  const out = Buffer.alloc(DNL_STRUCT_SIZES.dnl_relay + data.byteLength);
  out.writeUInt32LE(portId, 0);
  out.set(data, DNL_STRUCT_SIZES.dnl_relay);
  return out;
}

export function decodeRelay(payload: Buffer): { portId: number; data: Buffer } {
  need(payload, DNL_STRUCT_SIZES.dnl_relay, 'dnl_relay');
  return { portId: payload.readUInt32LE(0), data: payload.subarray(DNL_STRUCT_SIZES.dnl_relay) };
}

/** Who asked for a relay, as the module wrote it (struct dnl_relayed). */
export interface DnlRelayedFrom {
  /** The requester's real port id. */
  portId: number;
  /** The requesting task's uid, in the initial user namespace. */
  uid: number;
}

/**
 * The module's delivery of a RELAY: only the module writes this type from
 * port 0, so trust the header only when the sender's port id is 0 (a user
 * socket may send any type, this one included). Returns null for a message
 * that is not a RELAYED from port 0.
 */
export function decodeRelayed(type: number, senderPortId: number, payload: Buffer): { relayedFrom: DnlRelayedFrom; data: Buffer } | null {
  if (type !== DnlMsgType.RELAYED || senderPortId !== 0) return null;
  need(payload, DNL_STRUCT_SIZES.dnl_relayed, 'dnl_relayed');
  return {
    relayedFrom: { portId: payload.readUInt32LE(0), uid: payload.readUInt32LE(4) },
    data: payload.subarray(DNL_STRUCT_SIZES.dnl_relayed),
  };
}

export function encodeRelayed(from: DnlRelayedFrom, data: Uint8Array): Buffer {
  const out = Buffer.alloc(DNL_STRUCT_SIZES.dnl_relayed + data.byteLength);
  out.writeUInt32LE(from.portId, 0);
  out.writeUInt32LE(from.uid, 4);
  out.set(data, DNL_STRUCT_SIZES.dnl_relayed);
  return out;
}

/** BCAST request payload: broadcast `data` to each of `groups`. */
export function encodeBcast(groups: readonly number[], data: Uint8Array): Buffer {
  const head = DNL_STRUCT_SIZES.dnl_bcast + 4 * groups.length;
  const out = Buffer.alloc(head + data.byteLength);
  out.writeUInt32LE(groups.length, 0);
  groups.forEach((g, i) => out.writeUInt32LE(g, DNL_STRUCT_SIZES.dnl_bcast + 4 * i));
  out.set(data, head);
  return out;
}

export function decodeBcast(payload: Buffer): { groups: number[]; data: Buffer } {
  need(payload, DNL_STRUCT_SIZES.dnl_bcast, 'dnl_bcast');
  const count = payload.readUInt32LE(0);
  const head = DNL_STRUCT_SIZES.dnl_bcast + 4 * count;
  need(payload, head, `dnl_bcast with ${count} groups`);
  const groups: number[] = [];
  for (let i = 0; i < count; i++) groups.push(payload.readUInt32LE(DNL_STRUCT_SIZES.dnl_bcast + 4 * i));
  return { groups, data: payload.subarray(head) };
}

export interface DnlTick {
  counter: bigint;
  /** CLOCK_REALTIME in ns when the kernel sent it. */
  timeNs: bigint;
  group: number;
  periodMs: number;
}

export function encodeTick(tick: DnlTick): Buffer {
  const out = Buffer.alloc(DNL_STRUCT_SIZES.dnl_tick);
  out.writeBigUInt64LE(tick.counter, 0);
  out.writeBigUInt64LE(tick.timeNs, 8);
  out.writeUInt32LE(tick.group, 16);
  out.writeUInt32LE(tick.periodMs, 20);
  return out;
}

export function decodeTick(payload: Buffer): DnlTick {
  need(payload, DNL_STRUCT_SIZES.dnl_tick, 'dnl_tick');
  return {
    counter: payload.readBigUInt64LE(0),
    timeNs: payload.readBigUInt64LE(8),
    group: payload.readUInt32LE(16),
    periodMs: payload.readUInt32LE(20),
  };
}

export const DNL_STATS_COUNTERS = [
  'received',
  'accepted',
  'ignored',
  'relayed',
  'broadcast',
  'ticks',
  'errors',
  'once_full',
  'once_senders',
] as const;

/** Counters a version-1 module sends; later ones read as 0n from it. */
const DNL_STATS_V1_COUNTERS = 7;
const DNL_STATS_V1_BYTES = 8 + 8 * DNL_STATS_V1_COUNTERS;

export type DnlStats = { version: number; unit: number } & Record<(typeof DNL_STATS_COUNTERS)[number], bigint>;

export function decodeStats(payload: Buffer): DnlStats {
  need(payload, DNL_STATS_V1_BYTES, 'dnl_stats');
  const stats = { version: payload.readUInt32LE(0), unit: payload.readUInt32LE(4) } as DnlStats;
  DNL_STATS_COUNTERS.forEach((name, i) => {
    const at = 8 + 8 * i;
    stats[name] = at + 8 <= payload.length ? payload.readBigUInt64LE(at) : 0n;
  });
  return stats;
}

export function encodeStats(stats: DnlStats): Buffer {
  const out = Buffer.alloc(DNL_STRUCT_SIZES.dnl_stats);
  out.writeUInt32LE(stats.version, 0);
  out.writeUInt32LE(stats.unit, 4);
  DNL_STATS_COUNTERS.forEach((name, i) => out.writeBigUInt64LE(stats[name], 8 + 8 * i));
  return out;
}

function need(payload: Buffer, bytes: number, what: string): void {
  if (payload.length < bytes) {
    throw new DnlPayloadError(`${what} needs ${bytes} bytes, payload has ${payload.length}`);
  }
}

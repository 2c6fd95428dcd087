// The bench message as the C sender writes it (bench/c/nlb_common.h): a
// 16-byte nlmsghdr, then magic, reserved, index (u64), send time (u64,
// CLOCK_MONOTONIC ns, the clock of process.hrtime.bigint()).

import * as fs from 'node:fs';

export const NLB_MSG_TYPE = 0x10;
export const NLB_MAGIC = 0x4e4c4231;
export const NLB_PAYLOAD_BYTES = 24;

/** Bench messages in one datagram (walks nlmsg_len, as NLMSG_OK/NEXT do). */
export function countBenchMessages(buf: Buffer): number {
  let n = 0;
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    if (buf.readUInt16LE(off + 4) === NLB_MSG_TYPE && len >= 16 + NLB_PAYLOAD_BYTES && buf.readUInt32LE(off + 16) === NLB_MAGIC) n++;
    off += (len + 3) & ~3;
  }
  return n;
}

/** Parse a bench payload (the bytes after the nlmsghdr). */
export function parsePayload(payload: Buffer): { index: number; sendNs: bigint } | null {
  if (payload.length < NLB_PAYLOAD_BYTES || payload.readUInt32LE(0) !== NLB_MAGIC) return null;
  return { index: Number(payload.readBigUInt64LE(8)), sendNs: payload.readBigUInt64LE(16) };
}

/** Drops column of /proc/net/netlink for a socket, by port id (any process's). */
export function procNetlinkDrops(portId: number): number | null {
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/netlink', 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    if (f.length >= 10 && Number(f[2]) === portId) return Number(f[8]);
  }
  return null;
}

// The bench message as the C sender writes it (bench/c/nlb_common.h): a
// 16-byte nlmsghdr, then 36 ASCII bytes: "NLB1", the index and the send time
// (CLOCK_MONOTONIC ns, the clock of process.hrtime.bigint()) in 16 hex
// digits each.

import * as fs from 'node:fs';

export const NLB_MSG_TYPE = 0x10;
export const NLB_MAGIC = 'NLB1';
/** Probes (not counted): sent until every client has seen one, and to warm up. */
export const NLB_PROBE_MAGIC = 'NLB0';
/** "NLB1" read as a little-endian u32, for a quick check in a Buffer. */
const MAGIC_U32 = Buffer.from(NLB_MAGIC).readUInt32LE(0);
export const NLB_PAYLOAD_BYTES = 36;

/** Bench messages in one datagram (walks nlmsg_len, as NLMSG_OK/NEXT do). */
export function countBenchMessages(buf: Buffer): number {
  let n = 0;
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) break;
    if (buf.readUInt16LE(off + 4) === NLB_MSG_TYPE && len >= 16 + NLB_PAYLOAD_BYTES && buf.readUInt32LE(off + 16) === MAGIC_U32) n++;
    off += (len + 3) & ~3;
  }
  return n;
}

const HEX16 = /^[0-9a-f]{16}$/;

export interface BenchPayload {
  index: number;
  sendNs: bigint;
  probe: boolean;
}

/** Parse a bench payload given as text ("NLB1"/"NLB0" + 32 hex digits, maybe more after). */
export function parsePayloadText(text: string): BenchPayload | null {
  if (text.length < NLB_PAYLOAD_BYTES) return null;
  const magic = text.slice(0, 4);
  if (magic !== NLB_MAGIC && magic !== NLB_PROBE_MAGIC) return null;
  const index = text.slice(4, 20);
  const sendNs = text.slice(20, 36);
  if (!HEX16.test(index) || !HEX16.test(sendNs)) return null;
  return { index: parseInt(index, 16), sendNs: BigInt('0x' + sendNs), probe: magic === NLB_PROBE_MAGIC };
}

/** Parse a bench payload (the bytes after the nlmsghdr). */
export function parsePayload(payload: Buffer): BenchPayload | null {
  if (payload.length < NLB_PAYLOAD_BYTES || payload[0] !== 0x4e || payload[1] !== 0x4c || payload[2] !== 0x42) return null;
  return parsePayloadText(payload.toString('latin1', 0, NLB_PAYLOAD_BYTES));
}

/** The payload text for message `index` sent now. */
export function payloadText(index: number, sendNs: bigint): string {
  return NLB_MAGIC + index.toString(16).padStart(16, '0') + sendNs.toString(16).padStart(16, '0');
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

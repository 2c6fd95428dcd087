// nlmsghdr stream codec. Any local user can send arbitrary bytes on
// NETLINK_USERSOCK, so decoding never throws: a malformed datagram yields the
// messages before the fault plus one typed CodecError.

import { constants as osConstants } from 'node:os';
import type { Datagram } from './types';

/** <linux/netlink.h>: the unit with no kernel socket, open to user-space peers. */
export const NETLINK_USERSOCK = 2;

export const NLMSG_ALIGNTO = 4;
export const NLMSG_HDRLEN = 16;

export const NLMSG_NOOP = 0x1;
export const NLMSG_ERROR = 0x2;
export const NLMSG_DONE = 0x3;
export const NLMSG_OVERRUN = 0x4;
/** Types below this are netlink's own control messages. */
export const NLMSG_MIN_TYPE = 0x10;

export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [NLM_F_REQUEST, 'REQUEST'],
  [NLM_F_MULTI, 'MULTI'],
  [NLM_F_ACK, 'ACK'],
  [NLM_F_ECHO, 'ECHO'],
  [NLM_F_DUMP_INTR, 'DUMP_INTR'],
  [NLM_F_DUMP_FILTERED, 'DUMP_FILTERED'],
];

const CONTROL_TYPE_NAMES: Readonly<Record<number, string>> = {
  [NLMSG_NOOP]: 'NOOP',
  [NLMSG_ERROR]: 'ERROR',
  [NLMSG_DONE]: 'DONE',
  [NLMSG_OVERRUN]: 'OVERRUN',
};

export interface NlMsgHeader {
  length: number;
  type: number;
  flags: number;
  seq: number;
  pid: number;
}

export interface NlMessage {
  header: NlMsgHeader;
  payload: Buffer;
}

export interface OutgoingMessage {
  type: number;
  flags?: number;
  seq?: number;
  pid?: number;
  payload?: Buffer | Uint8Array;
}

export type CodecErrorCode =
  /** Fewer bytes left than a header (16). */
  | 'ETOOSHORT'
  /** nlmsg_len below the header size. */
  | 'EBADLEN'
  /** nlmsg_len of zero: a naive decoder would loop forever. */
  | 'EZEROLEN'
  /** nlmsg_len runs past the end of the datagram. */
  | 'ETRUNC';

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  /** Byte offset of the offending header in the datagram. */
  readonly offset: number;

  constructor(code: CodecErrorCode, offset: number, message: string) {
    super(message);
    this.name = 'CodecError';
    this.code = code;
    this.offset = offset;
  }
}

export function align(length: number): number {
  return (length + NLMSG_ALIGNTO - 1) & ~(NLMSG_ALIGNTO - 1);
}

export function encodedLength(payloadBytes: number): number {
  return align(NLMSG_HDRLEN + payloadBytes);
}

/** Writes one message at `offset`; returns the offset after its padding. */
function writeMessage(target: Buffer, offset: number, m: OutgoingMessage): number {
  const payloadBytes = m.payload?.byteLength ?? 0;
  const length = NLMSG_HDRLEN + payloadBytes;
  checkU16('type', m.type);
  checkU16('flags', m.flags ?? 0);
  checkU32('seq', m.seq ?? 0);
  checkU32('pid', m.pid ?? 0);
  target.writeUInt32LE(length, offset);
  target.writeUInt16LE(m.type, offset + 4);
  target.writeUInt16LE(m.flags ?? 0, offset + 6);
  target.writeUInt32LE(m.seq ?? 0, offset + 8);
  target.writeUInt32LE(m.pid ?? 0, offset + 12);
  if (m.payload && payloadBytes > 0) {
    target.set(m.payload, offset + NLMSG_HDRLEN);
  }
  return offset + align(length);
}

/** One message, header length filled in, padded to 4 bytes. */
export function encodeMessage(m: OutgoingMessage): Buffer {
  return encodeMessages([m]);
}

/** Several messages in one datagram, each 4-byte aligned. */
export function encodeMessages(messages: readonly OutgoingMessage[]): Buffer {
  let total = 0;
  for (const m of messages) total += encodedLength(m.payload?.byteLength ?? 0);
  const out = Buffer.alloc(total);
  let offset = 0;
  for (const m of messages) offset = writeMessage(out, offset, m);
  return out;
}

export function decodeHeader(buf: Buffer, offset = 0): NlMsgHeader {
  return {
    length: buf.readUInt32LE(offset),
    type: buf.readUInt16LE(offset + 4),
    flags: buf.readUInt16LE(offset + 6),
    seq: buf.readUInt32LE(offset + 8),
    pid: buf.readUInt32LE(offset + 12),
  };
}

/**
 * The length of the one message that fills this datagram (its alignment
 * padding aside), or 0 when the datagram holds anything else: several
 * messages, or a malformed one (decodeDatagram says which). The receive path
 * takes the common datagram without decodeDatagram's arrays and objects.
 */
export function soleMessageLength(buf: Buffer): number {
  if (buf.length < NLMSG_HDRLEN) return 0;
  const length = buf.readUInt32LE(0);
  return length >= NLMSG_HDRLEN && length <= buf.length && align(length) >= buf.length ? length : 0;
}

export interface DecodeResult {
  messages: NlMessage[];
  /** The first fault; the messages before it are still returned. */
  error: CodecError | null;
}

/**
 * Splits a datagram into messages. Payloads are views into `buf`, not copies.
 * The last message may omit its alignment padding; any other leftover bytes
 * are a fault (the kernel's nlmsg_ok() would skip them silently).
 */
export function decodeDatagram(buf: Buffer): DecodeResult {
  const messages: NlMessage[] = [];
  let offset = 0;
  while (offset < buf.length) {
    const remaining = buf.length - offset;
    if (remaining < NLMSG_HDRLEN) {
      return fail(messages, 'ETOOSHORT', offset, `${remaining} bytes left, a header needs ${NLMSG_HDRLEN}`);
    }
    const header = decodeHeader(buf, offset);
    if (header.length === 0) {
      return fail(messages, 'EZEROLEN', offset, 'nlmsg_len is 0');
    }
    if (header.length < NLMSG_HDRLEN) {
      return fail(messages, 'EBADLEN', offset, `nlmsg_len ${header.length} is below the header size ${NLMSG_HDRLEN}`);
    }
    if (header.length > remaining) {
      return fail(messages, 'ETRUNC', offset, `nlmsg_len ${header.length} runs past the datagram (${remaining} bytes left)`);
    }
    messages.push({ header, payload: buf.subarray(offset + NLMSG_HDRLEN, offset + header.length) });
    offset += align(header.length);
  }
  return { messages, error: null };
}

function fail(messages: NlMessage[], code: CodecErrorCode, offset: number, detail: string): DecodeResult {
  return { messages, error: new CodecError(code, offset, `malformed netlink datagram at byte ${offset}: ${detail}`) };
}

/** Where forEachMessage puts what a receive batch holds. */
export interface MessageSink {
  /**
   * One message: the datagram it came in (sender, group, uid), its header,
   * its payload and its own bytes (header + payload), views into the datagram.
   */
  message(d: Datagram, header: NlMsgHeader, payload: Buffer, bytes: Buffer): void;
  /**
   * A datagram cut by the read buffer ('ETRUNC': its tail is lost even when
   * the cut fell between two messages) or malformed at `offset`; the
   * messages before the fault went to message() first.
   */
  reject(d: Datagram, reason: CodecErrorCode, offset: number): void;
}

/**
 * Decodes a receive batch, message by message. The common datagram, one
 * message filling it, is taken without decodeDatagram's arrays and objects
 * (the receive hot path, bench/).
 */
export function forEachMessage(batch: readonly Datagram[], sink: MessageSink): void {
  for (const d of batch) {
    const data = d.data;
    const sole = d.truncated ? 0 : soleMessageLength(data);
    if (sole > 0) {
      sink.message(d, decodeHeader(data, 0), data.subarray(NLMSG_HDRLEN, sole), sole === data.length ? data : data.subarray(0, sole));
      continue;
    }
    const { messages, error } = decodeDatagram(data);
    for (const m of messages) {
      const start = m.payload.byteOffset - data.byteOffset - NLMSG_HDRLEN;
      sink.message(d, m.header, m.payload, data.subarray(start, start + NLMSG_HDRLEN + m.payload.length));
    }
    if (d.truncated) sink.reject(d, 'ETRUNC', error ? error.offset : data.length);
    else if (error) sink.reject(d, error.code, error.offset);
  }
}

export interface Ack {
  /** Positive errno; 0 is a plain acknowledgement. */
  errno: number;
  /** 'ECONNREFUSED', … ; null for 0. */
  code: string | null;
  /** Header of the request being answered, when the kernel echoed it. */
  request: NlMsgHeader | null;
}

/** Decodes an NLMSG_ERROR payload: int error (negative errno) + the request's header. */
export function decodeAck(payload: Buffer): Ack | CodecError {
  if (payload.length < 4) {
    return new CodecError('ETOOSHORT', 0, `NLMSG_ERROR payload of ${payload.length} bytes, needs at least 4`);
  }
  // `|| 0` turns the -0 of an ok ack into 0.
  const errno = -payload.readInt32LE(0) || 0;
  const request = payload.length >= 4 + NLMSG_HDRLEN ? decodeHeader(payload, 4) : null;
  return { errno, code: errno === 0 ? null : errnoCode(errno), request };
}

/** Encodes an NLMSG_ERROR payload as the kernel's netlink_ack does (header only, no extack). */
export function encodeAckPayload(errno: number, request: NlMsgHeader): Buffer {
  const out = Buffer.alloc(4 + NLMSG_HDRLEN);
  out.writeInt32LE(-errno, 0);
  out.writeUInt32LE(request.length, 4);
  out.writeUInt16LE(request.type, 8);
  out.writeUInt16LE(request.flags, 10);
  out.writeUInt32LE(request.seq, 12);
  out.writeUInt32LE(request.pid, 16);
  return out;
}

export function flagNames(flags: number): string[] {
  const names: string[] = [];
  let known = 0;
  for (const [bit, name] of FLAG_NAMES) {
    known |= bit;
    if (flags & bit) names.push(name);
  }
  const rest = flags & ~known & 0xffff;
  if (rest) names.push(`0x${rest.toString(16)}`);
  return names;
}

export function controlTypeName(type: number): string | null {
  return CONTROL_TYPE_NAMES[type] ?? null;
}

const ERRNO_CODES: ReadonlyMap<number, string> = new Map(Object.entries(osConstants.errno).map(([code, n]) => [n as number, code]));

/** 111 → 'ECONNREFUSED'; unknown numbers → 'ERRNO_<n>'. */
export function errnoCode(errno: number): string {
  return ERRNO_CODES.get(Math.abs(errno)) ?? `ERRNO_${Math.abs(errno)}`;
}

function checkU16(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${field} must be an integer in 0..65535, got ${value}`);
  }
}

function checkU32(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${field} must be an integer in 0..4294967295, got ${value}`);
  }
}

// Runs of netlink messages for NATS (publisher.ts says why): consecutive
// messages of one group and one sender, copied back to back as in a netlink
// receive buffer, each at NLMSG_ALIGN of the one before with zeroed padding,
// delimited by its own nlmsg_len. Messages are copied into a shared slab as
// they arrive, so no object per message outlives its delivery; a run points
// into its slab, which lives on until its last run is released.

import { align } from '../../addon/codec';
import type { RxMessage } from '../netlink/message';
import { HEADERS } from './subjects';

/** Runs are copied into slabs of this size; a run ends where its slab does. */
const SLAB_BYTES = 256 * 1024;

/** One NATS message to be: a run of one or more netlink messages. */
export interface RunEntry {
  kind: 'run';
  /** The first message's number; the others follow it. */
  n: number;
  count: number;
  /** Their accounted bytes (the publisher's count per message). */
  size: number;
  group: number;
  portId: number;
  /** The first message's cursor. */
  cursor: string | undefined;
  /** A message its nlmsg_len delimits (not cut by the read buffer): only those share a run. */
  whole: boolean;
  slab: Buffer;
  start: number;
  /** Bytes from start (the last message unpadded). */
  bytes: number;
}

export class RunWriter {
  private open: RunEntry | null = null;
  private slab: Buffer = Buffer.allocUnsafe(SLAB_BYTES);
  private used = 0;

  /**
   * Adds message n (accounted `size`) to the open run when it can join it:
   * same group and sender, both whole, the run then at most `maxBytes` long
   * and `maxSize` accounted, in the same slab. Otherwise the open run ends and
   * the message opens the next one. Returns the run that ended, if one did.
   */
  add(m: RxMessage, n: number, size: number, maxBytes: number, maxSize: number): RunEntry | null {
    const len = m.bytes.length;
    const whole = !m.truncated && m.header.length === len;
    const r = this.open;
    if (r !== null && r.whole && whole && r.group === m.group && r.portId === m.portId) {
      const at = r.start + align(r.bytes);
      const end = at + len;
      if (end - r.start <= maxBytes && end <= r.slab.length && r.size + size <= maxSize) {
        // At most three bytes of padding, and a TypedArray set: Buffer's fill
        // and copy validate their arguments on every call, which cost this
        // copy 3× (per message, on the publishing hot path; bench/README.md).
        for (let i = r.start + r.bytes; i < at; i++) r.slab[i] = 0;
        r.slab.set(m.bytes, at);
        r.bytes = end - r.start;
        r.count++;
        r.size += size;
        this.used = end;
        return null;
      }
    }
    const ended = this.close();
    if (align(this.used) + len > this.slab.length) {
      // A new slab; the old one lives on in the runs that point into it until they are released.
      this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, len));
      this.used = 0;
    }
    const start = align(this.used);
    this.slab.set(m.bytes, start);
    this.used = start + len;
    this.open = {
      kind: 'run',
      n,
      count: 1,
      size,
      group: m.group,
      portId: m.portId,
      cursor: m.cursor,
      whole,
      slab: this.slab,
      start,
      bytes: len,
    };
    return ended;
  }

  /** Ends the open run; returns it (null when none is open). */
  close(): RunEntry | null {
    const r = this.open;
    this.open = null;
    return r;
  }
}

/** A run's bytes, as published. */
export function runData(r: RunEntry): Buffer {
  return r.slab.subarray(r.start, r.start + r.bytes);
}

/** JetStream's dedupe header (its name is JetStream's, not ours to shorten). */
const MSG_ID_HEADER = 'Nats-Msg-Id';

/**
 * A run's headers: its first message's n, the count when more than one, the
 * sender, the first's cursor, and with JetStream Nats-Msg-Id <prefix><n>.
 */
export function runHeaders(r: RunEntry, msgIdPrefix: string | null): [string, string][] {
  const h: [string, string][] = [
    [HEADERS.number, String(r.n)],
    [HEADERS.group, String(r.group)],
    [HEADERS.port, String(r.portId)],
  ];
  if (r.count > 1) h.push([HEADERS.count, String(r.count)]);
  if (r.cursor !== undefined) h.push([HEADERS.cursor, r.cursor]);
  if (msgIdPrefix !== null) h.push([MSG_ID_HEADER, msgIdPrefix + r.n]);
  return h;
}

// A fleet frame's cursor (--nats-jetstream on): the id of the JetStream
// stream it was read from, "-", and the stream sequence of the NATS message
// that carried it, ".i" inside a run. Written by watch.ts, read back from
// ?since= and Last-Event-ID (http/fleet_request.ts).
//
// Why an id: a sequence number alone names a place in any stream. After the
// stream was deleted and created again (the stream keeper does it), or with
// a cursor of another fleet's stream, it resumed at that number in a stream
// that never held the client's messages, skipping or repeating some with no
// gap told. The id changes with the stream as a local cursor's epoch changes
// with the daemon's run (netlink/ring.ts).

import { createHash } from 'node:crypto';

/**
 * A fleet frame's cursor, read back: the stream it names, the stream
 * sequence of the NATS message that carried the frame, and, when that
 * message held a run of several netlink messages and the frame was not its
 * last, ".i" (the i-th of the run, from 1). "S" is read as "all of S seen",
 * "S.i" as "the first i of S seen".
 */
export interface ReplayFrom {
  /** The stream's id (streamId); null for a bare "S" or "S.i" of earlier versions, checked by position only. */
  stream: string | null;
  /** The first stream sequence to read. */
  seq: number;
  /** Netlink messages of that first stream message the client already has. */
  skip: number;
}

/**
 * A stream's id in its cursors: 8 hex digits of sha256(name "\n" created).
 * `created` is the creation time JetStream's STREAM.INFO gives (RFC 3339,
 * nanoseconds on nats-server 2.9): a stream deleted and created again under
 * the same name gets another; the name tells apart two fleets' streams.
 */
export function streamId(name: string, created: string): string {
  return createHash('sha256').update(`${name}\n${created}`).digest('hex').slice(0, 8);
}

/** A frame's cursor as cursorOf() writes it ("ID-S", "ID-S.i"), or a bare "S", "S.i" of earlier versions. */
const FLEET_CURSOR = /^(?:([0-9a-f]{8})-)?([0-9]{1,15})(?:\.([0-9]{1,6}))?$/;

/** The cursor of the i-th (from 0) of the k messages a stream message S of stream `stream` carried. */
export function cursorOf(stream: string, seq: number, i: number, k: number): string {
  return i === k - 1 ? `${stream}-${seq}` : `${stream}-${seq}.${i + 1}`;
}

/** Reads a fleet cursor (?since=, Last-Event-ID); null when it is not one. */
export function parseFleetCursor(text: string): ReplayFrom | null {
  const m = FLEET_CURSOR.exec(text);
  if (!m) return null;
  const stream = m[1] ?? null;
  const seq = Number(m[2]);
  if (m[3] === undefined) return { stream, seq: seq + 1, skip: 0 };
  const skip = Number(m[3]);
  // Stream sequences start at 1: "0" (nothing seen) is a cursor, "0.i" is none.
  return skip === 0 || seq === 0 ? null : { stream, seq, skip };
}

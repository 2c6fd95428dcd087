// A fleet frame's cursor (--nats-jetstream on): the stream sequence of the
// NATS message that carried it, ".i" inside a run. Written by watch.ts, read
// back from ?since= and Last-Event-ID (http/fleet_request.ts).

/**
 * A fleet frame's cursor, read back: the stream sequence of the NATS message
 * that carried the frame, and, when that message held a run of several
 * netlink messages and the frame was not its last, ".i" (the i-th of the run,
 * from 1). "S" is read as "all of S seen", "S.i" as "the first i of S seen".
 */
export interface ReplayFrom {
  /** The first stream sequence to read. */
  seq: number;
  /** Netlink messages of that first stream message the client already has. */
  skip: number;
}

/** A frame's cursor as cursorOf() writes it: digits, or digits "." digits. */
const FLEET_CURSOR = /^([0-9]{1,15})(?:\.([0-9]{1,6}))?$/;

/** The cursor of the i-th (from 0) of the k messages a stream message S carried. */
export function cursorOf(seq: number, i: number, k: number): string {
  return i === k - 1 ? String(seq) : `${seq}.${i + 1}`;
}

/** Reads a fleet cursor (?since=, Last-Event-ID); null when it is not one. */
export function parseFleetCursor(text: string): ReplayFrom | null {
  const m = FLEET_CURSOR.exec(text);
  if (!m) return null;
  const seq = Number(m[1]);
  if (m[2] === undefined) return { seq: seq + 1, skip: 0 };
  const skip = Number(m[2]);
  // Stream sequences start at 1: "0" (nothing seen) is a cursor, "0.i" is none.
  return skip === 0 || seq === 0 ? null : { seq, skip };
}

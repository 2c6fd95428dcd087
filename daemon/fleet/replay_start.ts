// Where a /fleet stream's reading of the JetStream stream starts
// (--nats-jetstream on), and what the client is told first: the client's
// cursor, or the watcher's own place when it reads again on a new NATS
// connection, set against the stream as the reader finds it. Pure: watch.ts
// asks, and tells the gap.

import type { ReplayFrom } from './cursor';

/** The stream as a reader finds it when it opens it. */
export interface StreamBounds {
  /** Its id in cursors (cursor.ts streamId). */
  id: string;
  /** First and last sequence held: first > last when empty (0 and 0 before anything was stored). */
  first: number;
  last: number;
}

export interface ReplayStart {
  /** The first stream sequence to read. */
  start: number;
  /** A cursor inside the run of message `start`: the messages of it already seen. */
  skipIn: ReplayFrom | null;
  /** The fields of a `gap` frame to tell before reading, or null. */
  gap: Record<string, unknown> | null;
}

/** Where to read from `from` on (null: from the stream's end), and the gap to tell first. */
export function replayStart(b: StreamBounds, from: ReplayFrom | null): ReplayStart {
  if (from === null) return { start: b.last + 1, skipIn: null, gap: null };
  // Sequences start at 1: a stream never written to says first 0.
  const first = Math.max(1, b.first);
  if (from.stream !== null && from.stream !== b.id) {
    // Its numbers are another stream's: no count of what was lost, and no place in this one but its start
    // (as a local cursor of another epoch replays all the ring holds).
    return placeUnknown(
      from,
      first,
      `the cursor names another stream (${from.stream}; this one is ${b.id}): deleted and created again, or another fleet's; read from its first message`,
    );
  }
  const skipIn = from.skip > 0 ? from : null;
  // "S.i" names a message S the stream holds; S past its last is another stream's (as is a plain cursor past its end).
  if (from.seq > b.last + 1 || (skipIn !== null && from.seq > b.last)) {
    // A place this stream never issued: a bare cursor of earlier versions (this stream re-created, or another fleet's).
    return placeUnknown(from, b.last + 1, 'since is past the end of the stream');
  }
  if (from.seq < b.first) {
    // Discarded by the stream's limits (bytes, age) before the client came back.
    return {
      start: b.first,
      skipIn: null,
      gap: { reason: 'stream', host: null, lost: b.first - from.seq, since: from.seq - 1, resumeFrom: b.first },
    };
  }
  return { start: from.seq, skipIn, gap: null };
}

/** A cursor with no place in this stream: a `stream` gap with no count (`detail` says why), then reading at `start`. */
function placeUnknown(from: ReplayFrom, start: number, detail: string): ReplayStart {
  return { start, skipIn: null, gap: { reason: 'stream', host: null, lost: null, since: from.seq - 1, resumeFrom: start, detail } };
}

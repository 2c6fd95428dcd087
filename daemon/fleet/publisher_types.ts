// The publisher's interfaces (publisher.ts): what it needs of a NATS
// connection, what it is given and what it tells; and the entries of its
// queue. Kept apart so the queue's file holds its logic only.

import { NATS_DROP_REASONS } from '../metrics';
import type { RunEntry } from './runs';

export const DROP_REASONS = NATS_DROP_REASONS;
export type DropReason = (typeof DROP_REASONS)[number];

/** What the publisher needs of a NATS connection. */
export interface Link {
  /** Hands a message to the client; throws when it refuses it (over max_payload, closed). */
  publish(subject: string, data: Uint8Array, headers: readonly (readonly [string, string])[] | null): void;
  /** Resolves once the server has read everything published before it; rejects when the connection goes first. */
  flush(): Promise<void>;
  /** The server's max_payload, once known. */
  maxPayload(): number | null;
}

export interface EventEntry {
  kind: 'event';
  /** Filled in until it is published: overruns that follow each other add up in one notice. */
  event: Record<string, unknown>;
}

export type Entry = EventEntry | RunEntry;

export interface DropEpisode {
  count: number;
  from: number;
  to: number;
  reasons: Partial<Record<DropReason, number>>;
}

export interface PublisherCounts {
  published: number;
  dropped: Record<DropReason, number>;
  /** Messages held here (waiting or unconfirmed) and their accounted bytes. */
  heldMessages: number;
  heldBytes: number;
}

export interface PublisherOptions {
  host: string;
  groups: readonly number[];
  bufferBytes: number;
  /** Bytes handed to the client and not yet confirmed by a flush (default: a quarter of the buffer, at most 1 MiB). */
  unflushedBytes?: number;
  /**
   * --nats-jetstream on: each message carries Nats-Msg-Id <prefix><n> (the prefix names host and
   * run), so the stream stores a resend after a reconnect once. Off: no such header (each costs throughput).
   */
  msgIdPrefix?: string | null;
  /** This daemon's run (its cursors' epoch): named in its drop notices, whose numbers start at 1 again with each run. */
  run?: string;
  /** Told once per drop episode and per refused message (the caller logs). */
  onDrop?(reason: DropReason, n: number, detail?: string): void;
  /** The least time between two flushes (default FLUSH_INTERVAL_MS; 0: one as soon as the last was answered). */
  flushIntervalMs?: number;
  /** --nats-linger-ms: the least time between two hand-overs to the client (default 0: at the end of every receive batch). */
  lingerMs?: number;
  /** --nats-linger-above: the linger holds only while messages come at least this fast, msg/s (default 0: always). */
  lingerAboveRate?: number;
}

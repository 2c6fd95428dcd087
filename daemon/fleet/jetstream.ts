// Durable replay of the fleet (issue 18, --nats-jetstream on): a JetStream
// stream that keeps the published group subjects, and the ordered consumers
// that read it back for /fleet streams resumed with ?since=.
//
// What the stream captures: nlbridge.*.g.* only. A stream that captured the
// send subject would answer every send request with its own PubAck (seen on
// nats-server 2.9.10: the request never reaches "no responders", the send is
// stored); the events subject is live news and not worth keeping.
//
// The publisher keeps core-publishing (no PubAck awaited per message): the
// server stores a core-published message of a captured subject all the same,
// and dedupes by its Nats-Msg-Id header within the duplicate window, so the
// publisher's resend after a reconnect (at-least-once, publisher.ts) is
// stored once.
//
// Only what nats-server 2.9 knows is sent (the Debian build): 2.9 ignores a
// field it does not know, so a 2.10 feature (an array of filter subjects, …)
// would fail silently there instead of being refused.

import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamManager, JsMsg, StreamConfig } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { streamId } from './cursor';
import type { StreamBounds } from './replay_start';
import { judgeStream, type StreamJudgement } from './stream_config';
import { SUBJECT_ROOT } from './subjects';

/** Every group of every host: the stream's one subject, and the one filter of its consumers. */
export const STREAM_SUBJECT = `${SUBJECT_ROOT}.*.g.*`;

/** JetStream's error codes the stream check answers itself. */
const STREAM_NAME_IN_USE = 10058;
const STREAM_NOT_FOUND = 10059;
const SUBJECTS_OVERLAP = 10065;

export interface StreamSettings {
  name: string;
  maxBytes: number;
  maxAgeS: number;
  duplicateWindowS: number;
}

/** The stream's state as /status tells it. */
export interface JetStreamStatus {
  stream: string;
  state: 'pending' | 'ready' | 'error';
  /** Why the stream cannot be used (JetStream off on the server, no permission, a configuration it cannot serve with, …). */
  error: string | null;
  /** How the stream differs from the flags (left as it is). */
  warning: string | null;
  /** Why send requests on NATS are not answered (a stream captures the send subject); null while they are. */
  sendError: string | null;
}

const NS_PER_S = 1e9;

function wantedConfig(s: StreamSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: s.name,
    subjects: [STREAM_SUBJECT],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_bytes: s.maxBytes,
    max_age: s.maxAgeS * NS_PER_S,
    duplicate_window: s.duplicateWindowS * NS_PER_S,
    num_replicas: 1,
  };
}

const apiError = (err: unknown, code: number): boolean => err instanceof JetStreamApiError && err.code === code;

/** The JetStream API of a connection; throws when JetStream is off on the server (or not permitted). */
export function manager(c: NatsConnection): Promise<JetStreamManager> {
  return jetstreamManager(c, { timeout: 5000 });
}

/** The stream cannot be created: another stream holds its subject. */
export class StreamConflict extends Error {}

/** What one check of the stream found. */
export interface StreamCheck {
  /** It was absent, and this check created it. */
  created: boolean;
  /** How an existing stream's configuration differs from what nlbridge needs (stream_config.ts). */
  judgement: StreamJudgement;
  /** Streams whose subjects take `sendSubject` (none looked for without one), or why they could not be listed. */
  capturingSend: string[] | Error;
}

/**
 * Creates the stream if absent. An existing stream with another
 * configuration is left as it is and judged (stream_config.ts): several
 * daemons share one stream, and one started with other flags must not
 * rewrite everyone's limits (an operator changes them with `nats stream
 * edit`). With `sendSubject`, also lists the streams that capture it: such a
 * stream answers every send request with its PubAck. Throws what JetStream
 * answers otherwise (no permission, another stream holding the subject).
 */
export async function checkStream(
  jsm: JetStreamManager,
  s: StreamSettings,
  maxPayload: number,
  sendSubject: string | null,
): Promise<StreamCheck> {
  const want = wantedConfig(s);
  let created = false;
  // Read first: a stream that exists (the usual case, every STREAM_CHECK_MS) costs one request and no write permission.
  let have = await jsm.streams.info(s.name).then(
    (i) => i.config,
    (err: unknown) => {
      if (apiError(err, STREAM_NOT_FOUND)) return null;
      throw err;
    },
  );
  if (have === null) {
    try {
      have = (await jsm.streams.add(want)).config;
      created = true;
    } catch (err) {
      if (apiError(err, SUBJECTS_OVERLAP)) {
        const others = await streamsOf(jsm, STREAM_SUBJECT).catch(() => []);
        throw new StreamConflict(
          `stream ${s.name} cannot be created: ${others.length > 0 ? `stream ${others.join(', ')} holds` : 'another stream holds'} ${STREAM_SUBJECT} (${(err as Error).message})`,
        );
      }
      // Created meanwhile by another daemon (with other flags): judged as found.
      if (!apiError(err, STREAM_NAME_IN_USE)) throw err;
      have = (await jsm.streams.info(s.name)).config;
    }
  }
  const judgement = judgeStream(have, want, STREAM_SUBJECT, maxPayload);
  // Not listed (no permission on $JS.API.STREAM.NAMES, a daemon given the rights of an older systemd/README.md): the stream itself is still fine.
  const capturingSend = sendSubject === null ? [] : await streamsOf(jsm, sendSubject).catch((err: unknown) => err as Error);
  return { created, judgement, capturingSend };
}

/** The streams whose subjects take `subject` (the server's STREAM.NAMES with a subject filter, nats-server 2.9 has it). */
async function streamsOf(jsm: JetStreamManager, subject: string): Promise<string[]> {
  const names: string[] = [];
  for await (const name of jsm.streams.names(subject)) names.push(name);
  return names;
}

/** One watcher's reading of the stream; stop() deletes its consumer. */
export interface Replay {
  stop(): void;
}

export interface ReplayHandlers {
  message(m: JsMsg): void;
  /** Loss the consumer cannot recover (its consumer or stream gone). */
  trouble(detail: string): void;
}

/** The stream's id (its name and creation time: another stream of the same name has another), first and last sequence. */
export async function streamBounds(c: NatsConnection, name: string): Promise<StreamBounds> {
  const jsm = await jetstreamManager(c, { timeout: 5000, checkAPI: false });
  const { state, created } = await jsm.streams.info(name);
  return { id: streamId(name, created), first: state.first_seq, last: state.last_seq };
}

/**
 * An ordered consumer from stream sequence `start` on: ephemeral, in memory,
 * no acks; the client re-creates it past the last message it delivered when
 * it misses heartbeats or a sequence, so what it hands over is in order and
 * without repeats.
 *
 * Its filter is the stream's whole subject, never a host's: nats-server 2.9
 * takes ONE filter_subject (the client sends a string as filter_subject, an
 * array as filter_subjects, which 2.9 drops silently and then delivers
 * everything), and with the whole subject every stream sequence reaches us,
 * so a jump in it is loss (watch.ts tells it) and not another host's message.
 * Hosts and groups are selected by the watcher.
 */
export async function startReplay(c: NatsConnection, stream: string, start: number, on: ReplayHandlers): Promise<Replay> {
  const js = jetstream(c, { timeout: 5000, checkAPI: false });
  const consumer = await js.consumers.get(stream, {
    filter_subjects: STREAM_SUBJECT,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: Math.max(1, start),
  });
  const messages: ConsumerMessages = await consumer.consume({ callback: (m) => on.message(m) });
  void (async () => {
    for await (const s of messages.status()) {
      if (s.type === 'stream_not_found' || s.type === 'consumer_deleted') on.trouble(`JetStream ${s.type.replace(/_/g, ' ')}`);
    }
  })().catch(() => undefined);
  return {
    stop() {
      // Closing only stops reading: the server keeps an ordered consumer for
      // its inactive threshold (5 minutes, set by the client) after its reader
      // left, so a client reconnecting every second kept ~300 of them. Deleted
      // here (the permission is in systemd/README.md's JetStream block); one
      // the daemon could not delete (killed, disconnected) still expires.
      void messages
        .close()
        .then(() => consumer.delete())
        .catch(() => undefined);
    },
  };
}

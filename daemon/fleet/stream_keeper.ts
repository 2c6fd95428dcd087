// Keeping the fleet's JetStream stream (--nats-jetstream on) and telling its
// state (/status fleet.jetstream, nlbridge_nats_jetstream_ready).
//
// The stream is checked at each (re)connect, every STREAM_CHECK_MS while
// connected, and 2 s after a /fleet reader sees its consumer or the stream
// go. Why the periodic check: the stream can be deleted or edited
// under a running daemon (`nats stream rm`, `nats stream edit`), and nothing
// else tells it: an outside audit found a deleted stream still "ready" in
// /status, never created again, so nothing published was kept. A check is
// one STREAM.INFO request (and one STREAM.NAMES with --nats-send on) while
// all is well; a missing stream is created as at start.
//
// Each change is logged once, not at every check.

import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import {
  STREAM_SUBJECT,
  StreamConflict,
  checkStream,
  manager,
  startReplay,
  streamBounds,
  type JetStreamStatus,
  type StreamSettings,
} from './jetstream';
import type { FleetSettings } from './settings';
import type { ReplayFrom, WatchReplay } from './watch';

/** How often the stream is checked while connected. */
export const STREAM_CHECK_MS = 10_000;
/** How long after a reader saw the stream go it is checked (see checkSoon). */
const LOST_CHECK_MS = 2_000;
/** NATS's default max_payload: what a message may be when the server has not said. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

export class StreamKeeper {
  readonly status: JetStreamStatus;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<void> | null = null;
  /** Asked again while a check ran: the stream may have changed since it read it. */
  private again = false;
  private latest: NatsConnection | null = null;
  private soon: NodeJS.Timeout | null = null;
  /** The /fleet readers of the stream, told when a check finds it gone. */
  private readonly readers = new Set<() => void>();
  /** The stream was found or created once: a later creation means it was gone. */
  private known = false;
  private jsm: { c: NatsConnection; m: Promise<JetStreamManager> } | null = null;
  /** The streams capturing the send subject could not be listed at the last check (said once). */
  private unlisted = false;

  /**
   * `sendSubject`: this daemon's send subject when it answers send requests
   * (--nats-send on), to find a stream that captures it. `connection`: the
   * NATS connection while connected, else null.
   */
  private readonly settings: StreamSettings;

  constructor(
    fleet: Pick<FleetSettings, 'natsStream' | 'natsStreamMaxBytes' | 'natsStreamMaxAgeS' | 'natsStreamDuplicateWindowS'>,
    private readonly sendSubject: string | null,
    private readonly log: pino.Logger,
    private readonly connection: () => NatsConnection | null,
  ) {
    this.settings = {
      name: fleet.natsStream,
      maxBytes: fleet.natsStreamMaxBytes,
      maxAgeS: fleet.natsStreamMaxAgeS,
      duplicateWindowS: fleet.natsStreamDuplicateWindowS,
    };
    this.status = {
      stream: fleet.natsStream,
      state: 'pending',
      error: null,
      warning: null,
      sendError: null,
    };
    this.timer = setInterval(() => {
      const c = connection();
      if (c !== null && this.running === null) void this.check(c);
    }, STREAM_CHECK_MS).unref();
  }

  /** Checks the stream (creates it if absent); resolves once no check is running or asked. Never rejects. */
  check(c: NatsConnection): Promise<void> {
    this.latest = c;
    this.again = true;
    this.running ??= (async () => {
      try {
        while (this.again) {
          this.again = false;
          await this.checkOnce(this.latest!);
        }
      } finally {
        this.running = null;
      }
    })();
    return this.running;
  }

  /** Why NATS send requests are not answered now, or null. */
  sendRefusal(): string | null {
    return this.status.sendError;
  }

  /** How a /fleet stream reads the stream; null: from core subscriptions (a live stream while the stream is in error). */
  replay(since: ReplayFrom | null): WatchReplay | null {
    // A resume still tries (and tells why it cannot).
    if (since === null && this.status.state === 'error') return null;
    const name = this.settings.name;
    return {
      since,
      bounds: (c) => streamBounds(c, name),
      open: async (c, start, on) => {
        const reading = await startReplay(c, name, start, on);
        // Its consumer may miss the stream's deletion (no pull waiting when it went): a check that finds the stream gone tells it.
        const gone = (): void => on.trouble('JetStream stream deleted');
        this.readers.add(gone);
        return {
          stop: () => {
            this.readers.delete(gone);
            reading.stop();
          },
        };
      },
      lost: () => this.checkSoon(),
    };
  }

  close(): void {
    clearInterval(this.timer);
    if (this.soon !== null) clearTimeout(this.soon);
  }

  /**
   * A reader saw its consumer or the stream go: checked LOST_CHECK_MS later,
   * not at once. nats-server 2.9 tells a consumer deleted, then forgets the
   * stream, then removes its files; a stream of the same name created in
   * between lost its files to that removal and stored nothing more (seen in
   * tests/host/fleet_jetstream_lost.test.ts, 2 runs in 25).
   */
  private checkSoon(): void {
    if (this.soon !== null) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      const c = this.connection();
      if (c !== null) void this.check(c);
    }, LOST_CHECK_MS).unref();
  }

  private tellReaders(): void {
    for (const gone of [...this.readers]) gone();
  }

  private managerOf(c: NatsConnection): Promise<JetStreamManager> {
    if (this.jsm?.c !== c) {
      const m = manager(c);
      // Not kept when it failed (JetStream off): the next check asks again.
      m.catch(() => {
        if (this.jsm?.m === m) this.jsm = null;
      });
      this.jsm = { c, m };
    }
    return this.jsm.m;
  }

  private async checkOnce(c: NatsConnection): Promise<void> {
    const { status: js, log, settings } = this;
    const stream = settings.name;
    try {
      const { created, judgement, capturingSend } = await checkStream(
        await this.managerOf(c),
        settings,
        c.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
        this.sendSubject,
      );
      if (created && this.known) {
        log.warn({ stream }, 'JetStream stream was gone (deleted?): created again; what was published while it was gone is not in it');
        this.tellReaders();
      }
      this.known = true;
      this.tellSend(capturingSend);
      const warning = judgement.warnings.length > 0 ? `stream ${stream} exists with ${judgement.warnings.join(', ')}; left as it is` : null;
      if (judgement.errors.length > 0) {
        const error = `stream ${stream} exists with ${judgement.errors.join('; ')}; left as it is, and not used: /fleet streams go on live, ?since= cannot be served (fix it with nats stream edit, or delete it and the daemon creates it anew)`;
        if (js.error !== error) log.error({ stream, warning }, error);
        Object.assign(js, { state: 'error', error, warning });
        return;
      }
      if (js.state !== 'ready' || js.warning !== warning) {
        log.info({ stream, subject: STREAM_SUBJECT, warning }, 'JetStream stream ready: /fleet streams resume with ?since=');
        if (warning !== null) log.warn({ stream }, warning);
      }
      Object.assign(js, { state: 'ready', error: null, warning });
    } catch (err) {
      if (err instanceof StreamConflict) this.tellReaders();
      const error = (err as Error).message;
      if (js.error !== error)
        log.error(
          { err, stream },
          err instanceof StreamConflict
            ? 'JetStream stream unavailable: /fleet streams go on live, ?since= cannot be served'
            : 'JetStream stream unavailable (JetStream off on the server? no permission on $JS.API.>?): /fleet streams go on live, ?since= cannot be served',
        );
      Object.assign(js, { state: 'error', error, warning: null });
    }
  }

  /** A stream capturing the send subject would answer each send request with its PubAck: sends are not carried out while one does. */
  private tellSend(capturing: string[] | Error): void {
    const subject = this.sendSubject;
    if (capturing instanceof Error) {
      // Unknown: sends are answered (as before this check existed), and the doubt said once.
      if (!this.unlisted)
        this.log.warn(
          { err: capturing, subject },
          'cannot list the streams that capture the send subject (no permission on $JS.API.STREAM.NAMES?): send requests on NATS are answered regardless',
        );
      this.unlisted = true;
      capturing = [];
    } else this.unlisted = false;
    const sendError =
      capturing.length === 0 || subject === null
        ? null
        : `stream ${capturing.join(', ')} captures ${subject}: send requests on NATS are not carried out while it does (the stream answers each with its PubAck and keeps it, so a requester could not tell a send done); take the subject out of it`;
    if (sendError === this.status.sendError) return;
    if (sendError !== null) this.log.error({ streams: capturing, subject }, sendError);
    else this.log.info({ subject }, 'no stream captures the send subject any more: send requests on NATS are answered again');
    this.status.sendError = sendError;
  }
}

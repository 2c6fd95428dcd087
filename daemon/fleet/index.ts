// The fleet: this daemon's connection to NATS (issue 18). Loaded by main.ts
// only when --nats is set, so a daemon without it loads none of this nor the
// NATS client. Imports nothing HTTP: /status and /metrics read fleetStatus().
//
// The connection is never awaited by the daemon's start: the bridge serves
// from its first second whether NATS is up, down or slow, and the client
// dials forever in the background (maxReconnectAttempts -1, a backoff from
// 250 ms doubling to 5 s, with jitter).

import * as os from 'node:os';
import * as nats from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import type { Subscriber } from '../netlink/message';
import { BACKOFF_MAX_MS, DialPacing, firstDialWait } from './dial_pacing';
import { causeText, connectOptions } from './connect_options';
import { boundWriteQueue, WRITE_QUEUE_MAX } from './write_queue';
import { SendSubject, type SendHandler } from './send_subject';
import { FleetPublisher, type DropReason, type Link, type PublisherCounts } from './publisher';
import { FleetWatcher, type FleetSink, type ReplayFrom, type WatchReplay, type WatchSelection } from './watch';
import type { JetStreamStatus } from './jetstream';
import { HostClaim, type HostClaimStatus } from './host_claim';
import { claimSubject, eventsSubject, groupSubject, sendSubject } from './subjects';
import type { CheckedFleet, FleetSettings } from './settings';

// The settings are this room's too: main.ts loads the fleet as one module, only with --nats.
export { checkFleetSettings, FleetConfigError, type CheckedFleet, type FleetSettings } from './settings';

export type { SendHandler } from './send_subject';

/** What the fleet needs of the bus: the same two calls a WebSocket stream makes, and the epoch of its cursors. */
export interface FleetBus {
  subscribe(sub: Subscriber): void;
  unsubscribe(sub: Subscriber): void;
  readonly ring: { readonly epoch: string };
}

export interface FleetStatus {
  connected: boolean;
  url: string | null;
  host: string;
  groups: number[];
  reconnects: number;
  published: number;
  dropped: number;
  droppedBy: Record<DropReason, number>;
  heldMessages: number;
  heldBytes: number;
  /** --nats-jetstream on: the stream's state; null when off. */
  jetstream: JetStreamStatus | null;
  /** Whether this daemon holds its --host-id on the bus, and who else claims it (host_claim.ts). */
  hostClaim: HostClaimStatus;
}

/** One /fleet stream's hold on NATS: its subscriptions go with close(). */
export interface FleetWatch {
  close(): void;
}

export interface Fleet {
  status(): FleetStatus;
  /**
   * Feeds `sink` with the selected hosts' messages of its groups, and tells it of loss (daemon/fleet/watch.ts).
   * `since` (--nats-jetstream on only): where in the stream the client resumes (watch.ts parseFleetCursor).
   */
  watch(selection: WatchSelection, sink: FleetSink, since?: ReplayFrom | null): FleetWatch;
  /** Whether ?since= can be served (--nats-jetstream on). */
  readonly replayable: boolean;
  /** sendAnswers: send requests answered, by the answer's HTTP status. */
  counts(): PublisherCounts & {
    connected: boolean;
    reconnects: number;
    sendAnswers: Record<string, number>;
    jetstreamReady: boolean | null;
    hostIdConflict: boolean;
  };
  close(): Promise<void>;
}

/**
 * Starts the fleet: subscribes the publisher to the bus at once (messages are
 * held while NATS is not there yet) and dials NATS in the background.
 */
export function startFleet(
  settings: FleetSettings,
  checked: CheckedFleet,
  bus: FleetBus,
  log: pino.Logger,
  send: SendHandler | null = null,
): Fleet {
  const { host, groups, tls } = checked;
  const sendRequests =
    send && settings.natsSend === 'on' ? new SendSubject(send, log, sendSubject(host), () => keeper?.sendRefusal() ?? null) : null;
  let connected = false;
  let reconnects = 0;
  /** First-connection dials that failed in a row (the daemon paces those itself). */
  let failedDials = 0;
  const pacing = new DialPacing();
  let closing = false;
  let nc: NatsConnection | null = null;
  /** Permission violations the server reported, by operation and subject. */
  const refusals = new Map<string, number>();
  const watchers = new Set<FleetWatcher>();
  const tellWatchers = (detail: string): void => {
    for (const w of watchers) w.disconnected(detail);
  };

  // --nats-jetstream: the stream is made sure of at each (re)connect, then kept (stream_keeper.ts); watchers attach after it.
  const jetstreamOn = settings.natsJetstream === 'on';
  // Loaded only with --nats-jetstream on: a fleet without it loads no JetStream client.
  const keeper = jetstreamOn
    ? // eslint-disable-next-line @typescript-eslint/no-require-imports
      new (require('./stream_keeper') as typeof import('./stream_keeper')).StreamKeeper(
        settings,
        send && settings.natsSend === 'on' ? sendSubject(host) : null,
        log,
        () => (connected ? nc : null),
      )
    : null;
  const js = keeper?.status ?? null;
  let ensuring = false;
  const prepareStream = async (c: NatsConnection): Promise<void> => keeper?.check(c);
  const replayFor = (since: ReplayFrom | null): WatchReplay | null => keeper?.replay(since) ?? null;

  /**
   * This run of the daemon, the epoch of its cursors (random per start, the `c` header's first part):
   * in Nats-Msg-Id and drop notices (n starts at 1 again after a restart), and in its host id claim.
   */
  const run = bus.ring.epoch;
  const publisher = new FleetPublisher({
    host,
    groups,
    bufferBytes: settings.natsBufferBytes,
    lingerMs: settings.natsLingerMs,
    lingerAboveRate: settings.natsLingerAbove,
    // host, this run, n
    msgIdPrefix: settings.natsJetstream === 'on' ? `${host}-${run}-` : null,
    run,
    onDrop: (reason, n, detail) =>
      // host-id: the claim said why (host_claim.ts), once.
      reason !== 'host-id' &&
      log.warn(
        { reason, n, detail, bufferBytes: settings.natsBufferBytes },
        reason === 'buffer'
          ? 'NATS buffer full: messages dropped (counted in nlbridge_nats_dropped_total, told on the events subject)'
          : 'a message over the NATS max_payload was dropped',
      ),
  });
  if (groups.length > 0) bus.subscribe(publisher);

  // Publishing and answering sends need the connection and the host id (host_claim.ts).
  const claim = new HostClaim(
    claimSubject(host),
    { run, startedAt: Date.now(), hostname: os.hostname(), pid: process.pid },
    log,
    (holding) => {
      const c = nc;
      publisher.standAside(!holding);
      if (holding && c !== null && connected) {
        sendRequests?.attach(c);
        publisher.linkUp(linkOf(c));
      } else sendRequests?.detach();
    },
  );

  const linkOf = (c: NatsConnection): Link => ({
    publish(subject, data, fields) {
      if (fields === null) {
        c.publish(subject, data);
        return;
      }
      const h = nats.headers();
      for (const [k, v] of fields) h.set(k, v);
      c.publish(subject, data, { headers: h });
    },
    flush: () => c.flush(),
    maxPayload: () => c.info?.max_payload ?? null,
  });

  const watch = async (c: NatsConnection): Promise<void> => {
    for await (const s of c.status()) {
      switch (s.type) {
        case 'disconnect':
          connected = false;
          publisher.linkDown();
          tellWatchers('disconnected from the NATS server: messages published meanwhile are lost to this daemon');
          log.warn(
            { server: s.server, held: publisher.counts().heldMessages },
            'NATS disconnected: holding messages (up to --nats-buffer-bytes) and reconnecting',
          );
          break;
        case 'reconnect':
          connected = true;
          reconnects++;
          pacing.connected();
          log.info({ server: s.server, reconnects, held: publisher.counts().heldMessages }, 'NATS reconnected');
          publisher.serverMaxPayload(c.info?.max_payload);
          if (claim.holding()) publisher.linkUp(linkOf(c));
          // Another daemon of this host id may have come while this one was away.
          claim.connected(c);
          // A restarted server may have lost the stream (another store): made sure of again.
          void prepareStream(c);
          break;
        case 'error':
          if (s.error instanceof nats.errors.PermissionViolationError) {
            if (claim.refused(s.error.operation, s.error.subject)) break;
            // One -ERR per refused publish: a daemon whose credentials are not its
            // --host-id's gets one per message. Said at the 1st, 2nd, 4th… of each subject.
            const key = `${s.error.operation} ${s.error.subject}`;
            const count = (refusals.get(key) ?? 0) + 1;
            refusals.set(key, count);
            if ((count & (count - 1)) === 0)
              log.warn(
                { operation: s.error.operation, subject: s.error.subject, count },
                'the NATS server refused this daemon a permission (do its credentials belong to its --host-id?): what it publishes there reaches no one, though the server read it and it counts as published',
              );
            break;
          }
          // A server-side slow consumer (-ERR then a close), auth expiry.
          log.warn({ err: s.error }, 'NATS server error');
          // The server's slow-consumer verdict (-ERR, then it cuts us): what it held for us is gone.
          if (/slow consumer/i.test(String(s.error?.message ?? s.error))) tellWatchers('the NATS server found this daemon a slow consumer');
          break;
        case 'slowConsumer':
          for (const w of watchers) if (w.owns(s.sub)) w.notice(`slow consumer: ${s.pending} messages pending in the NATS client`);
          break;
        case 'staleConnection':
          log.warn('NATS connection stale (pings unanswered): reconnecting');
          break;
        case 'ldm':
          log.info({ server: s.server }, 'NATS server entering lame duck mode');
          break;
        default:
          break;
      }
    }
  };

  const dial = (): void => {
    if (closing) return;
    nats.connect(connectOptions(settings.nats, checked, () => pacing.wait())).then(
      (c) => {
        if (closing) {
          void c.close();
          return;
        }
        nc = c;
        connected = true;
        failedDials = 0;
        pacing.connected();
        log.info(
          {
            server: c.getServer(),
            host,
            groups,
            subjects: groups.map((g) => groupSubject(host, g)),
            events: eventsSubject(host),
            maxPayload: c.info?.max_payload,
          },
          'NATS connected',
        );
        watch(c).catch((err: unknown) => log.error({ err }, 'NATS status watch failed'));
        boundWriteQueue(c, (queued) =>
          log.error(
            { queued, max: WRITE_QUEUE_MAX, server: c.getServer() },
            'the NATS server reads nothing of what this daemon writes (its PINGs answered, its publishes): dropping the connection and dialling again',
          ),
        );
        publisher.serverMaxPayload(c.info?.max_payload);
        // Sends are answered while the claim is checked too (a queue group carries each out once).
        if (!claim.standingAside()) sendRequests?.attach(c);
        if (claim.holding()) publisher.linkUp(linkOf(c));
        claim.connected(c);
        ensuring = true;
        void prepareStream(c).finally(() => {
          ensuring = false;
          if (nc === c) for (const w of watchers) w.attach(c);
        });
        void c.closed().then((err) => {
          if (closing) return;
          // Closed by the client itself (an authorization error, …): dial again after a pause.
          connected = false;
          publisher.linkDown();
          nc = null;
          tellWatchers('the NATS connection closed: messages published until it is dialled again are lost to this daemon');
          log.error({ err }, 'NATS connection closed; dialling again');
          setTimeout(dial, BACKOFF_MAX_MS).unref();
        });
      },
      (err: unknown) => {
        if (closing) return;
        failedDials++;
        // Said at the 1st, 2nd, 4th, 8th… failure in a row, with the cause
        // (refused, a certificate not trusted, an authorization error).
        if ((failedDials & (failedDials - 1)) === 0)
          log.warn(
            { cause: causeText(err), servers: settings.nats, attempt: failedDials, tls: tls !== null },
            'NATS connect failed (not connected yet); trying again',
          );
        setTimeout(dial, firstDialWait(failedDials, pacing.jitter)).unref();
      },
    );
  };
  dial();

  const status = (): FleetStatus => {
    const c = publisher.counts();
    return {
      connected,
      url: connected && nc ? nc.getServer() : null,
      host,
      groups,
      reconnects,
      published: c.published,
      dropped: Object.values(c.dropped).reduce((a, b) => a + b, 0),
      droppedBy: c.dropped,
      heldMessages: c.heldMessages,
      heldBytes: c.heldBytes,
      jetstream: js === null ? null : { ...js },
      hostClaim: claim.status(),
    };
  };

  return {
    status,
    replayable: jetstreamOn,
    watch(selection, sink, since = null) {
      const w = new FleetWatcher(selection, sink, replayFor(since));
      watchers.add(w);
      // Not yet connected (or the stream not made sure of yet): attached as soon as it is.
      if (nc !== null && !ensuring) w.attach(nc);
      // Not connected now: what the hosts publish until it is (this host's held messages
      // included, published as it connects) never reaches this stream, and the first
      // message of a host seen after it is its baseline, so the loss is told here
      // (an outside audit found two held messages missed with no gap).
      if (!connected) w.disconnected('not connected to the NATS server: messages published until it is are lost to this stream');
      return {
        close() {
          watchers.delete(w);
          w.close();
        },
      };
    },
    counts: () => ({
      ...publisher.counts(),
      connected,
      reconnects,
      sendAnswers: sendRequests?.answers ?? {},
      jetstreamReady: js === null ? null : js.state === 'ready',
      hostIdConflict: claim.status().other !== null,
    }),
    async close() {
      if (closing) return;
      bus.unsubscribe(publisher);
      publisher.close();
      // What is held gets one second to be confirmed; then the connection goes.
      const c = nc;
      if (c && connected) {
        const deadline = Date.now() + 1000;
        while (publisher.counts().heldMessages > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      }
      closing = true;
      claim.close();
      keeper?.close();
      for (const w of watchers) w.close();
      watchers.clear();
      if (c) await c.close().catch(() => undefined);
      const left = publisher.counts();
      log.info({ published: left.published, dropped: left.dropped, unsent: left.heldMessages }, 'NATS closed');
    },
  };
}

// WebSocket streams: /groups/:mask and /groups?list=2,40.
//
// Works on the raw `ws` socket and its bufferedAmount (the stream wrapper of
// @fastify/websocket stalls at a 16 kB highWaterMark: fastify-websocket#289).

import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket, RawData } from 'ws';
import type { Bus, Endpoint } from '../netlink/bus';
import type { CatchUp } from '../netlink/catch_up';
import type { GapInfo, MalformedInfo, RxMessage, Subscriber } from '../netlink/message';
import type { Config } from '../config';
import { Problem, problemOf } from '../errors';
import { eventFrame, messageFrame, messageTail } from '../frames';
import { GroupSpecError, parseGroupList, parseMaskText, type GroupList } from '../netlink/groups';
import type { Metrics } from '../metrics';
import { checkRead, checkSend, type Scope } from '../scopes';
import { parametersSchema } from '../spec';
import { validateSendRequest } from '../validation';
import { FrameWriter } from '../ws_writer';
import { toSendRequest, type SendBody } from './send';

interface StreamQuery {
  format?: 'json' | 'binary';
  batch?: string;
  unicast?: string;
  list?: string;
  since?: string;
}

const truthy = (v: string | undefined): boolean => v === '1' || v === 'true';

export interface StreamOptions {
  groups: GroupList;
  format: 'json' | 'binary';
  batch: boolean;
  unicast: boolean;
  bufferBytes: number;
  stallMs: number;
  maxPayload: number;
  /** The token's scope (null = unlimited): what the client writes is checked against it. */
  scope?: Scope | null;
  /** Spends one send from the client's credential's budget (throws 429 RATE_LIMITED when spent). */
  spendSend?: () => void;
}

/** How often a client over its backlog is looked at (drain → 'dropped' notice; stall → 1013). */
const DRAIN_CHECK_MS = 25;

/** A client that answers no ping for this long is cut (half-open TCP would hold its subscription forever). */
export const PING_INTERVAL_MS = 30000;

/**
 * A batched frame is sent once it holds this many bytes, even mid-batch: a
 * receive batch can hold thousands of messages, and one multi-megabyte frame
 * makes the client wait for all of it and the daemon build it in one piece.
 */
const BATCH_FRAME_BYTES = 64 * 1024;

export class Stream implements Subscriber {
  readonly groups: GroupList;
  private n = 0;
  private dropped = 0;
  private overSince: number | null = null;
  private batchFrames: string[] = [];
  private batchBytes = 0;
  private drainTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private flushScheduled = false;
  /** Frames leave in one socket write per netlink batch (see ws_writer.ts). */
  private readonly writer: FrameWriter;
  endpoint: Endpoint | null = null;

  constructor(
    readonly ws: WebSocket,
    private readonly opts: StreamOptions,
    private readonly bus: Bus,
    private readonly metrics: Metrics,
    private readonly log: FastifyBaseLogger,
  ) {
    this.groups = opts.groups;
    this.writer = new FrameWriter(ws, (frames) => metrics.wsFrames.inc({}, frames));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  hello(): void {
    const proto = this.bus.protocol;
    this.sendText(
      eventFrame('hello', 0, {
        portId: this.endpoint ? this.endpoint.portId : this.bus.tx.portId,
        bridgePortId: this.bus.tx.portId,
        groups: this.groups,
        protocol: { name: proto.name, number: proto.number },
        format: this.opts.format,
        batch: this.opts.batch,
        unicast: this.opts.unicast,
        limits: { maxPayload: this.opts.maxPayload, bufferBytes: this.opts.bufferBytes, stallMs: this.opts.stallMs },
      }),
    );
  }

  /** A resume in progress (?since=): live messages with a cursor are read from the ring by it instead. */
  catchUp: CatchUp | null = null;

  deliver(m: RxMessage): void {
    if (this.catchUp !== null && this.catchUp.active && m.cursor !== undefined) return;
    this.send(m);
  }

  /** For the catch-up: whether the client's backlog has room. */
  room(): boolean {
    return !this.closed && this.ws.readyState === this.ws.OPEN && this.ws.bufferedAmount <= this.opts.bufferBytes;
  }

  /** For the catch-up: a client that stayed full for --ws-stall-ms. */
  stalled(): void {
    this.closeSlow({}, 'closing a resuming WebSocket client that stayed over its backlog (1013)');
  }

  /** Closes a client that stayed over its backlog for --ws-stall-ms with 1013, and cuts it a second later. */
  private closeSlow(logFields: Record<string, unknown>, message: string): void {
    this.metrics.wsClosedSlow.inc();
    this.log.warn({ ...logFields, bufferedAmount: this.ws.bufferedAmount }, message);
    this.closeWs(1013, 'too slow: backlog over limit');
    // A client that does not read will not complete the closing handshake either.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  /** Writes one message frame (or counts it dropped when the backlog is full). */
  send(m: RxMessage): void {
    if (this.closed) return;
    const n = ++this.n;
    if (!this.hasRoom()) {
      this.dropped++;
      this.metrics.wsDropped.inc();
      return;
    }
    if (this.opts.format === 'binary') {
      this.writer.push(m.bytes);
      return;
    }
    const frame = messageFrame(n, messageTail(m, this.bus.protocol.name === 'dummy'));
    if (this.opts.batch) {
      this.batchFrames.push(frame);
      this.batchBytes += frame.length;
      if (this.batchBytes >= BATCH_FRAME_BYTES) this.sendBatch();
    } else this.sendText(frame);
  }

  private sendBatch(): void {
    if (this.batchFrames.length !== 0 && !this.closed) {
      const lines = this.batchFrames;
      this.batchFrames = [];
      this.batchBytes = 0;
      this.writer.push(lines);
    }
  }

  flush(): void {
    this.sendBatch();
    this.writer.flush();
  }

  overrun(lost: number): void {
    if (this.closed) return;
    this.event('overrun', { lost });
  }

  malformed(info: MalformedInfo): void {
    if (this.closed) return;
    this.event('malformed', { ...info });
  }

  gap(info: GapInfo): void {
    if (this.closed) return;
    this.event('gap', { ...info });
  }

  /** An event frame: never dropped (they are how loss is reported), kept in order with batched messages. */
  event(type: string, fields: Record<string, unknown>): void {
    // Never dropped, but not unbounded either: a client over its backlog is
    // watched as when messages are dropped, and closed with 1013 after
    // --ws-stall-ms. A peer sending only malformed datagrams makes events the
    // whole stream, and a stalled client's backlog grew without limit
    // (reliability case 2).
    this.watchBacklog();
    const frame = eventFrame(type, ++this.n, fields);
    if (this.opts.batch && this.opts.format === 'json') {
      this.batchFrames.push(frame);
      this.batchBytes += frame.length;
      // Events raised outside a receive batch (sent, error, dropped) flush on their own.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    } else {
      // Queued like messages, in order: a peer sending only malformed
      // datagrams must not cost a write per datagram (reliability case 2).
      this.sendText(frame);
    }
  }

  private sendText(text: string): void {
    this.writer.push(text);
  }

  /** Closes the connection after what is queued (ws writes its close frame straight to the socket). */
  closeWs(code: number, reason: string): void {
    this.writer.flush();
    this.ws.close(code, reason);
  }

  /** Room in the client's backlog; starts the watch that reports drops and closes stalled clients. */
  private hasRoom(): boolean {
    if (this.ws.bufferedAmount <= this.opts.bufferBytes) {
      if (this.dropped > 0) this.reportDropped();
      return true;
    }
    this.watchBacklog();
    return false;
  }

  /** Over the backlog: starts the watch that reports drops and closes a client stalled for --ws-stall-ms. */
  private watchBacklog(): void {
    if (this.overSince === null && this.ws.bufferedAmount > this.opts.bufferBytes) {
      this.overSince = Date.now();
      this.drainTimer ??= setInterval(() => this.checkDrain(), DRAIN_CHECK_MS);
    }
  }

  private checkDrain(): void {
    if (this.closed) return this.stopDrainWatch();
    if (this.ws.bufferedAmount <= this.opts.bufferBytes) {
      this.overSince = null;
      this.stopDrainWatch();
      if (this.dropped > 0) this.reportDropped();
      return;
    }
    if (this.overSince !== null && Date.now() - this.overSince > this.opts.stallMs) {
      this.stopDrainWatch();
      this.closeSlow({ dropped: this.dropped }, 'closing a WebSocket client that stayed over its backlog (1013)');
    }
  }

  private reportDropped(): void {
    const count = this.dropped;
    this.dropped = 0;
    this.overSince = null;
    this.event('dropped', { count });
  }

  private stopDrainWatch(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = null;
  }

  /** What the client wrote: text → DATA to the groups; a JSON object → a full /send request. */
  async onClientMessage(data: RawData, isBinary: boolean): Promise<void> {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const from = this.endpoint ?? undefined;
    if (!isBinary) {
      const text = buf.toString('utf8');
      if (text.trimStart().startsWith('{')) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
          const body = { ...(parsed as Record<string, unknown>) };
          const id = body.id;
          delete body.id;
          const idField = id === undefined ? {} : { id };
          try {
            validateSendRequest(body);
            const req = toSendRequest(body as SendBody);
            checkSend(this.opts.scope ?? null, req);
            this.opts.spendSend?.();
            const report = await this.bus.send(req, from);
            if (!this.closed) this.event('sent', { ...idField, report });
          } catch (err) {
            this.replyError(err, idField);
          }
          return;
        }
      }
    }
    try {
      const req = { groups: this.groups, data: buf };
      checkSend(this.opts.scope ?? null, req);
      this.opts.spendSend?.();
      await this.bus.send(req, from);
    } catch (err) {
      this.replyError(err, {});
    }
  }

  private replyError(err: unknown, idField: Record<string, unknown>): void {
    if (this.closed) return;
    const problem = problemOf(err);
    if (problem !== null) {
      this.event('error', { ...idField, problem: problem.body() });
      return;
    }
    this.log.error({ err }, 'WebSocket send failed');
    this.event('error', { ...idField, problem: new Problem('INTERNAL', 'internal error').body() });
  }

  private alive = true;

  /** Called every PING_INTERVAL_MS: cuts a client that did not answer the previous ping. */
  ping(): void {
    if (this.closed) return;
    if (!this.alive) {
      this.log.info('WebSocket client did not answer a ping; cutting it');
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.writer.flush();
    this.ws.ping();
  }

  pong(): void {
    this.alive = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.catchUp?.stop();
    this.stopDrainWatch();
    this.bus.unsubscribe(this);
    if (this.endpoint) this.bus.closeClientEndpoint(this.endpoint);
  }
}

/** Parses the stream's groups; throws Problem (400). */
export function streamGroups(request: FastifyRequest): GroupList {
  const params = request.params as { mask?: string };
  const query = request.query as StreamQuery;
  try {
    if (params.mask !== undefined) return parseMaskText(params.mask);
    return parseGroupList(query.list ?? '');
  } catch (err) {
    if (err instanceof GroupSpecError) {
      const field = params.mask !== undefined ? 'mask' : 'list';
      throw new Problem('BAD_GROUPS', `${field}: ${err.message}`, { field });
    }
    throw err;
  }
}

export function groupsRoutes(app: FastifyInstance, bus: Bus, config: Config, metrics: Metrics, streams: Set<Stream>): void {
  const pinger = setInterval(() => {
    for (const s of streams) s.ping();
  }, PING_INTERVAL_MS);
  pinger.unref();
  app.addHook('onClose', async () => clearInterval(pinger));

  const upgradeRequired = async (): Promise<never> => {
    throw new Problem('UPGRADE_REQUIRED', 'this is a WebSocket endpoint: connect with a WebSocket client (e.g. websocat ws://127.0.0.1:8080/groups/10)');
  };

  const wsHandler = (socket: WebSocket, request: FastifyRequest): void => {
    const query = request.query as StreamQuery;
    const credential = request.nlbridgeCredential;
    const opts: StreamOptions = {
      groups: (request as FastifyRequest & { streamGroups: GroupList }).streamGroups,
      format: query.format ?? 'json',
      batch: truthy(query.batch),
      unicast: truthy(query.unicast),
      bufferBytes: config.wsBufferBytes,
      stallMs: config.wsStallMs,
      maxPayload: config.wsMaxPayload,
      scope: request.nlbridgeScope,
      spendSend: () => app.nlbridge.limits.spendSend(credential),
    };
    const log = request.log.child({ ws: true, groups: opts.groups });
    const stream = new Stream(socket, opts, bus, metrics, log);
    let release = (): void => {};
    try {
      // Checked in preValidation too; taken here, where the stream exists,
      // since concurrent upgrades can all pass that check.
      release = app.nlbridge.limits.holdStream(credential, opts.unicast);
      if (opts.unicast) {
        stream.endpoint = bus.openClientEndpoint(
          (m) => stream.deliver(m),
          () => stream.flush(),
          (lost) => stream.overrun(lost),
        );
      }
      bus.subscribe(stream);
    } catch (err) {
      stream.close();
      release();
      const problem = problemOf(err) ?? new Problem('INTERNAL', 'internal error');
      if (problem.code === 'INTERNAL') log.error({ err }, 'WebSocket subscription failed');
      socket.send(eventFrame('error', 1, { problem: problem.body() }));
      socket.close(problem.status >= 500 ? 1011 : problem.status === 429 ? 1013 : 1008, problem.code);
      return;
    }
    streams.add(stream);
    metrics.wsClients.set({}, streams.size);
    log.info({ unicast: opts.unicast, portId: stream.endpoint?.portId, format: opts.format }, 'WebSocket client subscribed');
    stream.hello();
    // Same tick as subscribe(): nothing live can come between the replay and the stream.
    if (query.since !== undefined) stream.catchUp = bus.resume(stream, query.since, config.wsStallMs, () => stream.stalled());
    socket.on('message', (data, isBinary) => void stream.onClientMessage(data, isBinary));
    socket.on('pong', () => stream.pong());
    socket.on('close', (code) => {
      stream.close();
      release();
      streams.delete(stream);
      metrics.wsClients.set({}, streams.size);
      log.info({ code }, 'WebSocket client left');
    });
    socket.on('error', (err) => log.debug({ err }, 'WebSocket error'));
  };

  const preValidation = async (request: FastifyRequest): Promise<void> => {
    const groups = streamGroups(request);
    const field = (request.params as { mask?: string }).mask !== undefined ? 'mask' : 'list';
    bus.checkGroups(groups, field);
    checkRead(request.nlbridgeScope, groups, field);
    app.nlbridge.limits.checkStream(request.nlbridgeCredential, truthy((request.query as StreamQuery).unicast));
    const since = (request.query as StreamQuery).since;
    if (since !== undefined) bus.checkCursor(since, 'since');
    (request as FastifyRequest & { streamGroups: GroupList }).streamGroups = groups;
  };

  app.route({
    method: 'GET',
    url: '/groups/:mask',
    schema: { params: parametersSchema('/groups/{mask}', 'get', 'path'), querystring: parametersSchema('/groups/{mask}', 'get', 'query') },
    preHandler: preValidation,
    handler: upgradeRequired,
    wsHandler,
  });
  app.route({
    method: 'GET',
    url: '/groups',
    schema: { querystring: parametersSchema('/groups', 'get', 'query') },
    preHandler: preValidation,
    handler: upgradeRequired,
    wsHandler,
  });

  app.route({
    method: 'GET',
    url: '/groups/:mask/recent',
    schema: { params: parametersSchema('/groups/{mask}/recent', 'get', 'path'), querystring: parametersSchema('/groups/{mask}/recent', 'get', 'query') },
    handler: async (request) => {
      const groups = streamGroups(request);
      bus.checkGroups(groups, 'mask');
      checkRead(request.nlbridgeScope, groups, 'mask');
      const limit = Number((request.query as { limit?: string }).limit ?? 100);
      if (!(limit >= 1 && limit <= 10000)) throw new Problem('VALIDATION', `limit: must be 1..10000, got ${limit}`, { field: 'limit' });
      const dummy = bus.protocol.name === 'dummy';
      const messages = bus.ring.recent(groups, limit, Date.now()).map((m, i) => JSON.parse(messageFrame(i + 1, messageTail(m, dummy))) as unknown);
      return { epoch: bus.ring.epoch, newest: bus.ring.last > 0 ? bus.ring.cursorOf(bus.ring.last) : null, messages };
    },
  });
}

// GET /groups/:mask/events: the stream as Server-Sent Events, for curl -N and
// EventSource. The frames are those of the WebSocket stream (same JSON, same
// per-stream n); a message's SSE id is its cursor, so a reconnecting
// EventSource resumes with Last-Event-ID (or ?since=) like a WebSocket does.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { Bus } from '../netlink/bus';
import type { Config } from '../config';
import { eventFrame, messageFrame, messageTail } from '../frames';
import type { Metrics } from '../metrics';
import type { CatchUp } from '../netlink/catch_up';
import type { GapInfo, MalformedInfo, RxMessage, Subscriber } from '../netlink/message';
import { checkRead } from '../scopes';
import { parametersSchema } from '../spec';
import { streamGroups } from './groups';

/** A comment line this often keeps proxies and idle timers from cutting a quiet stream. */
export const SSE_HEARTBEAT_MS = 15000;
/** What EventSource waits before reconnecting. */
export const SSE_RETRY_MS = 1000;

export class SseStream implements Subscriber {
  private n = 0;
  private dropped = 0;
  private closed = false;
  private overSince: number | null = null;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    readonly groups: readonly number[],
    private readonly res: ServerResponse,
    private readonly bus: Bus,
    private readonly config: Config,
    private readonly metrics: Metrics,
  ) {
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    this.heartbeat.unref();
    res.on('drain', () => {
      this.overSince = null;
      if (this.dropped > 0) this.reportDropped();
    });
  }

  start(): void {
    const proto = this.bus.protocol;
    this.write(`retry: ${SSE_RETRY_MS}\n\n`);
    this.sendEvent('hello', {
      portId: this.bus.tx.portId,
      bridgePortId: this.bus.tx.portId,
      groups: this.groups,
      protocol: { name: proto.name, number: proto.number },
      format: 'json',
      batch: false,
      unicast: false,
      limits: { maxPayload: this.config.wsMaxPayload, bufferBytes: this.config.wsBufferBytes, stallMs: this.config.wsStallMs },
    }, 0);
  }

  /** A resume in progress: live messages with a cursor are read from the ring by it instead. */
  catchUp: CatchUp | null = null;

  deliver(m: RxMessage): void {
    if (this.catchUp !== null && this.catchUp.active && m.cursor !== undefined) return;
    this.send(m);
  }

  room(): boolean {
    return !this.closed && !this.res.destroyed && this.res.writableLength <= this.config.wsBufferBytes;
  }

  stalled(): void {
    this.metrics.wsClosedSlow.inc();
    this.res.destroy();
  }

  send(m: RxMessage): void {
    if (this.closed) return;
    const n = ++this.n;
    if (this.res.writableLength > this.config.wsBufferBytes) {
      this.dropped++;
      this.metrics.wsDropped.inc();
      this.overSince ??= Date.now();
      if (Date.now() - this.overSince > this.config.wsStallMs) {
        this.metrics.wsClosedSlow.inc();
        this.res.destroy();
      }
      return;
    }
    const id = m.cursor === undefined ? '' : `id: ${m.cursor}\n`;
    this.write(`${id}event: message\ndata: ${messageFrame(n, messageTail(m, this.bus.protocol.name === 'dummy'))}\n\n`);
  }

  flush(): void {
    // Written as they come; the socket coalesces.
  }

  overrun(lost: number): void {
    this.sendEvent('overrun', { lost });
  }

  malformed(info: MalformedInfo): void {
    this.sendEvent('malformed', { ...info });
  }

  gap(info: GapInfo): void {
    this.sendEvent('gap', { ...info });
  }

  private reportDropped(): void {
    const count = this.dropped;
    this.dropped = 0;
    this.sendEvent('dropped', { count });
  }

  /** Events are never dropped (they are how loss is reported). */
  private sendEvent(type: string, fields: Record<string, unknown>, n = ++this.n): void {
    if (this.closed) return;
    this.write(`event: ${type}\ndata: ${eventFrame(type, n, fields)}\n\n`);
  }

  private write(text: string): void {
    if (this.closed || this.res.destroyed) return;
    this.res.write(text);
    this.metrics.wsFrames.inc();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.catchUp?.stop();
    clearInterval(this.heartbeat);
    this.bus.unsubscribe(this);
  }

  end(): void {
    this.close();
    this.res.end();
  }
}

export function eventsRoutes(app: FastifyInstance, bus: Bus, config: Config, metrics: Metrics): void {
  const open = new Set<SseStream>();
  app.addHook('preClose', async () => {
    for (const s of open) s.end();
  });

  app.route({
    method: 'GET',
    url: '/groups/:mask/events',
    schema: { params: parametersSchema('/groups/{mask}/events', 'get', 'path'), querystring: parametersSchema('/groups/{mask}/events', 'get', 'query') },
    preHandler: async (request: FastifyRequest) => {
      const groups = streamGroups(request);
      bus.checkGroups(groups, 'mask');
      checkRead(request.nlbridgeScope, groups, 'mask');
      app.nlbridge.limits.checkStream(request.nlbridgeCredential, false);
      const last = request.headers['last-event-id'];
      if (typeof last === 'string' && last !== '') bus.checkCursor(last, 'Last-Event-ID');
      const since = (request.query as { since?: string }).since;
      if (since !== undefined) bus.checkCursor(since, 'since');
    },
    handler: async (request, reply) => {
      if (request.method === 'HEAD') {
        // Node sends a HEAD answer's headers only at end(): an endless stream would never answer.
        return reply.code(200).type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send('');
      }
      const groups = streamGroups(request);
      const last = request.headers['last-event-id'];
      // Last-Event-ID is what an EventSource sends on reconnect: it is newer than the URL's since.
      const since = typeof last === 'string' && last !== '' ? last : (request.query as { since?: string }).since;
      // Taken before anything is held: it throws (429) when the token's streams are all in use.
      const release = app.nlbridge.limits.holdStream(request.nlbridgeCredential, false);
      const stream = new SseStream(groups, reply.raw, bus, config, metrics);
      bus.subscribe(stream);
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
      open.add(stream);
      metrics.httpRequests.inc({ route: '/groups/:mask/events', status: 200 });
      request.log.info({ groups, since }, 'SSE client subscribed');
      // Same tick as subscribe(): nothing live can come between the replay and the stream.
      stream.start();
      if (since !== undefined) stream.catchUp = bus.resume(stream, since, config.wsStallMs, () => stream.stalled());
      reply.raw.on('close', () => {
        stream.close();
        release();
        open.delete(stream);
        request.log.info('SSE client left');
      });
    },
  });
}

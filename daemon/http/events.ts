// GET /groups/:mask/events and /fleet/groups/:mask/events: a stream as
// Server-Sent Events (see streams/sse_writer.ts), for curl -N and EventSource.

import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkRead } from '../scopes';
import { parametersSchema } from '../spec';
import { sseSubscription, type SseSubscription } from '../streams/sse_writer';
import { streamGroups, subscriptionOptions } from './stream_request';
import { fleetSelection, fleetStream, requireFleet } from './fleet_request';

/** The response head of every SSE stream. */
const SSE_HEAD = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

export const eventsRoutesPlugin = fp(
  async (app: FastifyInstance) => {
    const { bus, config, metrics, limits, fleet } = app.nlbridge;
    const open = new Set<SseSubscription>();
    app.addHook('preClose', async () => {
      for (const s of open) {
        s.close();
        s.writer.end();
      }
    });

    app.route({
      method: 'GET',
      url: '/groups/:mask/events',
      schema: {
        params: parametersSchema('/groups/{mask}/events', 'get', 'path'),
        querystring: parametersSchema('/groups/{mask}/events', 'get', 'query'),
      },
      preHandler: async (request: FastifyRequest) => {
        const groups = streamGroups(request);
        bus.checkGroups(groups, 'mask');
        checkRead(request.nlbridgeScope, groups, 'mask');
        limits.checkStream(request.nlbridgeCredential, false);
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
        const release = limits.holdStream(request.nlbridgeCredential, false);
        // SSE carries JSON frames one by one, on the shared socket only.
        const opts = { ...subscriptionOptions(groups, {}, config), format: 'json' as const, batch: false, unicast: false };
        const stream = sseSubscription(reply.raw, opts, bus, metrics, request.log);
        bus.subscribe(stream);
        reply.hijack();
        reply.raw.writeHead(200, SSE_HEAD);
        open.add(stream);
        metrics.httpRequests.inc({ route: '/groups/:mask/events', status: 200 });
        request.log.info({ groups, since }, 'SSE client subscribed');
        // Same tick as subscribe(): nothing live can come between the replay and the stream.
        stream.hello();
        if (since !== undefined) stream.catchUp = bus.resume(stream, since, config.wsStallMs, () => stream.stalled());
        reply.raw.on('close', () => {
          stream.close();
          release();
          open.delete(stream);
          request.log.info('SSE client left');
        });
      },
    });

    app.route({
      method: 'GET',
      url: '/fleet/groups/:mask/events',
      schema: {
        params: parametersSchema('/fleet/groups/{mask}/events', 'get', 'path'),
        querystring: parametersSchema('/fleet/groups/{mask}/events', 'get', 'query'),
      },
      preHandler: async (request: FastifyRequest) => {
        fleetSelection(request, fleet, bus);
        limits.checkStream(request.nlbridgeCredential, false);
      },
      handler: async (request, reply) => {
        if (request.method === 'HEAD') {
          return reply.code(200).type('text/event-stream; charset=utf-8').header('cache-control', 'no-cache').send('');
        }
        const selection = fleetSelection(request, fleet, bus);
        const release = limits.holdStream(request.nlbridgeCredential, false);
        const opts = {
          ...subscriptionOptions(selection.groups, {}, config),
          batch: false,
          unicast: false,
          hello: { hosts: selection.hosts },
        };
        const log = request.log.child({ fleet: true, hosts: selection.hosts });
        const { stream, watch } = fleetStream(requireFleet(fleet), bus, selection, (source) =>
          sseSubscription(reply.raw, opts, source, metrics, log),
        );
        reply.hijack();
        reply.raw.writeHead(200, SSE_HEAD);
        open.add(stream);
        metrics.httpRequests.inc({ route: '/fleet/groups/:mask/events', status: 200 });
        log.info({ groups: selection.groups }, 'SSE fleet client subscribed');
        stream.hello();
        watch();
        reply.raw.on('close', () => {
          stream.close();
          release();
          open.delete(stream);
          log.info('SSE fleet client left');
        });
      },
    });
  },
  { name: 'nlbridge-events', dependencies: ['nlbridge-state', 'nlbridge-errors', 'nlbridge-admission'] },
);

// WebSocket streams: /groups/:mask and /groups?list=2,40, the fleet's
// /fleet/groups/:mask (other hosts' groups, from NATS), and the ring's
// recent messages (/groups/:mask/recent).
//
// @fastify/websocket is registered here, in this plugin's own (encapsulated)
// context: its onRequest/onResponse hooks and route wrapper then run for
// these routes only, not for every POST /send (issue 17: ≈ 2 µs a request).

import websocket from '@fastify/websocket';
import fp from 'fastify-plugin';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { Problem, problemOf } from '../errors';
import type { GroupList } from '../netlink/groups';
import { eventFrame, messageFrame, messageTail } from '../frames';
import { checkRead } from '../scopes';
import { APP_SUBPROTOCOL } from './request_checks';
import { parametersSchema } from '../spec';
import { PING_INTERVAL_MS, wsSubscription, type WsSubscription } from '../streams/ws_writer';
import { groupsField, streamGroups, subscriptionOptions, truthy, type StreamQuery } from './stream_request';
import { onClientMessage } from './ws_ingress';
import { fleetSelection, fleetStream, requireFleet, type FleetSelection } from './fleet_request';

type StreamRequest = FastifyRequest & { streamGroups: GroupList };
type FleetRequest = FastifyRequest & { fleetSelection: FleetSelection };

async function streamRoutes(app: FastifyInstance): Promise<void> {
  const { bus, config, metrics, limits, streams, fleet } = app.nlbridge;

  /** A stream's socket, local or fleet: pongs to its writer; on close the stream, its token's hold and the gauge go. */
  const holdUntilClosed = (socket: WebSocket, stream: WsSubscription, release: () => void, log: FastifyBaseLogger, left: string): void => {
    socket.on('pong', () => stream.writer.pong());
    socket.on('close', (code) => {
      stream.close();
      release();
      streams.delete(stream);
      metrics.wsClients.set({}, streams.size);
      log.info({ code }, left);
    });
    socket.on('error', (err) => log.debug({ err }, 'WebSocket error'));
  };

  await app.register(websocket, {
    options: {
      maxPayload: config.wsMaxPayload,
      // Always the application's name, never the token-bearing one: a 101
      // that echoes bearer.<token> puts the secret in every proxy's log.
      // (Admission refuses an upgrade offering bearer.<token> without it.)
      handleProtocols: (protocols: Set<string>) => (protocols.has(APP_SUBPROTOCOL) ? APP_SUBPROTOCOL : false),
    },
    preClose(done) {
      for (const s of streams) s.writer.close(1001, 'server shutting down');
      const wss = this.websocketServer;
      // Clients that do not answer the close handshake are cut after a second.
      const timer = setTimeout(() => {
        for (const c of wss.clients) c.terminate();
      }, 1000);
      timer.unref();
      wss.close(() => {
        clearTimeout(timer);
        done();
      });
    },
  });

  const pinger = setInterval(() => {
    for (const s of streams) {
      if (s.isClosed) continue;
      if (!s.writer.ping()) app.log.info({ groups: s.groups }, 'WebSocket client did not answer a ping; cutting it');
    }
  }, PING_INTERVAL_MS);
  pinger.unref();
  app.addHook('onClose', async () => {
    clearInterval(pinger);
    for (const s of streams) s.close();
  });

  const upgradeRequired = async (): Promise<never> => {
    throw new Problem(
      'UPGRADE_REQUIRED',
      'this is a WebSocket endpoint: connect with a WebSocket client (e.g. websocat ws://127.0.0.1:8080/groups/10)',
    );
  };

  const wsHandler = (socket: WebSocket, request: FastifyRequest): void => {
    const query = request.query as StreamQuery;
    const credential = request.nlbridgeCredential;
    const opts = subscriptionOptions((request as StreamRequest).streamGroups, query, config);
    const log = request.log.child({ ws: true, groups: opts.groups });
    const stream = wsSubscription(socket, opts, bus, metrics, log);
    let release = (): void => {};
    try {
      // Checked in preHandler too; taken here, where the stream exists,
      // since concurrent upgrades can all pass that check.
      release = limits.holdStream(credential, opts.unicast);
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
    const ingress = { bus, scope: request.nlbridgeScope, spendSend: () => limits.spendSend(credential), log };
    socket.on('message', (data, isBinary) => void onClientMessage(stream, ingress, data, isBinary));
    holdUntilClosed(socket, stream, release, log, 'WebSocket client left');
  };

  const preHandler = async (request: FastifyRequest): Promise<void> => {
    const groups = streamGroups(request);
    const field = groupsField(request);
    bus.checkGroups(groups, field);
    checkRead(request.nlbridgeScope, groups, field);
    limits.checkStream(request.nlbridgeCredential, truthy((request.query as StreamQuery).unicast));
    const since = (request.query as StreamQuery).since;
    if (since !== undefined) bus.checkCursor(since, 'since');
    (request as StreamRequest).streamGroups = groups;
  };

  app.route({
    method: 'GET',
    url: '/groups/:mask',
    schema: { params: parametersSchema('/groups/{mask}', 'get', 'path'), querystring: parametersSchema('/groups/{mask}', 'get', 'query') },
    preHandler,
    handler: upgradeRequired,
    wsHandler,
  });
  app.route({
    method: 'GET',
    url: '/groups',
    schema: { querystring: parametersSchema('/groups', 'get', 'query') },
    preHandler,
    handler: upgradeRequired,
    wsHandler,
  });

  // A fleet stream: the same Subscription and writer, fed by the fleet's NATS
  // subscriptions; read-only (a write is answered by an error frame).
  const fleetWsHandler = (socket: WebSocket, request: FastifyRequest): void => {
    const selection = (request as FleetRequest).fleetSelection;
    const credential = request.nlbridgeCredential;
    const opts = { ...subscriptionOptions(selection.groups, {}, config), unicast: false, hello: { hosts: selection.hosts } };
    const log = request.log.child({ ws: true, fleet: true, groups: opts.groups, hosts: selection.hosts });
    const { stream, watch } = fleetStream(requireFleet(fleet), bus, selection, (source) =>
      wsSubscription(socket, opts, source, metrics, log),
    );
    let release: () => void;
    try {
      release = limits.holdStream(credential, false);
    } catch (err) {
      stream.close();
      const problem = problemOf(err) ?? new Problem('INTERNAL', 'internal error');
      socket.send(eventFrame('error', 1, { problem: problem.body() }));
      socket.close(problem.status === 429 ? 1013 : 1008, problem.code);
      return;
    }
    streams.add(stream);
    metrics.wsClients.set({}, streams.size);
    log.info({ format: opts.format }, 'WebSocket fleet client subscribed');
    stream.hello();
    watch();
    socket.on('message', () =>
      stream.event('error', {
        problem: new Problem(
          'METHOD_NOT_ALLOWED',
          'a /fleet stream is read-only: send on the host itself (POST /send there, or NATS nlbridge.<host>.send)',
        ).body(),
      }),
    );
    holdUntilClosed(socket, stream, release, log, 'WebSocket fleet client left');
  };

  app.route({
    method: 'GET',
    url: '/fleet/groups/:mask',
    schema: {
      params: parametersSchema('/fleet/groups/{mask}', 'get', 'path'),
      querystring: parametersSchema('/fleet/groups/{mask}', 'get', 'query'),
    },
    preHandler: async (request: FastifyRequest) => {
      (request as FleetRequest).fleetSelection = fleetSelection(request, fleet, bus);
      limits.checkStream(request.nlbridgeCredential, false);
    },
    handler: async () => {
      throw new Problem(
        'UPGRADE_REQUIRED',
        'this is a WebSocket endpoint: connect with a WebSocket client (or use /fleet/groups/{mask}/events for Server-Sent Events)',
      );
    },
    wsHandler: fleetWsHandler,
  });

  app.route({
    method: 'GET',
    url: '/groups/:mask/recent',
    schema: {
      params: parametersSchema('/groups/{mask}/recent', 'get', 'path'),
      querystring: parametersSchema('/groups/{mask}/recent', 'get', 'query'),
    },
    handler: async (request, reply) => {
      const groups = streamGroups(request);
      bus.checkGroups(groups, 'mask');
      checkRead(request.nlbridgeScope, groups, 'mask');
      const limit = Number((request.query as { limit?: string }).limit ?? 100);
      if (!(limit >= 1 && limit <= 10000)) throw new Problem('VALIDATION', `limit: must be 1..10000, got ${limit}`, { field: 'limit' });
      const dummy = bus.protocol.name === 'dummy';
      // The frames are JSON text already (the streams' own): joined as they
      // are, not parsed back into objects to be serialized again.
      const frames = bus.ring.recent(groups, limit, Date.now()).map((m, i) => messageFrame(i + 1, messageTail(m, dummy)));
      const newest = bus.ring.last > 0 ? bus.ring.cursorOf(bus.ring.last) : null;
      void reply.type('application/json; charset=utf-8');
      return `{"epoch":${JSON.stringify(bus.ring.epoch)},"newest":${JSON.stringify(newest)},"messages":[${frames.join(',')}]}`;
    },
  });
}

/** Encapsulated (`encapsulate: true`): @fastify/websocket's hooks stay inside. */
export const streamRoutesPlugin = fp(streamRoutes, {
  name: 'nlbridge-streams',
  dependencies: ['nlbridge-state', 'nlbridge-errors', 'nlbridge-admission'],
  encapsulate: true,
});

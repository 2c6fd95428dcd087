// After every answer: count it (nlbridge_http_requests_total), log it at
// debug, and close the socket of a refused WebSocket upgrade.

import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { isUpgrade } from './admission';

export const observePlugin = fp(
  async (app: FastifyInstance) => {
    const { metrics } = app.nlbridge;
    // Read once: the level is fixed at start (--log-level), and the debug
    // line's object is the costly part of this hook at bench rates.
    const logRequests = app.log.level === 'debug' || app.log.level === 'trace';
    // Callback style: an async hook costs a promise and a tick on every request.
    app.addHook('onResponse', (request, reply, done) => {
      metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode });
      if (logRequests)
        request.log.debug({ req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed');
      // An upgrade answered with HTTP (a refusal, a plain route): its socket
      // left Node's HTTP server at the 'upgrade' event and nothing else will
      // close it. @fastify/websocket does this only inside the streams
      // routes' context, and only once its own onRequest has run.
      if (isUpgrade(request)) request.raw.socket.destroy();
      done();
    });
  },
  { name: 'nlbridge-observe', dependencies: ['nlbridge-state'] },
);

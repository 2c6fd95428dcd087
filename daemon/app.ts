// buildApp(config, deps): the fastify instance with every plugin; no listen
// (main.ts does that; tests use real listeners or inject).
//
// The rooms (daemon/README.md, "Architecture"): http/ holds one fastify
// plugin per concern — state (decorated once), admission, errors, request
// bodies, observation, and one per route family — and streams/ the
// transport-neutral Subscription the stream routes write through.

import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Config } from './config';
import { createHttpServer } from './http_server';
import { admissionPlugin } from './http/admission';
import { clientError, errorsPlugin, frameworkErrors } from './http/errors';
import { eventsRoutesPlugin } from './http/events';
import { jsonBodyPlugin } from './http/json_body';
import { observePlugin } from './http/observe';
import { requestSerializer } from './http/request_log';
import { sendRoutesPlugin } from './http/send';
import { statePlugin, type AppDeps } from './http/state';
import { statusRoutesPlugin } from './http/status';
import { consoleRoutesPlugin } from './http/console';
import { streamRoutesPlugin } from './http/streams';
import { AJV_OPTIONS } from './validation';

export type { AppDeps } from './http/state';
export { viaUnixSocket } from './http/admission';
export { redactUrl } from './http/request_log';

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger.child({}, { serializers: { req: requestSerializer as never } }) } : { logger: false }),
    bodyLimit: config.bodyLimit,
    // Timeouts, the connection cap and the listener tag (http_server.ts).
    serverFactory: (handler) => createHttpServer(config, deps.metrics, handler),
    ajv: { customOptions: { ...AJV_OPTIONS } },
    // Two info lines per request meet journald's rate limit at bench rates and
    // write synchronously: requests are logged at debug (http/observe.ts) and
    // counted in nlbridge_http_requests_total.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, requests on kept-alive connections get our own 503 problem (http/admission.ts).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // The spec lets a mask be 300 characters (fastify's default cap is 100,
    // answered with a bare 414); longer ones are the schema's 400. Under
    // routerOptions: the top-level option prints FSTDEP022 at every start.
    routerOptions: { maxParamLength: 1024 },
    // Errors raised before routing and HTTP the parser refuses are problems like every other.
    frameworkErrors,
    clientErrorHandler: clientError,
  }) as unknown as FastifyInstance;

  // In this order: state first (the others read it), admission before any
  // route, the error handler before the encapsulated stream routes inherit it.
  await app.register(statePlugin, { config, deps });
  await app.register(errorsPlugin);
  await app.register(jsonBodyPlugin);
  await app.register(admissionPlugin);
  await app.register(observePlugin);
  await app.register(sendRoutesPlugin);
  await app.register(streamRoutesPlugin);
  await app.register(eventsRoutesPlugin);
  await app.register(statusRoutesPlugin);
  await app.register(consoleRoutesPlugin);
  return app;
}

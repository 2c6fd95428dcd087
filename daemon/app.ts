// buildApp(config, deps): the fastify instance with every route and hook; no
// listen (main.ts does that, tests use real listeners or inject).

import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import websocket from '@fastify/websocket';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Bus } from './netlink/bus';
import type { Config } from './config';
import { Problem, problemOf } from './errors';
import type { Metrics } from './metrics';
import {
  APP_SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  bearerFromHeader,
  hostAllowed,
  offeredSubprotocols,
  originAllowed,
  tokenFromSubprotocols,
  type AuthSetup,
} from './security';
import { AJV_OPTIONS, problemFromAjv } from './validation';
import { createHttpServer, listenerKindOf } from './http_server';
import { TokenLimits, type CredentialKey } from './token_limits';
import { isUtf8 } from 'node:buffer';
import { groupsRoutes, type Stream } from './routes/groups';
import { FULL_SCOPE, scopeOf, type Scope } from './scopes';
import { eventsRoutes } from './routes/events';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';
import { sendRoutes } from './routes/send';
import { specRoutes } from './routes/spec';
import { statusRoutes } from './routes/status';

export interface AppDeps {
  bus: Bus;
  metrics: Metrics;
  auth: AuthSetup;
  /** pino logger; false = silent. */
  logger: Logger | false;
  version?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The presented token's scope; null = unlimited (no token required, the main token, or the unix socket). */
    nlbridgeScope: Scope | null;
    /** Whose limits (streams, unicast sockets, sends per minute) this request draws on. */
    nlbridgeCredential: CredentialKey;
  }
  interface FastifyInstance {
    nlbridge: { streams: Set<Stream>; stopping: boolean; routes: { method: string; url: string }[]; limits: TokenLimits; metrics: Metrics };
  }
}

/** Paths served without a token (the Host check still applies). */
const PUBLIC_PATHS = new Set(['/healthz', '/openapi.yaml', '/asyncapi.yaml']);

/**
 * Paths that describe the whole daemon (every group's counters, clients,
 * the kernel's statistics): the main token or the unix socket only.
 */
const WHOLE_DAEMON_PATHS = new Set(['/status', '/metrics', '/kernel/stats']);

/** A request that came over the unix socket (authorized by the socket's mode and group), by the listener that accepted it. */
export function viaUnixSocket(request: FastifyRequest): boolean {
  return listenerKindOf(request.raw.socket) === 'unix';
}

/** fastify's inject: no socket, no listener; admitted as a TCP client would be. */
const injected = (request: FastifyRequest): boolean => '_isLightMyRequest' in request.raw;

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** Query values that look like secrets are masked before a URL reaches the log. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      const key = eq < 0 ? kv : kv.slice(0, eq);
      return eq >= 0 && /token|auth|key|secret|pass|bearer/i.test(key) ? `${key}=[REDACTED]` : kv;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

const requestSerializer = (req: { method?: string; url?: string; host?: string; hostname?: string; ip?: string; socket?: { remotePort?: number } }): Record<string, unknown> => ({
  method: req.method,
  url: redactUrl(req.url ?? ''),
  host: req.host ?? req.hostname,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

/** A whole HTTP/1.1 response carrying a problem, for sockets no route answers. */
function rawProblemResponse(p: Problem): string {
  const body = JSON.stringify(p.body());
  return `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status]}\r\nContent-Type: application/problem+json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * HTTP that Node's parser refuses (a bad method token or request line,
 * conflicting lengths, headers too large or too slow) never reaches a route:
 * answer it with the same problem+json a route would, then close.
 */
function clientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  // Node's --headers-timeout-ms / --request-timeout-ms (http_server.ts): a
  // slow or silent client is told, counted, and cut.
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  if (timedOut) this.nlbridge.metrics.limitRefusals.inc({ limit: 'request-timeout' });
  const p = timedOut
    ? new Problem('REQUEST_TIMEOUT', 'the request was not received in time (--headers-timeout-ms, --request-timeout-ms)')
    : new Problem('VALIDATION', `malformed HTTP request (${err.code ?? err.message})`);
  if (socket.writable) socket.write(rawProblemResponse(p));
  this.log.debug({ err }, 'malformed or unfinished HTTP request');
  socket.destroy();
}

export async function buildApp(config: Config, deps: AppDeps): Promise<FastifyInstance> {
  const { bus, metrics, auth } = deps;
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger.child({}, { serializers: { req: requestSerializer as never } }) } : { logger: false }),
    bodyLimit: config.bodyLimit,
    // Timeouts, the connection cap and the listener tag (http_server.ts).
    serverFactory: (handler) => createHttpServer(config, metrics, handler),
    ajv: { customOptions: { ...AJV_OPTIONS } },
    // Two info lines per request meet journald's rate limit at bench rates and
    // write synchronously: requests are logged at debug (onResponse) and
    // counted in nlbridge_http_requests_total.
    logController: new LogController({ disableRequestLogging: true }),
    // While closing, requests on kept-alive connections get our own 503 problem (onRequest below).
    return503OnClosing: false,
    forceCloseConnections: 'idle',
    // The spec lets a mask be 300 characters (fastify's default cap is 100,
    // answered with a bare 414); longer ones are the schema's 400. Under
    // routerOptions: the top-level option prints FSTDEP022 at every start.
    routerOptions: { maxParamLength: 1024 },
    // Errors raised before routing (an undecodable %-escape, a param over
    // the cap) and HTTP the parser refuses are problems like every other.
    frameworkErrors: (err, request, reply) => {
      const bad = err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const p = bad ? new Problem('VALIDATION', `the URL cannot be routed: ${err.message}`, { field: 'url' }) : new Problem('INTERNAL', 'internal error (see the daemon log)');
      if (!bad) request.log.error({ err }, 'request failed');
      // An upgrade request's socket is off Node's HTTP server once handed to
      // the 'upgrade' listener, and @fastify/websocket's onResponse (which
      // closes it for routed refusals) does not run for an unroutable URL:
      // close it after the answer, or it stays open, half-closed, for good.
      // (IncomingMessage.upgrade is set by Node but missing from its types.)
      if ((request.raw as { upgrade?: boolean }).upgrade === true) reply.raw.once('finish', () => request.raw.socket.destroy());
      void (reply as unknown as FastifyReply).code(p.status).type('application/problem+json').send(p.body());
    },
    clientErrorHandler: clientError,
  }) as unknown as FastifyInstance;
  // JSON only: a browser can send text/plain cross-site without a preflight.
  app.removeContentTypeParser('text/plain');
  // JSON that is not UTF-8: the default parser decodes it with U+FFFD in
  // place of the bad bytes, and the message would go out altered. Refused.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const bytes = body as Buffer;
    if (!isUtf8(bytes)) {
      done(new Problem('BAD_DATA', 'the body is not valid UTF-8 (JSON text must be; send binary data with "encoding": "base64" or "hex")', { field: 'body' }), undefined);
      return;
    }
    parseJson(request, bytes.toString('utf8'), done);
  });
  // Node hands CONNECT to a 'connect' listener and, without one, closes the
  // connection unanswered: this is no proxy, say so like any unknown method.
  app.server.on('connect', (req: { method?: string; url?: string }, socket: Duplex) => {
    socket.end(rawProblemResponse(new Problem('NOT_FOUND', `no route ${req.method} ${String(req.url).slice(0, 100)}`)));
  });
  const streams = new Set<Stream>();
  const routes: { method: string; url: string }[] = [];
  const limits = new TokenLimits(config, metrics);
  app.decorate('nlbridge', { streams, stopping: false, routes, limits, metrics });
  app.decorateRequest('nlbridgeScope', null);
  app.decorateRequest('nlbridgeCredential', 'unix');
  // The served routes, so a test can hold them against openapi.yaml.
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });

  // Registered before our hooks: its onRequest marks upgrade requests, and its
  // onResponse destroys the socket of an upgrade we refuse.
  await app.register(websocket, {
    options: {
      maxPayload: config.wsMaxPayload,
      // Always the application's name, never the token-bearing one: a 101
      // that echoes bearer.<token> puts the secret in every proxy's log.
      // (Admission refuses an upgrade offering bearer.<token> without it.)
      handleProtocols: (protocols: Set<string>) => (protocols.has(APP_SUBPROTOCOL) ? APP_SUBPROTOCOL : false),
    },
    preClose(done) {
      for (const s of streams) s.closeWs(1001, 'server shutting down');
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

  // address() is a getsockname(2) per call; the TCP port does not change once
  // listening, and asking on every request cost 7 % of POST /send's CPU.
  let tcpPort: number | null = null;
  const listenPort = (): number | null => {
    if (tcpPort !== null) return tcpPort;
    const a = app.server.address();
    if (a !== null && typeof a === 'object') tcpPort = a.port;
    return tcpPort;
  };

  app.addHook('preClose', async () => {
    app.nlbridge.stopping = true;
  });

  // A client sends the same Host on every request: the verdict is kept
  // (bounded) instead of lower-casing and matching the allow-list each time.
  const hostVerdicts = new Map<string, boolean>();
  const hostVerdict = (host: string | undefined): boolean => {
    if (host === undefined) return false;
    let ok = hostVerdicts.get(host);
    if (ok === undefined) {
      const port = listenPort();
      ok = hostAllowed(host, config.allowedHosts, port);
      if (port !== null) {
        if (hostVerdicts.size >= 256) hostVerdicts.clear();
        hostVerdicts.set(host, ok);
      }
    }
    return ok;
  };

  /** The checks every request passes first (closing, Host, Origin, token, rate); the problem that refuses it, or null. */
  const admit = (request: FastifyRequest, reply: FastifyReply): Problem | null => {
    if (app.nlbridge.stopping && pathOf(request.url) !== '/healthz') {
      reply.header('connection', 'close');
      return new Problem('SHUTTING_DOWN', 'the bridge is shutting down');
    }
    if (viaUnixSocket(request)) {
      request.nlbridgeCredential = 'unix';
    } else {
      // Not the unix socket, so a TCP client: one whose address is unknown
      // has reset its connection already. Nobody will read the answer, and
      // nothing runs for a peer we cannot name.
      if (request.raw.socket.remoteAddress === undefined && !injected(request)) {
        metrics.authFailures.inc({ reason: 'peer-gone' });
        request.raw.socket.destroy();
        return new Problem('VALIDATION', 'the connection was reset before its request was read');
      }
      const host = request.headers.host;
      const hostOk = hostVerdict(host);
      if (!hostOk) {
        metrics.authFailures.inc({ reason: 'host' });
        return new Problem('HOST_NOT_ALLOWED', host === undefined ? 'the request has no Host header' : `Host "${String(host).slice(0, 100)}" is not in the allow-list (--allowed-hosts)`, { field: 'Host' });
      }
      const origin = request.headers.origin;
      if (!originAllowed(origin, host, config.allowedOrigins, hostOk)) {
        metrics.authFailures.inc({ reason: 'origin' });
        return new Problem('ORIGIN_NOT_ALLOWED', `Origin "${String(origin).slice(0, 100)}" may not use this API (--allowed-origins)`, { field: 'Origin' });
      }
      // @fastify/websocket marks a real upgrade (its onRequest runs first);
      // only there is a subprotocol a credential.
      const offered = (request as FastifyRequest & { ws?: boolean }).ws === true ? offeredSubprotocols(request.headers['sec-websocket-protocol']) : [];
      const subprotocolToken = tokenFromSubprotocols(offered);
      if (subprotocolToken !== null && !offered.includes(APP_SUBPROTOCOL)) {
        return new Problem('VALIDATION', `offer the subprotocol "${APP_SUBPROTOCOL}" with the token one ("${APP_SUBPROTOCOL}, ${TOKEN_SUBPROTOCOL_PREFIX}<token>"): the answer names "${APP_SUBPROTOCOL}", never the token`, { field: 'Sec-WebSocket-Protocol' });
      }
      request.nlbridgeCredential = `ip:${request.ip}`;
      if (auth.token !== null && !PUBLIC_PATHS.has(pathOf(request.url))) {
        const given = bearerFromHeader(request.headers.authorization) ?? subprotocolToken;
        const scope = given === null ? null : scopeOf(given, auth.token, auth.scoped ?? []);
        if (given === null || scope === null) {
          metrics.authFailures.inc({ reason: given === null ? 'no-token' : 'bad-token' });
          reply.header('www-authenticate', 'Bearer realm="nlbridge"');
          return new Problem(
            'UNAUTHORIZED',
            given === null
              ? 'a bearer token is required: Authorization: Bearer <token> (WebSocket: subprotocols nlbridge, bearer.<token>)'
              : 'the bearer token is wrong',
            { field: 'Authorization' },
          );
        }
        if (scope === FULL_SCOPE) {
          request.nlbridgeCredential = 'token:main';
        } else {
          request.nlbridgeScope = scope;
          request.nlbridgeCredential = `scoped:${scope.name}`;
          const path = pathOf(request.url);
          if (WHOLE_DAEMON_PATHS.has(path)) {
            metrics.authFailures.inc({ reason: 'scope' });
            return new Problem('PERMISSION_DENIED', `token "${scope.name}" may not read ${path}: it describes the whole daemon (use the main token or the unix socket)`, { field: 'Authorization' });
          }
        }
      }
    }
    if (request.method === 'POST') {
      try {
        limits.spendSend(request.nlbridgeCredential);
      } catch (err) {
        if (!(err instanceof Problem)) throw err;
        reply.header('retry-after', String(err.extra?.retryAfter ?? 60));
        return err;
      }
    }
    return null;
  };

  // Callback style, as onResponse below: an async hook costs a promise and a
  // tick per request (POST /send ÷ the bare fastify route, bench/).
  app.addHook('onRequest', (request, reply, done) => {
    let problem: Problem | null;
    try {
      problem = admit(request, reply);
    } catch (err) {
      done(err as Error);
      return;
    }
    done(problem ?? undefined);
  });

  // Callback style: an async hook costs a promise and a tick on every request.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequests.inc({ route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode });
    request.log.debug({ req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime }, 'request completed');
    done();
  });

  // A path that exists with other methods is 405 with Allow (RFC 9110 15.5.6), not 404.
  let routeMatchers: { method: string; path: RegExp }[] | null = null;
  const methodsFor = (path: string): string[] => {
    routeMatchers ??= routes.map((r) => ({ method: r.method, path: new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`) }));
    const methods = new Set(routeMatchers.filter((m) => m.path.test(path)).map((m) => m.method));
    if (methods.has('GET')) methods.add('HEAD');
    return [...methods].sort();
  };
  /** The answer for a request no route takes: 405 with Allow when the path is served with other methods, else 404. */
  const notFound = (request: FastifyRequest, reply: FastifyReply): Problem => {
    const path = pathOf(request.url);
    const allowed = methodsFor(path);
    if (allowed.length === 0) return new Problem('NOT_FOUND', `no route ${request.method} ${path}`);
    reply.header('allow', allowed.join(', '));
    return new Problem('METHOD_NOT_ALLOWED', `${request.method} is not served on ${path}; it serves ${allowed.join(', ')}`, { field: 'method' });
  };

  /** A failure of fastify's own (routing, body parsing, schema validation) as a problem. */
  const frameworkProblem = (e: FastifyError, request: FastifyRequest, reply: FastifyReply): Problem => {
    // No route: its body (unparsable, too large, of another type) does not matter.
    if (request.is404) return notFound(request, reply);
    if (e.validation) return problemFromAjv(e.validation as never, e.validationContext);
    switch (e.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new Problem('PAYLOAD_TOO_LARGE', `body is larger than ${config.bodyLimit} bytes (--body-limit)`, { field: 'body' });
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new Problem('UNSUPPORTED_MEDIA_TYPE', `Content-Type "${String(request.headers['content-type'] ?? '')}" is not supported; send application/json`, { field: 'Content-Type' });
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new Problem('VALIDATION', 'body is empty; send a JSON object', { field: 'body' });
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return new Problem('VALIDATION', `body is not valid JSON: ${e.message}`, { field: 'body' });
      default:
        if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
          return new Problem(e.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : e.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION', e.message, { field: 'body' });
        }
        request.log.error({ err: e }, 'request failed');
        return new Problem('INTERNAL', 'internal error (see the daemon log)');
    }
  };

  app.setErrorHandler((err: FastifyError, request, reply) => {
    // A Problem, or the netlink side's error mapped (problemOf); else fastify's own.
    const problem = problemOf(err) ?? frameworkProblem(err, request, reply);
    if (problem.status >= 500) request.log.warn({ code: problem.code, errno: problem.errno }, problem.message);
    reply.code(problem.status).type('application/problem+json').send(problem.body());
  });

  app.setNotFoundHandler((request, reply) => {
    const p = notFound(request, reply);
    reply.code(p.status).type('application/problem+json').send(p.body());
  });

  sendRoutes(app, bus);
  groupsRoutes(app, bus, config, metrics, streams);
  eventsRoutes(app, bus, config, metrics);
  statusRoutes(app, bus, metrics, auth, deps.version ?? '0.1.0', () => streams.size);
  metricsRoutes(app, bus, metrics);
  healthRoutes(app, bus, () => app.nlbridge.stopping);
  specRoutes(app);

  // Runs after in-flight requests finished: then the netlink sockets go.
  app.addHook('onClose', async () => {
    for (const s of streams) s.close();
    await bus.close();
  });

  return app;
}

// Admission: the checks every request passes before routing — shutting
// down, Host (DNS rebinding), Origin (cross-site), the bearer token and its
// scope, the per-credential send rate. One onRequest hook; a refusal is a
// Problem handed to the central error handler (errors.ts).

import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Problem } from '../errors';
import { listenerKindOf } from '../http_server';
import { FULL_SCOPE, scopeOf } from '../scopes';
import {
  APP_SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  bearerFromHeader,
  hostAllowed,
  offeredSubprotocols,
  originAllowed,
  tokenFromSubprotocols,
} from './request_checks';
import { pathOf } from './request_log';
import { CONSOLE_PUBLIC_PATHS } from './console';

/** Paths served without a token (the Host check still applies). */
const PUBLIC_PATHS = new Set(['/healthz', '/openapi.yaml', '/asyncapi.yaml', ...CONSOLE_PUBLIC_PATHS]);

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

/**
 * A WebSocket upgrade: Node sets `upgrade` on a request it hands to the
 * server's 'upgrade' listener (@fastify/websocket's, which routes it here).
 * Read from the raw request, not @fastify/websocket's `request.ws`: that
 * plugin lives in the streams routes' context only (issue 17: its hooks
 * cost every plain request ≈ 2 µs), and its onRequest runs after this one.
 */
export const isUpgrade = (request: FastifyRequest): boolean => (request.raw as { upgrade?: boolean }).upgrade === true;

export const admissionPlugin = fp(
  async (app: FastifyInstance) => {
    const { config, metrics, auth, limits } = app.nlbridge;

    // address() is a getsockname(2) per call; the TCP port does not change once
    // listening, and asking on every request cost 7 % of POST /send's CPU.
    let tcpPort: number | null = null;
    const listenPort = (): number | null => {
      if (tcpPort !== null) return tcpPort;
      const a = app.server.address();
      if (a !== null && typeof a === 'object') tcpPort = a.port;
      return tcpPort;
    };

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

    /** The problem that refuses a request, or null. */
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
          return new Problem(
            'HOST_NOT_ALLOWED',
            host === undefined
              ? 'the request has no Host header'
              : `Host "${String(host).slice(0, 100)}" is not in the allow-list (--allowed-hosts)`,
            { field: 'Host' },
          );
        }
        const origin = request.headers.origin;
        if (!originAllowed(origin, host, config.allowedOrigins, hostOk)) {
          metrics.authFailures.inc({ reason: 'origin' });
          return new Problem('ORIGIN_NOT_ALLOWED', `Origin "${String(origin).slice(0, 100)}" may not use this API (--allowed-origins)`, {
            field: 'Origin',
          });
        }
        // Only on a real upgrade is a subprotocol a credential.
        const offered = isUpgrade(request) ? offeredSubprotocols(request.headers['sec-websocket-protocol']) : [];
        const subprotocolToken = tokenFromSubprotocols(offered);
        if (subprotocolToken !== null && !offered.includes(APP_SUBPROTOCOL)) {
          return new Problem(
            'VALIDATION',
            `offer the subprotocol "${APP_SUBPROTOCOL}" with the token one ("${APP_SUBPROTOCOL}, ${TOKEN_SUBPROTOCOL_PREFIX}<token>"): the answer names "${APP_SUBPROTOCOL}", never the token`,
            { field: 'Sec-WebSocket-Protocol' },
          );
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
              return new Problem(
                'PERMISSION_DENIED',
                `token "${scope.name}" may not read ${path}: it describes the whole daemon (use the main token or the unix socket)`,
                { field: 'Authorization' },
              );
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

    // Callback style: an async hook costs a promise and a tick per request
    // (POST /send ÷ the bare fastify route, bench/).
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
  },
  { name: 'nlbridge-admission', dependencies: ['nlbridge-state'] },
);

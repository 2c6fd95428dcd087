// Every refusal becomes application/problem+json here, in one place: a
// Problem thrown anywhere (admission, a route, the bus), fastify's own
// errors (schema, body parser), unknown routes (404, or 405 with Allow),
// errors raised before routing, and HTTP that Node's parser refuses. A 5xx
// tells the client nothing of its cause; the log gets the error.

import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { Problem, problemOf } from '../errors';
import { problemFromAjv } from '../validation';
import { isUpgrade } from './admission';
import { pathOf } from './request_log';

const PROBLEM_TYPE = 'application/problem+json';

/** A whole HTTP/1.1 response carrying a problem, for sockets no route answers. */
export function rawProblemResponse(p: Problem): string {
  const body = JSON.stringify(p.body());
  return `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status]}\r\nContent-Type: ${PROBLEM_TYPE}; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * HTTP that Node's parser refuses (a bad method token or request line,
 * conflicting lengths, headers too large or too slow) never reaches a route:
 * answered with the same problem+json a route would, then closed. fastify's
 * `clientErrorHandler` option.
 */
export function clientError(this: FastifyInstance, err: NodeJS.ErrnoException, socket: Duplex): void {
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

/** fastify's `frameworkErrors` option: errors raised before routing (an undecodable %-escape, a param over the cap). */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const bad = err.code === 'FST_ERR_BAD_URL' || err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  const p = bad
    ? new Problem('VALIDATION', `the URL cannot be routed: ${err.message}`, { field: 'url' })
    : new Problem('INTERNAL', 'internal error (see the daemon log)');
  if (!bad) request.log.error({ err }, 'request failed');
  // An upgrade request's socket is off Node's HTTP server once handed to the
  // 'upgrade' listener, and no onResponse runs for an unroutable URL: close
  // it after the answer, or it stays open, half-closed, for good.
  if (isUpgrade(request)) reply.raw.once('finish', () => request.raw.socket.destroy());
  void reply.code(p.status).type(PROBLEM_TYPE).send(p.body());
}

/** fastify's errors (schema, body, content type) as the API's problems; anything else is a 500 whose cause only the log sees. */
function frameworkProblem(err: FastifyError, request: FastifyRequest, bodyLimit: number): Problem {
  if (err.validation) return problemFromAjv(err.validation as never, err.validationContext);
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new Problem('PAYLOAD_TOO_LARGE', `body is larger than ${bodyLimit} bytes (--body-limit)`, { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new Problem(
        'UNSUPPORTED_MEDIA_TYPE',
        `Content-Type "${String(request.headers['content-type'] ?? '')}" is not supported; send application/json`,
        { field: 'Content-Type' },
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Problem('VALIDATION', 'body is empty; send a JSON object', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new Problem('VALIDATION', `body is not valid JSON: ${err.message}`, { field: 'body' });
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
    return new Problem(
      err.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : err.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION',
      err.message,
      { field: 'body' },
    );
  }
  request.log.error({ err }, 'request failed');
  return new Problem('INTERNAL', 'internal error (see the daemon log)');
}

export const errorsPlugin = fp(
  async (app: FastifyInstance) => {
    const { routes, config } = app.nlbridge;

    // A path that exists with other methods is 405 with Allow (RFC 9110 15.5.6), not 404.
    let routeMatchers: { method: string; path: RegExp }[] | null = null;
    const methodsFor = (path: string): string[] => {
      routeMatchers ??= routes.map((r) => ({
        method: r.method,
        path: new RegExp(`^${r.url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:[A-Za-z]+/g, '[^/]+')}$`),
      }));
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
      return new Problem('METHOD_NOT_ALLOWED', `${request.method} is not served on ${path}; it serves ${allowed.join(', ')}`, {
        field: 'method',
      });
    };

    app.setErrorHandler((err: FastifyError | Problem, request, reply) => {
      // A Problem, or the netlink side's error mapped (problemOf, once, in
      // errors.ts); else fastify's own. No route: its body (unparsable, too
      // large, of another type) does not matter.
      const problem =
        problemOf(err) ?? (request.is404 ? notFound(request, reply) : frameworkProblem(err as FastifyError, request, config.bodyLimit));
      if (problem.status >= 500) request.log.warn({ code: problem.code, errno: problem.errno }, problem.message);
      void reply.code(problem.status).type(PROBLEM_TYPE).send(problem.body());
    });

    app.setNotFoundHandler((request, reply) => {
      const p = notFound(request, reply);
      void reply.code(p.status).type(PROBLEM_TYPE).send(p.body());
    });

    // Node hands CONNECT to a 'connect' listener and, without one, closes the
    // connection unanswered: this is no proxy, say so like any unknown method.
    app.server.on('connect', (req: { method?: string; url?: string }, socket: Duplex) => {
      socket.end(rawProblemResponse(new Problem('NOT_FOUND', `no route ${req.method} ${String(req.url).slice(0, 100)}`)));
    });
  },
  { name: 'nlbridge-errors', dependencies: ['nlbridge-state'] },
);

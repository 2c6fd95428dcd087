// The Node HTTP servers the app is reached through (TCP, the unix socket,
// sockets from systemd), with the bounds every connection lives under, and
// the one fact admission must not guess: which listener accepted a
// connection.
//
// Why by listener: the unix socket is authorized by its file mode and group,
// so its requests skip the token, Host and Origin checks. Guessing "unix"
// from a missing remoteAddress let a TCP client in with full rights: send a
// request, reset the connection at once (SO_LINGER {1, 0}), and getpeername
// fails by the time the request is looked at (reliability case 12).

import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from './config';
import type { Metrics } from './metrics';

export type ListenerKind = 'tcp' | 'unix';

const LISTENER_KIND = Symbol('nlbridge.listenerKind');

type TaggedSocket = Socket & { [LISTENER_KIND]?: ListenerKind };

/**
 * How the listener that accepted `socket` is reached; undefined for a socket
 * no listener accepted (fastify's inject), which admission treats as TCP.
 */
export function listenerKindOf(socket: Socket): ListenerKind | undefined {
  return (socket as TaggedSocket)[LISTENER_KIND];
}

/** How often Node looks for connections past their headers or request timeout. */
const TIMEOUT_CHECK_MS = 1000;

/** How long a closing connection may keep sending before it is cut (see lingerOnClose). */
export const LINGER_MS = 2000;

/**
 * Lingering close, as Apache and nginx do it. An answer that ends the
 * connection before the request body was read (413 from the content-length
 * check, which fastify sends with `Connection: close`) was followed by
 * close(2) with the client's bytes still unread, and the kernel answers that
 * with a RST: a client still writing its body got EPIPE or ECONNRESET and
 * lost the 413 that was already on its way (1 request in 200 here). So the
 * close becomes a half-close: send FIN, keep reading and discarding what the
 * client still sends, and close when the client closes its side or after
 * LINGER_MS, whichever is first. The connection stays counted in
 * maxConnections meanwhile, so the bound on held sockets is unchanged.
 */
function lingerOnClose(socket: Socket): void {
  socket.destroySoon = function lingeringDestroySoon(this: Socket): void {
    if (this.destroyed) return;
    const cut = setTimeout(() => this.destroy(), LINGER_MS);
    this.once('close', () => clearTimeout(cut));
    this.once('end', () => this.destroy());
    if (this.writable) this.end();
    // Whatever still arrives is read (by the HTTP parser, into the finished
    // request's dumped body) and dropped; a paused socket would read nothing.
    this.resume();
  };
}

export type ServerBounds = Pick<Config, 'maxConnections' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>;

/**
 * A server with the connection bounds of `config` whose every connection is
 * tagged with its listener's kind. The kind is read from the listening
 * address once bound (a path for a unix socket), so it is right for sockets
 * handed over by systemd too.
 */
export function createHttpServer(config: ServerBounds, metrics: Metrics, handler?: http.RequestListener): http.Server {
  const server = http.createServer(
    {
      // A request without Host must reach admission, which answers the
      // documented 403 HOST_NOT_ALLOWED problem (Node's own answer is a bare 400).
      requireHostHeader: false,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: TIMEOUT_CHECK_MS,
    },
    handler,
  );
  // Per listener; upgraded WebSockets stay counted until they close.
  server.maxConnections = config.maxConnections;
  server.on('drop', () => metrics.limitRefusals.inc({ limit: 'connections' }));
  // The listening address does not change once bound: read it once
  // (address() is a getsockname(2)), not per connection.
  let kind: ListenerKind = 'tcp';
  server.on('listening', () => {
    kind = typeof server.address() === 'string' ? 'unix' : 'tcp';
  });
  server.on('connection', (socket: TaggedSocket) => {
    socket[LISTENER_KIND] = kind;
    lingerOnClose(socket);
  });
  return server;
}

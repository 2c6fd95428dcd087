// Shutdown on SIGTERM or SIGINT, through close-with-grace → app.close(), as
// fastify's demo server does: STOPPING=1 to systemd, a short grace in which
// requests are answered 503, then the hooks in order (clients closed with
// 1001, in-flight requests and sends finished, netlink sockets closed), the
// unix socket file removed, exit 0. Past --shutdown-timeout-ms, exit 1; a
// second signal while stopping also ends it at once with 1.

import closeWithGrace from 'close-with-grace';
import * as fs from 'node:fs';
import type * as http from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config';
import { sdNotify } from './sd_notify';

/** How long a stopping daemon still accepts requests, to answer them 503. */
const SHUTDOWN_GRACE_MS = 250;

/**
 * close-with-grace listens to many signals and to uncaught errors and
 * beforeExit; the daemon's contract is SIGTERM and SIGINT (daemon/README.md),
 * and an uncaught error still ends it at once with its stack.
 */
const NOT_OURS = [
  'SIGHUP',
  'SIGQUIT',
  'SIGILL',
  'SIGTRAP',
  'SIGABRT',
  'SIGBUS',
  'SIGFPE',
  'SIGSEGV',
  'SIGUSR2',
  'uncaughtException',
  'unhandledRejection',
  'beforeExit',
] as const;

export interface ShutdownParts {
  app: FastifyInstance;
  log: Logger;
  config: Config;
  /** Listeners besides the app's own server (socket activation's extra fds, the unix socket). */
  extra: http.Server[];
  watchdog: NodeJS.Timeout | null;
}

/** Takes over SIGTERM and SIGINT; `earlySignal` is one that came while the daemon was starting, acted on now. */
export function installShutdown(parts: ShutdownParts, earlySignal: string | null): void {
  const { app, log, config, extra, watchdog } = parts;
  const grace = closeWithGrace(
    {
      delay: config.shutdownTimeoutMs,
      skip: [...NOT_OURS],
      logger: { error: (err: unknown) => log.error({ err }, 'shutdown failed') },
      onTimeout: () => log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting'),
      onSecondSignal: (signal: string) => log.warn({ signal }, 'second signal while shutting down; exiting'),
    },
    async ({ signal }) => {
      app.nlbridge.stopping = true;
      log.info({ signal: signal ?? earlySignal }, 'shutting down');
      sdNotify('STOPPING=1');
      if (watchdog) clearInterval(watchdog);
      // Keep listening a moment, answering 503 (http/admission.ts): Node's
      // close() resets connections whose request is not read yet and drops
      // ones still waiting to be accepted, so a request sent just after the
      // signal would otherwise get ECONNRESET instead of an answer.
      await new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS));
      const closeExtra = Promise.all(extra.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of extra) s.closeIdleConnections();
      await Promise.all([app.close(), closeExtra]);
      if (config.unixSocket) fs.rmSync(config.unixSocket, { force: true });
      log.info('stopped');
    },
  );
  if (earlySignal !== null) void grace.close();
}

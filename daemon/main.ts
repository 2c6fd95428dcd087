// nlbridge entry: config → bus → app → listen → tell systemd; signals.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { restrictNetlink } from '../addon/seccomp';
import { buildApp } from './app';
import { Bus } from './bus';
import { ConfigError, loadConfig, type Config } from './config';
import { Metrics } from './metrics';
import { ProtocolError, resolveProtocol } from './protocol';
import { holdsNetAdmin, setupAuth } from './security';
import { hasNativeSdNotify, notifyWanted, sdNotify, watchdogIntervalMs } from './sd_notify';

/** How long a stopping daemon still accepts requests, to answer them 503. */
const SHUTDOWN_GRACE_MS = 250;

const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** fds handed over by systemd socket activation (sd_listen_fds(3)), starting at 3. */
function listenFds(env: NodeJS.ProcessEnv): number[] {
  if (!env.LISTEN_FDS || Number(env.LISTEN_PID) !== process.pid) return [];
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n < 1) return [];
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return Array.from({ length: n }, (_, i) => 3 + i);
}

function listenOn(server: net.Server, target: net.ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A second HTTP server feeding the same fastify router (and its WebSocket upgrades). */
function extraServer(app: FastifyInstance): http.Server {
  const s = http.createServer((req, res) => app.routing(req, res));
  s.on('upgrade', (req, socket, head) => app.server.emit('upgrade', req, socket, head));
  return s;
}

function groupId(group: string): number {
  if (/^[0-9]+$/.test(group)) return Number(group);
  const out = execFileSync('getent', ['group', group], { encoding: 'utf8' });
  return Number(out.split(':')[2]);
}

async function listen(app: FastifyInstance, config: Config, log: pino.Logger): Promise<http.Server[]> {
  const extra: http.Server[] = [];
  const fds = listenFds(process.env);
  await app.ready();
  if (fds.length > 0) {
    await listenOn(app.server, { fd: fds[0] });
    for (const fd of fds.slice(1)) {
      const s = extraServer(app);
      await listenOn(s, { fd });
      extra.push(s);
    }
    log.info({ fds, address: app.server.address() }, 'listening on sockets from systemd (LISTEN_FDS)');
    return extra;
  }
  const unixPath = config.unixSocket;
  const listenUnix = async (server: http.Server, p: string): Promise<void> => {
    try {
      if (fs.statSync(p).isSocket()) fs.unlinkSync(p);
    } catch {
      /* absent */
    }
    await listenOn(server, { path: p });
    fs.chmodSync(p, config.unixSocketMode);
    if (config.unixSocketGroup) fs.chownSync(p, process.getuid?.() ?? 0, groupId(config.unixSocketGroup));
    log.info({ path: p, mode: config.unixSocketMode.toString(8), group: config.unixSocketGroup }, 'listening on unix socket (access by file mode and group, no token)');
  };
  if (config.port !== null) {
    await listenOn(app.server, { host: config.host, port: config.port });
    log.info({ address: app.server.address() }, `listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${(app.server.address() as net.AddressInfo).port}`);
    if (unixPath) {
      const s = extraServer(app);
      await listenUnix(s, unixPath);
      extra.push(s);
    }
  } else if (unixPath) {
    await listenUnix(app.server, unixPath);
  }
  return extra;
}

async function main(): Promise<number> {
  // Signals are ours from the first line: one that came while the daemon was
  // still setting up (even after it logged "listening") ended the process by
  // the default action, resetting the connections it had accepted. Until the
  // shutdown below is in place, a signal is remembered and acted on then.
  let earlySignal: string | null = null;
  // A second one before then ends it at once, as a second Ctrl-C would.
  let onSignal = (signal: string): void => {
    if (earlySignal !== null) process.exit(1);
    earlySignal = signal;
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));

  let loaded;
  try {
    loaded = loadConfig({ argv: process.argv.slice(2), env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`nlbridge: ${err.message}\n(see nlbridge --help)\n`);
      return 2;
    }
    throw err;
  }
  if (loaded.kind === 'help') {
    process.stdout.write(loaded.text);
    return 0;
  }
  const config = loaded.config;
  const log = pino({
    level: config.logLevel,
    base: { pid: process.pid, name: 'nlbridge' },
    redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]'],
  }, pino.destination({ dest: 1, sync: true }));

  let protocol;
  try {
    protocol = resolveProtocol(config.protocol, config.sysfsRoot);
  } catch (err) {
    if (err instanceof ProtocolError) {
      log.fatal(err.message);
      return 2;
    }
    throw err;
  }
  log.info({ protocol: protocol.name, number: protocol.number, kernelEndpoint: protocol.kernelEndpoint, module: protocol.module, configFile: loaded.configFile }, `netlink protocol ${protocol.name} (${protocol.number}): ${protocol.reason}`);

  const netAdmin = holdsNetAdmin();
  let auth;
  try {
    auth = setupAuth(config, process.env, netAdmin);
  } catch (err) {
    log.fatal((err as Error).message);
    return 2;
  }
  if (auth.token === null) {
    log.info({ auth: config.auth, netAdmin }, 'no token required (the daemon holds no CAP_NET_ADMIN, or --auth none)');
  } else if (auth.generated) {
    log.info({ tokenFile: auth.source, netAdmin }, `a bearer token is required; one was generated into ${auth.source} (mode 0600): curl -H "Authorization: Bearer $(cat ${auth.source})" …`);
  } else {
    log.info({ tokenFile: auth.source }, 'a bearer token is required; read from file');
  }
  if (auth.token !== null && auth.scoped && auth.scoped.length > 0) {
    // Names and limits only, never the secrets.
    log.info({ scopedTokens: auth.scoped.map((t) => t.scope) }, `${auth.scoped.length} scoped token(s) accepted besides the main one`);
  }

  const metrics = new Metrics();
  let bus: Bus;
  try {
    bus = new Bus({ protocol, rcvbuf: config.rcvbuf, ackTimeoutMs: config.ackTimeoutMs, dedupeWindowMs: config.dedupeWindowMs,
      ring: { maxMessages: config.ringMessages, maxAgeMs: config.ringMaxAgeMs, maxBytes: config.ringMaxBytes },
      ringLingerMs: config.ringLingerMs,
      log: log.child({ component: 'bus' }),
      metrics,
    });
  } catch (err) {
    log.fatal({ err }, `cannot open netlink protocol ${protocol.number}`);
    return 1;
  }
  log.info({ txPortId: bus.tx.portId, rxPortId: bus.rx.portId }, 'netlink sockets open');
  // Issue 13: from here on, injected code holding CAP_NET_ADMIN cannot open
  // netlink sockets of other protocols nor reconfigure the network through
  // other sockets (addon/seccomp.ts, daemon/README.md). Fail closed, but on
  // an architecture the filter does not know.
  try {
    const seccomp = restrictNetlink({ protocols: [protocol.number] });
    log.info({ seccomp }, `seccomp filter installed: new netlink sockets for protocol ${protocol.name} (${protocol.number}) only; network configuration through other sockets, io_uring and bpf refused (EPERM)`);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOTSUP') {
      log.fatal({ err }, 'cannot install the seccomp filter that contains CAP_NET_ADMIN');
      return 1;
    }
    log.warn({ err }, 'no seccomp filter on this architecture: code running in the daemon keeps the whole of CAP_NET_ADMIN');
  }

  const app = await buildApp(config, { bus, metrics, auth, logger: log, version: VERSION });
  let extra: http.Server[];
  try {
    extra = await listen(app, config, log);
  } catch (err) {
    log.fatal({ err }, 'cannot listen');
    await app.close();
    return 1;
  }

  if (notifyWanted() && !hasNativeSdNotify()) log.warn('NOTIFY_SOCKET is set but the addon has no sdNotify: systemd will not hear READY=1');
  sdNotify(`READY=1\nSTATUS=serving on protocol ${protocol.name} (${protocol.number})`);
  const wd = watchdogIntervalMs();
  const watchdog = wd !== null ? setInterval(() => sdNotify('WATCHDOG=1'), wd) : null;
  if (wd !== null) log.info({ intervalMs: wd }, 'systemd watchdog enabled');

  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      app.nlbridge.stopping = true;
      log.info({ signal }, 'shutting down');
      sdNotify('STOPPING=1');
      if (watchdog) clearInterval(watchdog);
      const force = setTimeout(() => {
        log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown took too long; exiting');
        resolve(1);
      }, config.shutdownTimeoutMs);
      force.unref();
      // Keep listening a moment, answering 503 (see the stopping hook in app.ts):
      // Node's close() resets connections whose request is not read yet and
      // drops ones still waiting to be accepted, so a request sent just after
      // the signal would otherwise get ECONNRESET instead of an answer.
      const closeAll = (): Promise<unknown> => {
        const closeExtra = Promise.all(extra.map((s) => new Promise<void>((r) => s.close(() => r()))));
        for (const s of extra) s.closeIdleConnections();
        return Promise.all([app.close(), closeExtra]);
      };
      new Promise((r) => setTimeout(r, SHUTDOWN_GRACE_MS)).then(closeAll).then(
        () => {
          clearTimeout(force);
          if (config.unixSocket) fs.rmSync(config.unixSocket, { force: true });
          log.info('stopped');
          resolve(0);
        },
        (err: unknown) => {
          clearTimeout(force);
          log.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    onSignal = stop;
    if (earlySignal !== null) stop(earlySignal);
  });
}

main().then(
  (code) => {
    // pino writes synchronously to stdout by default; exit once it is flushed.
    process.exitCode = code;
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`nlbridge: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  },
);

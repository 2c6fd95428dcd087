#!/usr/bin/env node
// nlbridge entry: config → bus → app → listen → tell systemd; signals.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import pino from 'pino';
import { restrictNetlink } from '../addon/seccomp';
import { NetlinkError, NetlinkSocket, NetworkNamespace } from '../addon/socket';
import { buildApp } from './app';
import { listen, ListenError } from './listen';
import { createLogger, routeConsole } from './log';
import { Bus } from './netlink/bus';
import { ConfigError, loadConfig } from './config/load';
import type { Config } from './config/schema';
import { Metrics } from './metrics';
import { ProtocolError, resolveProtocol } from './netlink/protocol';
import { toSendRequest, type SendBody } from './http/send_body';
import type { TokenLimits } from './token_limits';
import { validateSendRequest } from './validation';
import { parseRequestJson } from './request_json';
import { Problem, problemOf } from './errors';
import { configSecretProblem, holdsNetAdmin, saveTokenFiles, setupAuth, type AuthSetup } from './security';
import { TokenStoreError } from './token_files';
import { hasNativeSdNotify, notifyWanted, sdNotify, watchdogIntervalMs } from './sd_notify';
import { installShutdown } from './shutdown';
import { busOptionsFrom } from './bus_options';
import { checkSend, natsSendScopeOf } from './scopes';

/** The --rate-limit budget NATS send requests draw on (daemon/fleet/). */
const NATS_CREDENTIAL = 'nats';

const VERSION: string = (() => {
  try {
    return (JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

/** Says whether a token is required and where it is (never the token). */
function logAuth(log: pino.Logger, auth: AuthSetup, netAdmin: boolean, config: Config): void {
  if (auth.token === null) {
    if (!netAdmin) {
      // Not an error: a user may run it for themselves. But say what it means.
      log.warn(
        { auth: config.auth, netAdmin },
        'the daemon holds no CAP_NET_ADMIN: no token is required, so any local user can send through it (with no more rights than their own: ' +
          'NETLINK_USERSOCK lets anyone send); streams cannot join groups (EPERM) and are refused; see "Unprivileged start" in daemon/README.md',
      );
    } else log.info({ auth: config.auth, netAdmin }, 'no token required (--auth none)');
    return;
  }
  const use = auth.headerFile ? `: curl -H @${auth.headerFile} …` : '';
  if (auth.generated && auth.kept) {
    log.info(
      { tokenFile: auth.source, headerFile: auth.headerFile, netAdmin },
      `a bearer token is required; the one in ${auth.source} is kept from an earlier start (delete the file for a new one)${use}`,
    );
  } else if (auth.generated) {
    log.info(
      { tokenFile: auth.source, headerFile: auth.headerFile, netAdmin },
      `a bearer token is required; a new one was made into ${auth.source} (mode 0600)${use}`,
    );
  } else {
    log.info({ tokenFile: auth.source, headerFile: auth.headerFile }, `a bearer token is required; read from file${use}`);
  }
  if (auth.scoped && auth.scoped.length > 0) {
    // Names and limits only, never the secrets.
    log.info({ scopedTokens: auth.scoped.map((t) => t.scope) }, `${auth.scoped.length} scoped token(s) accepted besides the main one`);
  }
}

async function main(): Promise<number> {
  // Signals are ours from the first line: one that came while the daemon was
  // still setting up (even after it logged "listening") ended the process by
  // the default action, resetting the connections it had accepted. Until the
  // shutdown below is in place, a signal is remembered and acted on then.
  let earlySignal: string | null = null;
  // A second one before then ends it at once, as a second Ctrl-C would.
  let shutdownInstalled = false;
  const onEarlySignal = (signal: string): void => {
    if (shutdownInstalled) return;
    if (earlySignal !== null) process.exit(1);
    earlySignal = signal;
  };
  process.on('SIGTERM', onEarlySignal);
  process.on('SIGINT', onEarlySignal);

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
  if (loaded.kind === 'version') {
    process.stdout.write(`nlbridge ${VERSION}\n`);
    return 0;
  }
  const config = loaded.config;
  // The fleet's code and the NATS client are loaded only with --nats.
  let fleetCode: typeof import('./fleet/index') | null = null;
  let fleetChecked: import('./fleet/index').CheckedFleet | null = null;
  if (config.nats.length > 0) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const code = require('./fleet/index') as typeof import('./fleet/index');
    fleetCode = code;
    try {
      fleetChecked = code.checkFleetSettings(config);
    } catch (err) {
      if (err instanceof code.FleetConfigError) {
        process.stderr.write(`nlbridge: ${err.message}\n(see nlbridge --help)\n`);
        return 2;
      }
      throw err;
    }
  }
  const log = createLogger(config.logLevel);
  routeConsole(log);

  let protocol;
  try {
    protocol = resolveProtocol(config.protocol, config.sysfsRoot, config.netns);
  } catch (err) {
    if (err instanceof ProtocolError) {
      log.fatal(err.message);
      return 2;
    }
    throw err;
  }
  // --nats-publish was read before the protocol was known: its groups must be the protocol's.
  const tooHigh = fleetChecked?.groups.find((g) => g > protocol.maxGroup);
  if (tooHigh !== undefined) {
    process.stderr.write(
      `nlbridge: --nats-publish: group ${tooHigh} is above the ${protocol.maxGroup} groups of protocol ${protocol.name} (${protocol.number})\n(see nlbridge --help)\n`,
    );
    return 2;
  }
  log.info(
    {
      protocol: protocol.name,
      number: protocol.number,
      kernelEndpoint: protocol.kernelEndpoint,
      module: protocol.module,
      configFile: loaded.configFile,
    },
    `netlink protocol ${protocol.name} (${protocol.number}): ${protocol.reason}`,
  );

  const netAdmin = holdsNetAdmin();
  const secretProblem = configSecretProblem(config, loaded.configFile);
  if (secretProblem !== null) {
    log.fatal(secretProblem);
    return 2;
  }
  let auth;
  try {
    auth = setupAuth(config, process.env, netAdmin);
  } catch (err) {
    log.fatal((err as Error).message);
    return 2;
  }
  for (const w of auth.warnings ?? []) log.warn(w);
  const metrics = new Metrics({ version: VERSION });
  let bus: Bus;
  try {
    // --netns: every netlink socket, the later ?unicast=1 ones too, is made
    // inside that namespace (the fd stays open for the daemon's life); the
    // listeners and NATS are opened by this thread at home as always.
    const netns = config.netns === null ? null : NetworkNamespace.open(config.netns);
    const openSocket =
      netns === null ? {} : { openSocket: (o: Parameters<typeof NetlinkSocket.open>[0]) => NetlinkSocket.open({ ...o, netns }) };
    bus = new Bus(busOptionsFrom(config, { protocol, log: log.child({ component: 'bus' }), metrics, ...openSocket }));
  } catch (err) {
    if (config.netns !== null && err instanceof NetlinkError && ['open', 'ioctl', 'setns'].includes(err.syscall)) {
      log.fatal({ netns: config.netns, code: err.code }, `--netns: ${err.message}`);
      return 2;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === 'MODULE_NOT_FOUND' || code === 'ERR_DLOPEN_FAILED') && /nlbridge_netlink\.node/.test(String((err as Error).message))) {
      const root = path.resolve(__dirname, '../..');
      log.fatal(
        code === 'MODULE_NOT_FOUND'
          ? `the native addon is not built (${path.join(root, 'build/Release/nlbridge_netlink.node')} is missing): build it with "npm ci" (or "npx node-gyp rebuild") in ${root}`
          : `the native addon ${path.join(root, 'build/Release/nlbridge_netlink.node')} cannot be loaded (${String((err as Error).message).split('\n')[0]}): rebuild it with "npx node-gyp rebuild" in ${root}`,
      );
      return 1;
    }
    log.fatal(
      { err, netns: config.netns },
      `cannot open netlink protocol ${protocol.number}${config.netns === null ? '' : ` in network namespace ${config.netns}`}`,
    );
    return 1;
  }
  log.info(
    { txPortId: bus.tx.portId, rxPortId: bus.rx.portId, netns: config.netns },
    config.netns === null ? 'netlink sockets open' : `netlink sockets open in network namespace ${config.netns}`,
  );
  // Issue 13: from here on, injected code holding CAP_NET_ADMIN cannot open
  // netlink sockets of other protocols nor reconfigure the network through
  // other sockets (addon/seccomp.ts, daemon/README.md). Fail closed, but on
  // an architecture the filter does not know.
  try {
    const seccomp = restrictNetlink({ protocols: [protocol.number] });
    log.info(
      { seccomp },
      `seccomp filter installed: new netlink sockets for protocol ${protocol.name} (${protocol.number}) only; network configuration through other sockets, io_uring and bpf refused (EPERM)`,
    );
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOTSUP') {
      log.fatal({ err }, 'cannot install the seccomp filter that contains CAP_NET_ADMIN');
      return 1;
    }
    log.warn({ err }, 'no seccomp filter on this architecture: code running in the daemon keeps the whole of CAP_NET_ADMIN');
  }

  let fleet: import('./fleet/index').Fleet | null = null;
  let natsLimits: TokenLimits | null = null;
  if (fleetCode && fleetChecked) {
    // The same steps as POST /send: the body's schema, the request, the bus.
    // NATS requests draw on one --rate-limit budget of their own, as one more token would.
    const b = bus;
    const fleetLog = log.child({ component: 'fleet' });
    // Issue 13's rule on every send path: what a NATS peer may send is the
    // config file's "natsSendScope", checked by the same code as a token's.
    const natsScope = natsSendScopeOf(config.natsSendScope);
    if (config.natsSend === 'on') {
      const limits = {
        sendGroups: natsScope.sendGroups,
        sendPorts: natsScope.sendPorts,
        sendTypes: natsScope.sendTypes,
        kernel: natsScope.kernel,
      };
      if (config.natsSendScope === null)
        fleetLog.warn(
          { natsSendScope: null },
          'NATS sends (--nats-send on) are all refused (403 PERMISSION_DENIED): the config file has no "natsSendScope" saying what they may do',
        );
      else fleetLog.info({ natsSendScope: limits }, 'NATS sends (--nats-send on) are limited to "natsSendScope"');
    }
    const send = async (bytes: Uint8Array): Promise<{ status: number; body: unknown }> => {
      try {
        // POST /send's own parser: --body-limit, UTF-8, JSON without prototype keys.
        const body = parseRequestJson(bytes, config.bodyLimit);
        validateSendRequest(body);
        const req = toSendRequest(body as SendBody);
        checkSend(natsScope, req);
        natsLimits?.spendSend(NATS_CREDENTIAL);
        return { status: 200, body: await b.send(req) };
      } catch (err) {
        let p = problemOf(err);
        if (p === null) {
          fleetLog.error({ err }, 'NATS send request failed');
          p = new Problem('INTERNAL', 'internal error (see the daemon log)');
        }
        return { status: p.status, body: p.body() };
      }
    };
    fleet = fleetCode.startFleet(config, fleetChecked, bus, fleetLog, send);
    const f = fleet;
    metrics.exposeFleet(() => f.counts(), config.natsJetstream === 'on');
  }
  const app = await buildApp(config, { bus, metrics, auth, logger: log, version: VERSION, fleet });
  natsLimits = app.nlbridge.limits;
  let extra: http.Server[];
  try {
    const listening = await listen(app, config);
    extra = listening.extra;
    // Only now, with every listener bound: a start that fails (the port held
    // by a running daemon) never touches that daemon's token files.
    saveTokenFiles(auth);
    logAuth(log, auth, netAdmin, config);
    for (const [fields, msg] of listening.announce) log.info(fields, msg);
  } catch (err) {
    if (err instanceof ListenError || err instanceof TokenStoreError) log.fatal(err.message);
    else log.fatal({ err }, 'cannot listen');
    await app.close();
    return err instanceof ListenError ? err.exitCode : err instanceof TokenStoreError ? 2 : 1;
  }

  if (notifyWanted() && !hasNativeSdNotify()) log.warn('NOTIFY_SOCKET is set but the addon has no sdNotify: systemd will not hear READY=1');
  sdNotify(`READY=1\nSTATUS=serving on protocol ${protocol.name} (${protocol.number})`);
  const wd = watchdogIntervalMs();
  const watchdog = wd !== null ? setInterval(() => sdNotify('WATCHDOG=1'), wd) : null;
  if (wd !== null) log.info({ intervalMs: wd }, 'systemd watchdog enabled');

  // From here close-with-grace owns the signals (shutdown.ts) and ends the
  // process. The early listeners stay (idle): removing a signal's last
  // listener stops libuv's watcher, and a signal that arrived during the
  // synchronous start but was not yet dispatched would be lost.
  shutdownInstalled = true;
  installShutdown({ app, log, config, extra, watchdog }, earlySignal);
  return new Promise<number>(() => {});
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

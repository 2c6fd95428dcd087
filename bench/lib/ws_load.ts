// WebSocket receive runs shared by the websocketd and nlbridge scenarios:
// clients spread over a few processes, probes until every client hears the
// group (the whole path is up), an optional warm-up, the measured flood from
// the C sender; then collect and add up.

import * as net from 'node:net';
import { flood, type FloodOptions } from '../scenarios/socket_level';
import { cpuSeconds, sleep, startAgent, startC, type JsonObject, type Proc } from './proc';
import type { Profile } from './profile';
import { num, type Measurement } from './result';
import type { LatencySummary } from './stats';

export interface ClientRunOptions {
  url: string;
  clients: number;
  flood: Omit<FloodOptions, 'group'>;
  /** Probes sent after the path is up and before the measured flood (JIT warm); default in clientRun. */
  warmup?: { count: number; rate?: number };
  latency?: boolean;
  idleMs?: number;
  pauseFirst?: boolean;
  /** Who reads: Node `ws` clients (ws_clients.ts, default) or the C reader (nlb_ws_reader.c, one process per client). */
  reader?: Reader;
  /**
   * Other processes whose CPU to count over the measured flood alone (from its
   * first message to the last client's result; no probes, no warm-up), by name.
   * The result's floodCpuSeconds has the same names.
   */
  cpuOf?: Record<string, number>;
}

export type Reader = 'node' | 'c';

export interface Aggregate {
  clients: number;
  connected: number;
  sent: number;
  deliveries: number;
  minPerClient: number;
  lost: number;
  lossPct: number;
  seconds: number;
  closes: Record<string, number>;
  /** CPU the client processes used from connected to done (includes probes and warm-up). */
  clientCpuSeconds: number;
}

export type ClientRunResult = Measurement & Aggregate;

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolve once something accepts TCP connections on the port. */
export async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Start client processes holding `clients` connections; resolves when all have connected. */
export async function startClients(
  p: Profile,
  o: {
    url: string;
    clients: number;
    expectPerClient: number;
    maxSeconds: number;
    latency?: boolean;
    idleMs?: number;
    pauseFirst?: boolean;
    reader?: Reader;
  },
): Promise<Proc[]> {
  const agents: Proc[] = [];
  if (o.reader === 'c') {
    if (o.pauseFirst) throw new Error('the C reader has no paused mode');
    const args: (string | number)[] = [
      '-u',
      o.url,
      '-k',
      o.clients,
      '-n',
      Math.min(o.expectPerClient, Number.MAX_SAFE_INTEGER),
      '-t',
      o.maxSeconds,
      '-i',
      o.idleMs ?? 1500,
    ];
    if (o.latency) args.push('-L');
    agents.push(startC('nlb_ws_reader', args));
  }
  for (let i = 0; o.reader !== 'c' && i < o.clients; i += p.clientsPerProcess) {
    const n = Math.min(p.clientsPerProcess, o.clients - i);
    agents.push(
      startAgent('ws_clients', {
        url: o.url,
        clients: n,
        expectPerClient: o.expectPerClient,
        maxSeconds: o.maxSeconds,
        idleMs: o.idleMs ?? 1500,
        latency: o.latency ?? false,
        pauseFirst: i === 0 && (o.pauseFirst ?? false),
        connectParallel: 50,
      }),
    );
  }
  const ready = await Promise.all(agents.map((a) => a.waitForKey('ready', 60_000)));
  const connected = ready.reduce((s, r) => s + num(r.connected), 0);
  if (connected < o.clients) {
    await Promise.all(agents.map((a) => a.stop(200)));
    throw new Error(`only ${connected} of ${o.clients} clients connected`);
  }
  return agents;
}

/** Add up the clients' results. */
export function aggregate(results: JsonObject[], sent: number, clients: number): Aggregate {
  let deliveries = 0;
  let seconds = 0;
  let connected = 0;
  let minPerClient = Infinity;
  let clientCpuSeconds = 0;
  const closes: Record<string, number> = {};
  for (const r of results) {
    deliveries += num(r.received);
    seconds = Math.max(seconds, num(r.seconds));
    connected += num(r.connected);
    minPerClient = Math.min(minPerClient, num(r.minPerClient));
    clientCpuSeconds += num(r.cpuSeconds);
    for (const [code, n] of Object.entries((r.closes as Record<string, number>) ?? {})) closes[code] = (closes[code] ?? 0) + n;
  }
  const expected = sent * clients;
  return {
    clients,
    connected,
    sent,
    deliveries,
    minPerClient,
    lost: expected - deliveries,
    lossPct: expected > 0 ? (100 * (expected - deliveries)) / expected : 0,
    seconds,
    closes,
    clientCpuSeconds,
  };
}

/**
 * Connect the clients, wait until the server side is on the group, send the
 * flood (bounded), and collect: rate = deliveries / the longest client's
 * first→last span.
 */
/** Send probes until every client process says each of its clients saw one. */
export async function probeUntilUp(p: Profile, agents: Proc[], timeoutMs: number): Promise<void> {
  let up = false;
  const all = Promise.all(agents.map((a) => a.waitForKey('probed', timeoutMs)));
  all.then(
    () => (up = true),
    () => undefined,
  );
  const until = Date.now() + timeoutMs;
  while (!up && Date.now() < until) {
    await flood({ group: p.group, count: 5, seconds: 1, rate: 200, probe: true });
    await sleep(50);
  }
  await all;
}

function readCpu(pids: Record<string, number> | undefined): Record<string, number | null> {
  return Object.fromEntries(Object.entries(pids ?? {}).map(([name, pid]) => [name, cpuSeconds(pid)]));
}

/** CPU seconds between two readings, by name; a process gone by the second reading has none. */
function cpuSpent(before: Record<string, number | null>, after: Record<string, number | null>): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(before).map(([name, b]) => {
      const a = after[name];
      return [name, a === null || b === null ? null : Math.round((a - b) * 100) / 100];
    }),
  );
}

export async function clientRun(p: Profile, o: ClientRunOptions): Promise<ClientRunResult> {
  const expect = o.flood.count;
  const maxSeconds = o.flood.seconds + 15;
  const agents = await startClients(p, {
    url: o.url,
    clients: o.clients,
    expectPerClient: expect,
    maxSeconds,
    latency: o.latency,
    idleMs: o.idleMs,
    pauseFirst: o.pauseFirst,
    reader: o.reader,
  });
  try {
    await probeUntilUp(p, agents, 30_000);
    // A latency figure is that of a running bridge, not of its first second:
    // a freshly started Node daemon still compiles its hot path (on the
    // second core) while 600 warm-up messages at 1,000 msg/s go through, and
    // its p99 there was 1.2 ms against 0.2–0.3 ms once warm (bench/README.md).
    // So latency runs first get warmupCount probes at 20,000 msg/s, every
    // system alike.
    if (o.latency && o.warmup === undefined) {
      await flood({ group: p.group, count: p.warmupCount, seconds: 30, rate: 20_000, probe: true });
      await sleep(300);
    }
    // By default a fifth of the run (at most warmupCount) as probes at the run's own rate.
    const warmup = o.warmup ?? { count: Math.min(p.warmupCount, Math.ceil(o.flood.count / 5)), rate: o.flood.rate };
    if (warmup.count > 0) {
      await flood({ group: p.group, count: warmup.count, seconds: 30, rate: warmup.rate, probe: true });
      await sleep(300);
    }
    const cpuBefore = readCpu(o.cpuOf);
    const sent = await flood({ group: p.group, ...o.flood });
    const results = await Promise.all(
      agents.map(async (a) => {
        try {
          return (await a.waitForKey('result', maxSeconds * 1000 + 5000)).result as JsonObject;
        } catch {
          a.command({ cmd: 'report' });
          return (await a.waitForKey('result', 3000)).result as JsonObject;
        }
      }),
    );
    const cpuAfter = readCpu(o.cpuOf);
    const agg = aggregate(results, num(sent.sent), o.clients);
    const latency = results[0].latency as LatencySummary | undefined;
    return {
      value: agg.seconds > 0 ? agg.deliveries / agg.seconds : NaN,
      ...agg,
      ...(o.cpuOf ? { floodCpuSeconds: cpuSpent(cpuBefore, cpuAfter) } : {}),
      sendRate: sent.rate,
      reader: o.reader ?? 'node',
      ...(latency ? { p50_us: latency.p50_us, p99_us: latency.p99_us, max_us: latency.max_us, samples: latency.n } : {}),
    };
  } finally {
    await Promise.all(agents.map((a) => a.stop(1000)));
  }
}

// The fleet section (issue 18): netlink → nlbridge → NATS → one subscriber,
// against the bare NATS ceiling (a Node publisher → the same subscriber, same
// payload and headers, on the same nats-server), and what publishing to NATS
// costs the local WebSocket stream (one client, one message per frame,
// without --nats-publish, with it (the default linger: 5 ms from 20,000
// msg/s), and with it and --nats-linger-ms 0, in turn): under a flood, as
// the daemon's CPU per message at a steady rate, and as the highest rate one
// C reader is given every message at (the fan-out's ramp, bench/lib/ramp.ts).

import { startAgent, sleep, type JsonObject, type Proc } from '../lib/proc';
import type { Profile } from '../lib/profile';
import { natsServerPath, startNatsServer, type NatsServer } from '../lib/nats_server';
import { rampThroughReaders, type RampResult } from '../lib/ramp';
import { bestOf, higherValue, lowerP99, measure, num, type Figures, type Measurement } from '../lib/result';
import { median } from '../lib/stats';
import { clientRun, probeUntilUp } from '../lib/ws_load';
import { groupSubject } from '../../daemon/fleet/subjects';
import { withDaemon, type Daemon, type NlbridgeOptions } from './nlbridge';
import { flood } from './socket_level';

/** The host id the bench daemon publishes under: subjects nlbridge.bench.g.<group>. */
export const BENCH_HOST_ID = 'bench';

/** Every (figure, system) of the section, so an absent nats-server still gives every row its reason. */
export const FLEET_ROWS: [string, string][] = [
  ['fleet_flood', 'nlbridge-nats'],
  ['fleet_flood', 'bare-nats'],
  ['fleet_latency_1k', 'nlbridge-nats'],
  ['fleet_latency_1k', 'bare-nats'],
  ['fleet_ws_one_frame', 'nlbridge'],
  ['fleet_ws_one_frame', 'nlbridge-nats'],
  ['fleet_ws_one_frame', 'nlbridge-nats-nolinger'],
  ['fleet_ws_cpu_steady', 'nlbridge'],
  ['fleet_ws_cpu_steady', 'nlbridge-nats'],
  ['fleet_ws_cpu_steady', 'nlbridge-nats-nolinger'],
  ['fleet_ws_sustained', 'nlbridge'],
  ['fleet_ws_sustained', 'nlbridge-nats'],
  ['fleet_ws_sustained', 'nlbridge-nats-nolinger'],
];

/**
 * Off/on pairs of the WebSocket row in the full profile (its repeats if more).
 * Five, not three: the daemon's CPU per message of one side ranged 2.8–5.4 µs
 * over ten runs on one quiet machine, so its median needs the runs (bench/README.md).
 */
const WS_PAIRS = 5;

function natsArgs(p: Profile, url: string): string[] {
  return ['--nats', url, '--nats-publish', `${p.group},`, '--host-id', BENCH_HOST_ID];
}

function startSub(url: string, subject: string, expect: number, seconds: number, latency: boolean): Proc {
  return startAgent('nats_sub', { url, subject, expect, maxSeconds: seconds + 15, idleMs: 1500, latency });
}

async function subResult(sub: Proc, timeoutMs: number): Promise<JsonObject> {
  try {
    return (await sub.waitForKey('result', timeoutMs)).result as JsonObject;
  } catch {
    sub.command({ cmd: 'report' });
    return (await sub.waitForKey('result', 3000)).result as JsonObject;
  }
}

/** The daemon's own fleet counters (GET /status → fleet): published, dropped by its buffer bound. */
async function fleetStatus(d: Daemon): Promise<unknown> {
  try {
    const res = await fetch(`${d.base}/status`);
    return ((await res.json()) as { fleet?: unknown }).fleet ?? null;
  } catch (err) {
    return { error: String(err) };
  }
}

/** The daemon dials NATS in the background: a run with publishing on starts once it is connected. */
async function natsConnected(d: Daemon): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const f = (await fleetStatus(d)) as { connected?: boolean } | null;
    if (f?.connected) return;
    await sleep(50);
  }
  throw new Error('the daemon did not connect to NATS within 10 s');
}

/** What a subscriber's result and the sent count make a measurement of. */
function counted(r: JsonObject, sent: number, extra: JsonObject): Measurement {
  const received = num(r.received);
  const seconds = num(r.seconds);
  return {
    value: seconds > 0 ? received / seconds : NaN,
    sent,
    received,
    lost: sent - received,
    lossPct: sent > 0 ? (100 * (sent - received)) / sent : 0,
    lostByN: r.lostByN,
    nFirst: r.nFirst,
    nLast: r.nLast,
    seconds,
    subscriberCpuSeconds: r.cpuSeconds,
    headers: r.headers,
    ...extra,
  };
}

/** netlink flood (or paced run) → daemon with --nats-publish → one subscriber. */
async function throughDaemon(p: Profile, o: NlbridgeOptions, nats: string, run: { count: number; seconds: number; rate?: number }) {
  const latency = run.rate !== undefined;
  return withDaemon(p, { ...o, extraArgs: natsArgs(p, nats) }, latency ? 'fleet-lat' : 'fleet', async (d) => {
    const sub = startSub(nats, groupSubject(BENCH_HOST_ID, p.group), run.count, run.seconds, latency);
    try {
      await sub.waitForKey('ready', 10_000);
      // Probes until the subscriber hears one: the daemon is on the group and its NATS connection is up.
      await probeUntilUp(p, [sub], 30_000);
      if (latency) {
        // As every latency row: a running bridge, not its first second (bench/lib/ws_load.ts clientRun).
        await flood({ group: p.group, count: p.warmupCount, seconds: 30, rate: 20_000, probe: true });
        await sleep(300);
      }
      const warmup = Math.min(p.warmupCount, Math.ceil(run.count / 5));
      await flood({ group: p.group, count: warmup, seconds: 30, rate: run.rate, probe: true });
      await sleep(300);
      const sent = await flood({ group: p.group, ...run });
      const r = await subResult(sub, (run.seconds + 20) * 1000);
      const lat = r.latency as JsonObject | undefined;
      const m = counted(r, num(sent.sent), { sendRate: sent.rate, fleet: await fleetStatus(d) });
      return lat
        ? { ...m, value: num(lat.p50_us), p50_us: lat.p50_us, p99_us: lat.p99_us, max_us: lat.max_us, samples: lat.n, rate: run.rate }
        : m;
    } finally {
      await sub.stop(1000);
    }
  });
}

/** The bare pair: nats_pub → nats_sub on the same server, same bytes and headers. */
async function bare(p: Profile, nats: string, run: { count: number; seconds: number; rate?: number }): Promise<Measurement> {
  const latency = run.rate !== undefined;
  const subject = groupSubject(BENCH_HOST_ID, p.group);
  const sub = startSub(nats, subject, run.count, run.seconds, latency);
  let pub: Proc | null = null;
  try {
    // ready = the server has the subscription: nothing the publisher sends after it is missed.
    await sub.waitForKey('ready', 10_000);
    // The warm-up of the daemon's runs (throughDaemon), phase by phase.
    const warmup = [
      ...(latency ? [{ count: p.warmupCount, rate: 20_000 }] : []),
      { count: Math.min(p.warmupCount, Math.ceil(run.count / 5)), rate: run.rate ?? 0 },
    ];
    pub = startAgent('nats_pub', {
      url: nats,
      subject,
      group: p.group,
      count: run.count,
      seconds: run.seconds,
      rate: run.rate ?? 0,
      warmup,
    });
    const sent = await pub.waitForKey('sent', (run.seconds + 40) * 1000);
    const r = await subResult(sub, (run.seconds + 20) * 1000);
    const lat = r.latency as JsonObject | undefined;
    const m = counted(r, num(sent.sent), { sendRate: sent.rate });
    return lat
      ? { ...m, value: num(lat.p50_us), p50_us: lat.p50_us, p99_us: lat.p99_us, max_us: lat.max_us, samples: lat.n, rate: run.rate }
      : m;
  } finally {
    await pub?.stop(1000);
    await sub.stop(1000);
  }
}

/**
 * The daemon's and nats-server's CPU per delivered message over the measured
 * flood: what publishing costs, apart from how fast the one client and the
 * sender happened to go in that run on two shared cores.
 */
function withCpuPerMessage(r: Measurement & { deliveries: number; floodCpuSeconds?: Record<string, number | null> }): Measurement {
  const perMessage = (seconds: number | null | undefined): number | null =>
    typeof seconds === 'number' && r.deliveries > 0 ? Math.round(((seconds * 1e6) / r.deliveries) * 1000) / 1000 : null;
  return {
    ...r,
    daemonCpuUsPerMsg: perMessage(r.floodCpuSeconds?.daemon),
    natsServerCpuUsPerMsg: perMessage(r.floodCpuSeconds?.natsServer),
  };
}

/** The steady row of one case: the medians of its runs' CPU per message (lower is better), each run kept. */
function steadyMedians(runs: (Measurement | Error)[], rate: number): Measurement {
  const ok = runs.filter((r): r is Measurement => !(r instanceof Error));
  if (ok.length === 0) throw runs[0] as Error;
  const daemonCpuRuns = runs.map((r) => (r instanceof Error || typeof r.daemonCpuUsPerMsg !== 'number' ? null : r.daemonCpuUsPerMsg));
  const medians = cpuMedians(runs);
  return {
    value: medians.daemonCpuUsPerMsgMedian,
    natsServerCpuUsPerMsg: medians.natsServerCpuUsPerMsgMedian,
    rate,
    daemonCpuRuns,
    lost: ok.reduce((a, r) => a + (typeof r.lost === 'number' ? r.lost : 0), 0),
    failedRuns: runs.filter((r) => r instanceof Error).map(String),
  };
}

/**
 * The sustained row of one case: the median of its ramps' highest clean rates, each ramp kept.
 * A ramp whose first unclean step failed only because the sender fell short (the reader had
 * every message that was sent) found the sender's limit on the shared cores, not the bridge's:
 * a lower bound, counted in senderLimitedRamps.
 */
function sustainedMedian(ramps: (RampResult | Error)[]): Measurement {
  const ok = ramps.filter((r): r is RampResult => !(r instanceof Error) && r.value !== null && r.value > 0);
  if (ok.length === 0) throw ramps.find((r) => r instanceof Error) ?? new Error('no ramp found a clean step');
  const senderOnly = ok.filter((r) => {
    const first = r.steps.find((st) => !st.clean && st.deliveries === r.firstUnclean);
    return first !== undefined && first.attempts.every((a) => a.clean || a.min >= a.sent);
  }).length;
  return {
    value: median(ok.map((r) => r.value as number)),
    rampRuns: ramps.map((r) => (r instanceof Error || r.value === null ? null : r.value)),
    firstUnclean: ok.map((r) => r.firstUnclean ?? null),
    senderLimitedRamps: senderOnly,
    ramps: ramps.map((r) => (r instanceof Error ? { error: String(r) } : r)),
    failedRuns: ramps.filter((r) => r instanceof Error).map(String),
  };
}

/** The medians over every run of one side of the row (the best run alone is no steadier a CPU figure). */
function cpuMedians(runs: (Measurement | Error)[]): Record<string, number | null> {
  const of = (key: string): number | null =>
    median(runs.flatMap((r) => (r instanceof Error || typeof r[key] !== 'number' ? [] : [r[key] as number])));
  return { daemonCpuUsPerMsgMedian: of('daemonCpuUsPerMsg'), natsServerCpuUsPerMsgMedian: of('natsServerCpuUsPerMsg') };
}

export async function runFleet(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  const program = natsServerPath();
  let server: NatsServer | null = null;
  let why: Error | null = null;
  if (program === null) why = new Error('skipped: nats-server not found (Debian: apt-get install nats-server)');
  else {
    try {
      server = await startNatsServer(program);
    } catch (err) {
      why = err as Error;
    }
  }
  if (server === null) {
    for (const [figure, system] of FLEET_ROWS) {
      await measure(figures, figure, system, async () => {
        throw why;
      });
    }
    return;
  }
  const nats = server.url;
  const natsServerPid = server.proc.child.pid!;
  const floodRun = { count: p.wsFloodCount, seconds: p.wsFloodSeconds };
  const latencyRun = { count: p.latencyCount, seconds: p.latencyCount / 1000 + 2, rate: 1000 };
  try {
    await measure(figures, 'fleet_flood', 'nlbridge-nats', () => bestOf(p.repeats, () => throughDaemon(p, o, nats, floodRun), higherValue));
    await measure(figures, 'fleet_flood', 'bare-nats', () => bestOf(p.repeats, () => bare(p, nats, floodRun), higherValue));
    await measure(figures, 'fleet_latency_1k', 'nlbridge-nats', () =>
      bestOf(p.repeats, () => throughDaemon(p, o, nats, latencyRun), lowerP99),
    );
    await measure(figures, 'fleet_latency_1k', 'bare-nats', () => bestOf(p.repeats, () => bare(p, nats, latencyRun), lowerP99));
    // The WebSocket row with publishing off and on; no NATS subscriber, so the difference is the
    // daemon's own publishing work (the server discards what nobody asked for). Off and on
    // alternate, run by run: the off case alone ranged 158k–244k msg/s over five runs of this
    // section on one quiet machine, so a drift of the machine must fall on both.
    const cases = [
      ['nlbridge', [] as string[]],
      ['nlbridge-nats', natsArgs(p, nats)],
      // Without the linger (the default before it had a rate gate): what the gate's holding buys.
      ['nlbridge-nats-nolinger', [...natsArgs(p, nats), '--nats-linger-ms', '0']],
    ] as const;
    const oneClient = (extraArgs: readonly string[], system: string, flood: { count: number; seconds: number; rate?: number }) =>
      withDaemon(p, { ...o, extraArgs: [...extraArgs] }, `ws-${system}`, async (d) => {
        if (extraArgs.length > 0) await natsConnected(d);
        const r = await clientRun(p, {
          url: d.ws(),
          clients: 1,
          flood,
          cpuOf: { daemon: d.proc.child.pid!, natsServer: natsServerPid },
        });
        return withCpuPerMessage(r);
      }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    const results = new Map<string, (Measurement | Error)[]>(cases.map(([system]) => [system, []]));
    const steady = new Map<string, (Measurement | Error)[]>(cases.map(([system]) => [system, []]));
    const steadyRun = { count: p.fleetSteadyRate * p.fleetSteadySeconds, seconds: p.fleetSteadySeconds, rate: p.fleetSteadyRate };
    // (The smoke profile, one repeat, runs one round.)
    const pairs = p.repeats > 1 ? Math.max(p.repeats, WS_PAIRS) : 1;
    for (let i = 0; i < pairs; i++)
      for (const [system, extraArgs] of cases)
        results.get(system)!.push(await oneClient(extraArgs, system, { count: p.wsFloodCount, seconds: p.wsFloodSeconds }));
    for (let i = 0; i < pairs; i++)
      for (const [system, extraArgs] of cases) steady.get(system)!.push(await oneClient(extraArgs, system, steadyRun));
    for (const [system] of cases) {
      const runs = results.get(system)!;
      let next = 0;
      await measure(figures, 'fleet_ws_one_frame', system, async () => ({
        ...(await bestOf(
          runs.length,
          async () => {
            const r = runs[next++];
            if (r instanceof Error) throw r;
            return r;
          },
          higherValue,
        )),
        ...cpuMedians(runs),
      }));
    }
    for (const [system] of cases)
      await measure(figures, 'fleet_ws_cpu_steady', system, async () => steadyMedians(steady.get(system)!, p.fleetSteadyRate));
    // Sustained throughput: the flood above overruns the daemon by 40–75 %, and what one Node client
    // then gets hangs on how two cores fall between it, the sender and the daemon (the off case alone
    // ranged 127k–240k over five runs). The ramp asks the rate at which one C reader still gets every
    // message, the fan-out's definition of a bridge's throughput; the cases again take turns.
    const sustained = new Map<string, (RampResult | Error)[]>(cases.map(([system]) => [system, []]));
    for (let i = 0; i < p.fleetRampRounds; i++)
      for (const [system, extraArgs] of cases)
        sustained.get(system)!.push(
          await withDaemon(p, { ...o, extraArgs: [...extraArgs] }, `ramp-${system}`, async (d) => {
            if (extraArgs.length > 0) await natsConnected(d);
            return rampThroughReaders(p, p.fleetRamp, d.ws(), 1);
          }).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
        );
    for (const [system] of cases) await measure(figures, 'fleet_ws_sustained', system, async () => sustainedMedian(sustained.get(system)!));
  } finally {
    await server.stop();
  }
}

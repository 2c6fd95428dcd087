// Socket level: the C ceiling (1→1, 1→N, latency floor) and the two Node
// receivers, nlbridge's addon and npm `netlink`, under the same flood.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NETLINK_USERSOCK as USERSOCK } from '../../addon/codec';
import { CACHE_DIR, ROOT, startAgent, startC, type JsonObject, type Proc } from '../lib/proc';
import type { Profile } from '../lib/profile';
import { bestOf, higherValue, lowerP99, measure, num, type Figures, type Measurement } from '../lib/result';

/** Build nlb_flood, nlb_sink and nlb_ws_reader with cc -O2 into .cache/bench/. */
export function buildC(): void {
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  for (const name of ['nlb_flood', 'nlb_sink', 'nlb_ws_reader']) {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', path.join(CACHE_DIR, name), path.join(ROOT, 'bench', 'c', `${name}.c`)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
}

export interface FloodOptions {
  group: number;
  count: number;
  seconds: number;
  /** msg/s; 0 or absent = as fast as possible. */
  rate?: number;
  /** Payload bytes (at least the 36-byte bench payload). */
  payload?: number;
  /** Send probes (not counted by receivers). */
  probe?: boolean;
  /** Sender processes sharing the count (unpaced floods only). */
  senders?: number;
}

/** Run the C sender to completion; resolves with its result line. */
export async function flood(o: FloodOptions): Promise<JsonObject> {
  const senders = o.senders ?? 1;
  if (senders > 1) {
    // Several senders at once, each with its share of the count; one result.
    const parts = await Promise.all(
      Array.from({ length: senders }, (_, i) =>
        flood({ ...o, senders: 1, count: Math.floor(o.count / senders) + (i < o.count % senders ? 1 : 0) }),
      ),
    );
    const sent = parts.reduce((a, r) => a + num(r.sent), 0);
    const seconds = Math.max(...parts.map((r) => num(r.seconds)));
    return { sent, seconds, rate: sent / seconds, senders, perSender: parts.map((r) => num(r.rate)) };
  }
  const args: (string | number)[] = ['-g', o.group, '-n', o.count, '-t', o.seconds, '-p', USERSOCK];
  if (o.rate) args.push('-r', Math.max(1, Math.round(o.rate)));
  if (o.payload) args.push('-s', o.payload);
  if (o.probe) args.push('-P');
  const p = startC('nlb_flood', args);
  const line = await p.waitForKey('sent', (o.seconds + 10) * 1000);
  await p.stop();
  return line;
}

/** Start C receivers; resolves once bound. */
export async function startSink(
  p: Profile,
  o: { sockets?: number; expect: number; seconds: number; latency?: boolean; idleMs?: number },
): Promise<Proc> {
  const args: (string | number)[] = [
    '-g',
    p.group,
    '-n',
    o.expect,
    '-k',
    o.sockets ?? 1,
    '-t',
    o.seconds,
    '-i',
    o.idleMs ?? 300,
    '-b',
    p.rcvbuf,
    '-p',
    USERSOCK,
  ];
  if (o.latency) args.push('-L');
  const sink = startC('nlb_sink', args);
  await sink.waitForKey('ready', 10_000);
  return sink;
}

async function sinkWithFlood(p: Profile, sinkOpts: Parameters<typeof startSink>[1], floodOpts: Omit<FloodOptions, 'group'>) {
  const sink = await startSink(p, sinkOpts);
  try {
    const sent = await flood({ group: p.group, ...floodOpts });
    const got = await sink.waitForKey('received', (sinkOpts.seconds + 5) * 1000);
    return { sent, got };
  } finally {
    await sink.stop(500);
  }
}

/** C ceiling figures; returns the 1→1 saturation rate (for half-saturation runs). */
export async function runCeiling(p: Profile, figures: Figures): Promise<number> {
  const rx = await measure(figures, 'socket_flood', 'c', () =>
    bestOf(
      p.repeats,
      async () => {
        const { sent, got } = await sinkWithFlood(
          p,
          { expect: p.floodCount, seconds: p.floodSeconds + 5 },
          { count: p.floodCount, seconds: p.floodSeconds, senders: p.floodSenders },
        );
        return {
          value: num(got.rate),
          received: got.received,
          sent: sent.sent,
          sendRate: sent.rate,
          lost: num(sent.sent) - num(got.received),
          drops: got.drops,
          cpuNsPerMsg: got.cpuNsPerMsg,
          survived: true,
        };
      },
      higherValue,
    ),
  );
  const sat = num(rx.value);
  if (Number.isFinite(sat) && sat > 0) {
    await measure(figures, 'latency_half', 'c', () => latencyRun(p, sat / 2, Math.round((sat / 2) * p.halfSatSeconds)));
  } else {
    await measure(figures, 'latency_half', 'c', async () => {
      throw new Error('no saturation rate');
    });
  }
  return sat;
}

async function latencyRun(p: Profile, rate: number, count: number): Promise<Measurement> {
  const seconds = count / rate + 2;
  const { got } = await sinkWithFlood(p, { expect: count, seconds: seconds + 3, latency: true }, { count, seconds, rate });
  const lat = got.latency as { p50_us: number; p99_us: number; max_us: number; n: number };
  return {
    value: lat.p50_us,
    p50_us: lat.p50_us,
    p99_us: lat.p99_us,
    max_us: lat.max_us,
    samples: lat.n,
    rate,
    received: got.received,
    lost: count - num(got.received),
  };
}

/**
 * One Node receiver (addon or npm `netlink`) under the flood, in its own
 * process. An abort is a result: survived=false with what it counted until then.
 */
async function nodeReceiver(p: Profile, impl: 'addon' | 'npm-netlink', paced?: { rate: number; count: number }): Promise<Measurement> {
  const count = paced?.count ?? p.floodCount;
  const seconds = paced ? paced.count / paced.rate + 2 : p.floodSeconds;
  const agent = startAgent('node_sink', {
    impl,
    group: p.group,
    expect: count,
    maxSeconds: seconds + 5,
    idleMs: paced ? 1500 : 500,
    rcvbuf: p.rcvbuf,
    latency: paced !== undefined,
  });
  try {
    await agent.waitForKey('ready', 10_000);
    const sent = await flood({ group: p.group, count, seconds, rate: paced?.rate, senders: paced ? 1 : p.floodSenders });
    let result: JsonObject | undefined;
    try {
      result = (await agent.waitForKey('result', (p.floodSeconds + 8) * 1000)).result as JsonObject;
    } catch {
      result = undefined;
    }
    const exit = await agent.stop(2000);
    const survived = result !== undefined && exit.code === 0 && exit.signal === null;
    const last = result ?? (agent.last('progress')?.progress as JsonObject | undefined) ?? {};
    const lat = last.latency as { p50_us: number; p99_us: number; max_us: number; n: number } | undefined;
    if (paced) {
      if (!lat || lat.n === 0) throw new Error(`${impl}: no latency samples (exit ${exit.code ?? exit.signal})`);
      return {
        value: lat.p50_us,
        p50_us: lat.p50_us,
        p99_us: lat.p99_us,
        max_us: lat.max_us,
        samples: lat.n,
        rate: paced.rate,
        lost: num(sent.sent) - num(last.received ?? 0),
        survived,
      };
    }
    return {
      value: num(last.rate),
      received: last.received ?? 0,
      sent: sent.sent,
      lost: num(sent.sent) - num(last.received ?? 0),
      overruns: last.overruns ?? 0,
      drops: last.drops ?? null,
      cpuNsPerMsg: last.cpuNsPerMsg ?? null,
      survived,
      exit: { code: exit.code, signal: exit.signal },
      stderr: survived ? undefined : agent.stderr().slice(-300),
    };
  } finally {
    await agent.stop(500);
  }
}

export async function runNodeReceivers(p: Profile, figures: Figures): Promise<void> {
  await measure(figures, 'socket_flood', 'addon', () => bestOf(p.repeats, () => nodeReceiver(p, 'addon'), higherValue));
  await measure(figures, 'socket_flood', 'npm-netlink', () => bestOf(p.repeats, () => nodeReceiver(p, 'npm-netlink'), higherValue));
}

/** Latency at 1,000 msg/s at the socket level: the C floor, then what the addon and npm `netlink` add before any bridge work. */
export async function runSocketLatency(p: Profile, figures: Figures): Promise<void> {
  await measure(figures, 'latency_1k', 'c', () => bestOf(p.repeats, () => latencyRun(p, 1000, p.latencyCount), lowerP99));
  for (const impl of ['addon', 'npm-netlink'] as const) {
    await measure(figures, 'latency_1k', impl, () =>
      bestOf(p.repeats, () => nodeReceiver(p, impl, { rate: 1000, count: p.latencyCount }), lowerP99),
    );
  }
}

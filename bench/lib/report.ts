// Turns measured figures into the table (Markdown, printed and saved), the
// targets of issue 6 with their ratios, and one SVG chart.

import * as os from 'node:os';
import type { Figures, Measurement } from './result';

export const SYSTEM_NAMES: Record<string, string> = {
  c: 'C ceiling',
  addon: 'nlbridge addon',
  'npm-netlink': 'npm netlink 0.3.0',
  nlbridge: 'nlbridge',
  'nlbridge-batch': 'nlbridge ?batch=1',
  'nlbridge-binary': 'nlbridge ?format=binary',
  websocketd: 'websocketd + rr_nlk',
  'nlbridge-creader': 'nlbridge, C reader',
  'websocketd-creader': 'websocketd + rr_nlk, C reader',
  'bare-fastify': 'bare fastify route',
  'nlbridge-nats': 'nlbridge, --nats-publish on',
  'nlbridge-nats-nolinger': 'nlbridge, --nats-publish on, --nats-linger-ms 0',
  'bare-nats': 'bare NATS publisher (Node)',
};

export interface FigureDef {
  id: string;
  label: string;
  unit: 'msg/s' | 'deliveries/s' | 'µs' | 'req/s' | 'sends/s' | 'bytes' | 'bytes/client';
  systems: string[];
}

export function figureDefs(fanoutCounts: number[]): FigureDef[] {
  const fan = [...new Set(fanoutCounts)].sort((a, b) => a - b);
  return [
    { id: 'socket_flood', label: 'netlink → 1 socket, flood', unit: 'msg/s', systems: ['c', 'addon', 'npm-netlink'] },
    {
      id: 'ws_one_frame',
      label: 'netlink → 1 WS client, flood',
      unit: 'msg/s',
      systems: ['nlbridge', 'nlbridge-batch', 'nlbridge-binary', 'websocketd'],
    },
    ...fan.map((k): FigureDef => ({
      id: `fanout_${k}`,
      label: `fan-out to ${k} clients at saturation`,
      unit: 'deliveries/s',
      systems: ['c', 'nlbridge', 'nlbridge-batch', 'nlbridge-binary', 'websocketd'],
    })),
    {
      id: 'latency_1k',
      label: 'latency p50 at 1,000 msg/s',
      unit: 'µs',
      systems: ['c', 'addon', 'npm-netlink', 'nlbridge', 'websocketd', 'nlbridge-creader', 'websocketd-creader'],
    },
    {
      id: 'added_latency_1k',
      label: 'p50 added over the netlink floor (C ceiling) at 1,000 msg/s',
      unit: 'µs',
      systems: ['nlbridge', 'websocketd', 'nlbridge-creader', 'websocketd-creader'],
    },
    { id: 'latency_half', label: 'latency p50 at half saturation', unit: 'µs', systems: ['c', 'nlbridge', 'websocketd'] },
    { id: 'http_send', label: 'POST /send', unit: 'req/s', systems: ['nlbridge', 'bare-fastify'] },
    { id: 'ws_ingress', label: 'WS frames → netlink sends', unit: 'sends/s', systems: ['nlbridge', 'c'] },
    {
      id: 'memory_idle',
      label: 'memory idle (nlbridge RSS; websocketd PSS of its process tree)',
      unit: 'bytes',
      systems: ['nlbridge', 'websocketd'],
    },
    { id: 'memory_per_client', label: 'memory per idle client', unit: 'bytes/client', systems: ['nlbridge', 'websocketd'] },
    { id: 'memory_slow_reader', label: 'RSS growth, one client not reading', unit: 'bytes', systems: ['nlbridge'] },
    {
      id: 'fleet_flood',
      label: 'netlink → nlbridge → NATS → 1 subscriber, flood (ceiling: the bare NATS pair)',
      unit: 'msg/s',
      systems: ['nlbridge-nats', 'bare-nats'],
    },
    { id: 'fleet_latency_1k', label: 'NATS subscriber latency p50 at 1,000 msg/s', unit: 'µs', systems: ['nlbridge-nats', 'bare-nats'] },
    {
      id: 'fleet_ws_one_frame',
      label: 'netlink → 1 WS client, flood, NATS publishing off / on / on without the linger',
      unit: 'msg/s',
      systems: ['nlbridge', 'nlbridge-nats', 'nlbridge-nats-nolinger'],
    },
    {
      id: 'fleet_ws_cpu_steady',
      label:
        'daemon CPU per message, netlink → 1 WS client at a steady rate below saturation, NATS publishing off / on / on without the linger (medians)',
      unit: 'µs',
      systems: ['nlbridge', 'nlbridge-nats', 'nlbridge-nats-nolinger'],
    },
    {
      id: 'fleet_ws_sustained',
      label:
        'netlink → 1 WS client (C reader), the highest rate it is given every message at (ramp), NATS publishing off / on / on without the linger (medians)',
      unit: 'msg/s',
      systems: ['nlbridge', 'nlbridge-nats', 'nlbridge-nats-nolinger'],
    },
  ];
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 100) return Math.round(v).toLocaleString('en-US');
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Every run's value, as the detail column lists them ("a / b / c"). */
function fmtRuns(values: (number | null)[]): string {
  return values.map((v) => (v === null ? 'n/a' : fmtNum(v))).join(' / ');
}

function fmtBytes(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Math.abs(v) >= 1 << 20) return `${(v / (1 << 20)).toFixed(1)} MiB`;
  if (Math.abs(v) >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${Math.round(v)} B`;
}

export function fmtValue(m: Measurement | undefined, unit: FigureDef['unit']): string {
  if (!m) return 'not run';
  if (m.value === null) return `n/a: ${m.error ?? 'no data'}`;
  if (unit === 'bytes' || unit === 'bytes/client') return fmtBytes(m.value);
  return `${fmtNum(m.value)} ${unit}`;
}

function detail(figure: string, m: Measurement | undefined): string {
  if (!m || m.value === null) return '';
  const parts: string[] = [];
  const n = (k: string) => (typeof m[k] === 'number' ? (m[k] as number) : NaN);
  if (figure.startsWith('fanout_') && Array.isArray(m.steps)) {
    const steps = m.steps as { deliveries: number; clean: boolean; attempts: unknown[] }[];
    parts.push(m.saturated ? `first unclean step ${fmtNum(n('firstUnclean'))}/s` : '**not saturated**: a lower bound');
    if (Number.isFinite(n('lostAtCapacity')))
      parts.push(`never delivered at that rate ${fmtNum(n('lostAtCapacity'))} in ${fmtNum(n('attemptsAtCapacity'))} attempts`);
    parts.push(`ramp ${steps.map((x) => `${fmtNum(x.deliveries / 1000)}k${x.clean ? '✓' : '✗'}`).join(' ')}`);
    parts.push(`${steps.reduce((a, x) => a + x.attempts.length, 0)} attempts`);
  } else if (figure === 'added_latency_1k') {
    parts.push(`p50 ${fmtNum(n('p50_us'))} − floor ${fmtNum(n('floor_us'))} µs`);
  } else if (figure.startsWith('latency') || figure === 'fleet_latency_1k') {
    parts.push(`p99 ${fmtNum(n('p99_us'))} µs`, `at ${fmtNum(n('rate'))} msg/s`);
    if (Number.isFinite(n('lost')) && n('lost') !== 0) parts.push(`lost ${fmtNum(n('lost'))}`);
  } else if (figure === 'fleet_ws_cpu_steady') {
    if (Number.isFinite(n('natsServerCpuUsPerMsg'))) parts.push(`nats-server ${fmtNum(n('natsServerCpuUsPerMsg'))} µs/msg`);
    parts.push(`at ${fmtNum(n('rate'))} msg/s`);
    if (Array.isArray(m.daemonCpuRuns))
      parts.push(`median of ${m.daemonCpuRuns.length} (${fmtRuns(m.daemonCpuRuns as (number | null)[])})`);
    if (Number.isFinite(n('lost')) && n('lost') !== 0) parts.push(`lost ${fmtNum(n('lost'))}`);
  } else if (figure === 'fleet_ws_sustained') {
    if (Array.isArray(m.rampRuns)) parts.push(`median of ${m.rampRuns.length} ramps (${fmtRuns(m.rampRuns as (number | null)[])})`);
    if (Array.isArray(m.firstUnclean)) parts.push(`first unclean steps ${fmtRuns(m.firstUnclean as (number | null)[])}`);
    if (Number.isFinite(n('senderLimitedRamps')) && n('senderLimitedRamps') > 0)
      parts.push(`**sender-limited** in ${fmtNum(n('senderLimitedRamps'))} (the sender fell short, nothing lost: a lower bound)`);
  } else if (figure === 'http_send') {
    if (Number.isFinite(n('p99_ms'))) parts.push(`p99 ${fmtNum(n('p99_ms'))} ms`);
    if (Number.isFinite(n('errors')) && n('errors') > 0) parts.push(`errors ${fmtNum(n('errors'))}`);
    if (Number.isFinite(n('non2xx')) && n('non2xx') > 0) parts.push(`non-2xx ${fmtNum(n('non2xx'))}`);
  } else if (figure.startsWith('memory')) {
    if (figure === 'memory_slow_reader') {
      parts.push(`peak ${fmtBytes(n('rssPeak'))}`, `${fmtNum(n('rate'))} msg/s × ${fmtNum(n('payload'))} B for ${fmtNum(n('seconds'))} s`);
      if (m.slowClientClosed !== undefined) parts.push(`slow client closed: ${m.slowClientClosed ? 'yes' : 'no'}`);
      if (Number.isFinite(n('rssAfterGc'))) parts.push(`${fmtBytes(n('rssAfterGc') - n('rssBefore'))} still held after a full GC`);
    }
    if (Number.isFinite(n('clients'))) parts.push(`${fmtNum(n('clients'))} clients`);
    if (Number.isFinite(n('rawPerClient'))) parts.push(`after a full GC; ${fmtBytes(n('rawPerClient'))} without one`);
  } else {
    if (['socket_flood', 'ws_one_frame', 'fleet_flood', 'fleet_ws_one_frame'].includes(figure) && senderLimited(m))
      parts.push('**sender-limited** (nothing lost: a lower bound)');
    if (Number.isFinite(n('lossPct'))) parts.push(`loss ${n('lossPct').toFixed(2)} %`);
    else if (Number.isFinite(n('lost')) && Number.isFinite(n('sent')))
      parts.push(`loss ${((100 * n('lost')) / Math.max(1, n('sent'))).toFixed(2)} %`);
    if (typeof m.offered === 'number') {
      parts.push(`offered ${fmtNum(m.offered)}/s`);
      // The paced sender may fall behind when the receivers take the CPU.
      const achieved = n('sendRate') * n('clients');
      if (Number.isFinite(achieved) && achieved < 0.95 * m.offered) parts.push(`sender reached only ${fmtNum(achieved)}/s`);
    }
    if (typeof m.offered === 'string') parts.push(`offered ${m.offered}`);
    if (Number.isFinite(n('lostByN'))) parts.push(`gaps in n ${fmtNum(n('lostByN'))}`);
    if (Number.isFinite(n('overruns'))) parts.push(`overruns ${fmtNum(n('overruns'))}`);
    if (Number.isFinite(n('cpuNsPerMsg'))) parts.push(`receiver CPU ${fmtNum(n('cpuNsPerMsg') / 1000)} µs/msg`);
    if (typeof m.survived === 'boolean') parts.push(`survived ${m.survived ? 'yes' : 'NO'}`);
    if (m.exit && typeof m.exit === 'object' && (m.exit as { signal?: string }).signal)
      parts.push(`(${(m.exit as { signal: string }).signal})`);
  }
  if (Array.isArray(m.runs) && m.runs.length > 1) {
    parts.push(`best of ${m.runs.length} (${fmtRuns(m.runs as (number | null)[])})`);
  }
  if (Array.isArray(m.failedRuns) && m.failedRuns.length > 0)
    parts.push(`${m.failedRuns.length} run(s) failed: ${String(m.failedRuns[0]).slice(0, 80)}`);
  return parts.join(', ');
}

export interface Target {
  id: string;
  label: string;
  measured: number | null;
  /** Human form of the measured quantity, e.g. "4.1×". */
  shown: string;
  goal: string;
  met: boolean | null;
  /** Where `measured` comes from: a ratio is inputs[0] ÷ inputs[1], a single figure inputs[0] (bench/check_results.ts recomputes it). */
  inputs?: Input[];
}

export interface Input {
  figure: string;
  system: string;
  field: string;
  value: number | null;
}

function input(figures: Figures, figure: string, system: string, field = 'value'): Input {
  const v = val(figures, figure, system, field);
  return { figure, system, field, value: Number.isFinite(v) ? v : null };
}

/** a ÷ b ≥ (or ≤) goal, read from two figures, with the inputs kept. */
function ratioOf(
  figures: Figures,
  id: string,
  label: string,
  a: [string, string, string?],
  b: [string, string, string?],
  goal: number,
  atLeast = true,
): Target {
  const ia = input(figures, a[0], a[1], a[2]);
  const ib = input(figures, b[0], b[1], b[2]);
  return { ...ratioTarget(id, label, ia.value ?? NaN, ib.value ?? NaN, goal, atLeast), inputs: [ia, ib] };
}

function val(figures: Figures, figure: string, system: string, field = 'value'): number {
  const m = figures[figure]?.[system];
  if (!m || m.value === null) return NaN;
  const v = m[field];
  return typeof v === 'number' ? v : NaN;
}

function ratioTarget(id: string, label: string, a: number, b: number, goal: number, atLeast = true): Target {
  const r = a / b;
  const ok = Number.isFinite(r);
  return {
    id,
    label,
    measured: ok ? r : null,
    shown: ok ? `${r.toFixed(2)}×` : 'n/a',
    goal: `${atLeast ? '≥' : '≤'} ${goal}×`,
    met: ok ? (atLeast ? r >= goal : r <= goal) : null,
  };
}

/**
 * A flood figure is the receiver's capacity only when the receiver lost
 * messages: with nothing lost the sender set the pace (a loaded machine slows
 * it down), and the figure is a lower bound of the capacity.
 */
export function senderLimited(m: Measurement | undefined): boolean {
  if (!m || m.value === null) return false;
  const lost = typeof m.lost === 'number' ? m.lost : NaN;
  const sent = typeof m.sent === 'number' ? m.sent : NaN;
  return Number.isFinite(lost) && Number.isFinite(sent) && sent > 0 && lost <= 0.005 * sent;
}

/**
 * a ÷ b ≥ goal between two flood figures, knowing which are only lower
 * bounds: a lower-bound numerator that already meets the goal meets it; a
 * lower-bound denominator with a ratio already under the goal misses it;
 * otherwise the run cannot tell (met null).
 */
function floodRatioTarget(id: string, label: string, figures: Figures, figure: string, a: string, b: string, goal: number): Target {
  const ma = figures[figure]?.[a];
  const mb = figures[figure]?.[b];
  const t = {
    ...ratioTarget(id, label, ma?.value ?? NaN, mb?.value ?? NaN, goal),
    inputs: [input(figures, figure, a), input(figures, figure, b)],
  };
  if (t.measured === null) return t;
  const la = senderLimited(ma);
  const lb = senderLimited(mb);
  if (!la && !lb) return t;
  const r = t.measured;
  const met = la && !lb ? (r >= goal ? true : null) : !la && lb ? (r < goal ? false : null) : null;
  const which =
    la && lb ? 'both sender-limited' : la ? `${SYSTEM_NAMES[a] ?? a} sender-limited: ≥` : `${SYSTEM_NAMES[b] ?? b} sender-limited: ≤`;
  return { ...t, shown: `${t.shown} (${which})`, met };
}

export function targets(figures: Figures, largestFanout: number, fanoutGoal: number): Target[] {
  const t: Target[] = [];
  t.push(floodRatioTarget('addon_vs_npm', 'addon ÷ npm netlink, socket flood', figures, 'socket_flood', 'addon', 'npm-netlink', 3));
  // The same target, independent of how fast the sender went: what one message costs each receiver.
  t.push(
    ratioOf(
      figures,
      'addon_vs_npm_cpu',
      'same, as receiver capacity: npm netlink CPU/msg ÷ addon CPU/msg',
      ['socket_flood', 'npm-netlink', 'cpuNsPerMsg'],
      ['socket_flood', 'addon', 'cpuNsPerMsg'],
      3,
    ),
  );
  t.push(ratioOf(figures, 'addon_vs_c', 'addon ÷ C ceiling, socket flood', ['socket_flood', 'addon'], ['socket_flood', 'c'], 0.7));
  const survived = figures.socket_flood?.addon?.survived;
  t.push({
    id: 'addon_survives',
    label: 'addon survives the flood',
    measured: survived === true ? 1 : 0,
    shown: survived === undefined ? 'n/a' : survived ? 'yes' : 'no',
    goal: 'yes',
    met: survived === undefined ? null : survived === true,
  });
  t.push(
    floodRatioTarget('batch_vs_websocketd', 'one client ?batch=1 ÷ websocketd', figures, 'ws_one_frame', 'nlbridge-batch', 'websocketd', 2),
  );
  t.push(
    floodRatioTarget(
      'frame_vs_websocketd',
      'one client, one msg/frame ÷ websocketd',
      figures,
      'ws_one_frame',
      'nlbridge',
      'websocketd',
      1.2,
    ),
  );
  t.push(
    ratioOf(
      figures,
      'p50_vs_websocketd',
      'p50 at 1,000 msg/s, Node reader: nlbridge ÷ websocketd',
      ['latency_1k', 'nlbridge', 'p50_us'],
      ['latency_1k', 'websocketd', 'p50_us'],
      0.5,
      false,
    ),
  );
  t.push(
    ratioOf(
      figures,
      'p50_vs_websocketd_creader',
      'p50 at 1,000 msg/s, C reader: nlbridge ÷ websocketd',
      ['latency_1k', 'nlbridge-creader', 'p50_us'],
      ['latency_1k', 'websocketd-creader', 'p50_us'],
      0.5,
      false,
    ),
  );
  const p99 = val(figures, 'latency_1k', 'nlbridge', 'p99_us');
  t.push({
    id: 'p99_1k',
    label: 'p99 at 1,000 msg/s, nlbridge',
    measured: Number.isFinite(p99) ? p99 : null,
    shown: Number.isFinite(p99) ? `${fmtNum(p99)} µs` : 'n/a',
    goal: '≤ 1,000 µs',
    met: Number.isFinite(p99) ? p99 <= 1000 : null,
  });
  const fan = val(figures, `fanout_${largestFanout}`, 'nlbridge');
  t.push({
    id: 'fanout_rate',
    label: `fan-out to ${largestFanout} clients at saturation, one msg/frame, deliveries/s`,
    measured: Number.isFinite(fan) ? fan : null,
    shown: Number.isFinite(fan) ? fmtNum(fan) : 'n/a',
    goal: `≥ ${fmtNum(fanoutGoal)}`,
    met: Number.isFinite(fan) ? fan >= fanoutGoal : null,
  });
  t.push(
    ratioOf(
      figures,
      'fanout_batch_vs_c',
      `fan-out to ${largestFanout} clients at saturation, ?batch=1 ÷ C ceiling`,
      [`fanout_${largestFanout}`, 'nlbridge-batch'],
      [`fanout_${largestFanout}`, 'c'],
      0.5,
    ),
  );
  const fanLost = val(figures, `fanout_${largestFanout}`, 'nlbridge-batch', 'lostAtCapacity');
  t.push({
    id: 'fanout_loss',
    label: `fan-out to ${largestFanout} clients, ?batch=1, messages never delivered at its capacity`,
    measured: Number.isFinite(fanLost) ? fanLost : null,
    shown: Number.isFinite(fanLost) ? fmtNum(fanLost) : 'n/a',
    goal: '0',
    met: Number.isFinite(fanLost) ? fanLost === 0 : null,
  });
  t.push(ratioOf(figures, 'send_vs_fastify', 'POST /send ÷ bare fastify', ['http_send', 'nlbridge'], ['http_send', 'bare-fastify'], 0.85));
  const perClient = val(figures, 'memory_per_client', 'nlbridge');
  t.push({
    id: 'memory_per_client',
    label: 'idle memory per client, nlbridge',
    measured: Number.isFinite(perClient) ? perClient : null,
    shown: Number.isFinite(perClient) ? fmtBytes(perClient) : 'n/a',
    goal: '≤ 50 KB',
    met: Number.isFinite(perClient) ? perClient <= 50_000 : null,
  });
  // Issue 18: the fleet against the bare NATS pair on the same server, and what publishing costs the local stream.
  t.push(
    ratioOf(
      figures,
      'fleet_vs_bare_nats',
      'netlink → nlbridge → NATS ÷ bare NATS publisher, flood msg/s',
      ['fleet_flood', 'nlbridge-nats'],
      ['fleet_flood', 'bare-nats'],
      0.5,
    ),
  );
  const fleetP99 = input(figures, 'fleet_latency_1k', 'nlbridge-nats', 'p99_us');
  t.push({
    id: 'fleet_p99_1k',
    label: 'p99 at 1,000 msg/s, netlink → nlbridge → NATS subscriber',
    measured: fleetP99.value,
    shown: fleetP99.value !== null ? `${fmtNum(fleetP99.value)} µs` : 'n/a',
    goal: '≤ 2,000 µs',
    met: fleetP99.value !== null ? fleetP99.value <= 2000 : null,
    inputs: [fleetP99],
  });
  // Both sides are the WS flood row, read as the other WS flood targets are (a side with nothing lost is a lower bound).
  t.push(
    floodRatioTarget(
      'ws_nats_on_vs_off',
      'one WS client, one msg/frame: --nats-publish on ÷ off',
      figures,
      'fleet_ws_one_frame',
      'nlbridge-nats',
      'nlbridge',
      0.9,
    ),
  );
  // The same target as the daemon's capacity: its CPU per delivered message, the median over the
  // row's runs on each side, which neither the one client's speed nor the sender's moves.
  t.push(
    ratioOf(
      figures,
      'ws_nats_on_vs_off_cpu',
      'same, as daemon capacity: its CPU/msg off ÷ on (medians)',
      ['fleet_ws_one_frame', 'nlbridge', 'daemonCpuUsPerMsgMedian'],
      ['fleet_ws_one_frame', 'nlbridge-nats', 'daemonCpuUsPerMsgMedian'],
      0.9,
    ),
  );
  // The same at a steady rate, where each side's CPU per message is steady (the flood's ranges 2×);
  // and without the linger (--nats-linger-ms 0), for what it buys.
  t.push(
    ratioOf(
      figures,
      'ws_nats_on_vs_off_cpu_steady',
      'same at a steady rate (the row above): daemon CPU/msg off ÷ on (medians)',
      ['fleet_ws_cpu_steady', 'nlbridge'],
      ['fleet_ws_cpu_steady', 'nlbridge-nats'],
      0.9,
    ),
  );
  // The same as sustained throughput: the rate one C reader is given every message at, on ÷ off.
  t.push(
    ratioOf(
      figures,
      'ws_nats_on_vs_off_sustained',
      'same, as sustained throughput: the highest clean rate of one C reader, on ÷ off (medians of the ramps)',
      ['fleet_ws_sustained', 'nlbridge-nats'],
      ['fleet_ws_sustained', 'nlbridge'],
      0.9,
    ),
  );
  t.push(
    ratioOf(
      figures,
      'ws_nats_nolinger_vs_off_cpu_steady',
      'same, publishing without the linger (--nats-linger-ms 0): off ÷ on',
      ['fleet_ws_cpu_steady', 'nlbridge'],
      ['fleet_ws_cpu_steady', 'nlbridge-nats-nolinger'],
      0.9,
    ),
  );
  return t;
}

/**
 * What each bridge and each reader adds to the raw netlink floor (the C
 * receiver's p50 in the same run): derived, with both inputs kept beside it.
 */
export function addedLatency(figures: Figures): void {
  const floor = val(figures, 'latency_1k', 'c', 'p50_us');
  for (const s of ['nlbridge', 'websocketd', 'nlbridge-creader', 'websocketd-creader']) {
    const p50 = val(figures, 'latency_1k', s, 'p50_us');
    if (!Number.isFinite(p50) && !figures.latency_1k?.[s]) continue;
    const added = p50 - floor;
    (figures.added_latency_1k ??= {})[s] = Number.isFinite(added)
      ? { value: added, p50_us: p50, floor_us: floor, from: `latency_1k.${s}.p50_us − latency_1k.c.p50_us` }
      : { value: null, error: 'needs latency_1k of the C ceiling and of this system (run the socket section too)' };
  }
}

export interface Machine {
  cpu: string;
  cpus: number;
  memoryGiB: number;
  kernel: string;
  node: string;
}

export function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
  };
}

export function markdown(
  figures: Figures,
  defs: FigureDef[],
  tgs: Target[],
  m: Machine,
  when: string,
  profile: string,
  load?: { atStart: number; atEnd: number },
): string {
  const lines: string[] = [];
  const loadText = load ? ` Load average ${load.atStart.toFixed(2)} at the start, ${load.atEnd.toFixed(2)} at the end.` : '';
  lines.push(`Run ${when} (${profile} profile) on ${m.cpus} × ${m.cpu}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Node ${m.node}.${loadText}`);
  lines.push('');
  lines.push('| figure | system | value | detail |');
  lines.push('|---|---|---:|---|');
  for (const d of defs) {
    let first = true;
    for (const s of d.systems) {
      const meas = figures[d.id]?.[s];
      if (!meas) continue;
      lines.push(`| ${first ? d.label : ''} | ${SYSTEM_NAMES[s] ?? s} | ${fmtValue(meas, d.unit)} | ${detail(d.id, meas)} |`);
      first = false;
    }
  }
  lines.push('');
  lines.push('| target (issue 6) | measured | goal | met |');
  lines.push('|---|---:|---|---|');
  for (const t of tgs) lines.push(`| ${t.label} | ${t.shown} | ${t.goal} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
  return lines.join('\n') + '\n';
}

const COLORS: Record<string, string> = {
  c: '#6b7280',
  addon: '#2563eb',
  nlbridge: '#2563eb',
  'nlbridge-batch': '#1e40af',
  'nlbridge-binary': '#60a5fa',
  'npm-netlink': '#d97706',
  websocketd: '#dc2626',
  'nlbridge-nats': '#7c3aed',
  'bare-nats': '#6b7280',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Horizontal bars, one group per throughput figure, each group on its own
 * linear scale (its largest bar is full width): the three systems (and npm
 * netlink) side by side, with the values written out.
 */
export function svgChart(figures: Figures, defs: FigureDef[], title: string): string {
  const groups = defs.filter((d) => d.unit === 'msg/s' || d.unit === 'deliveries/s');
  const W = 900;
  const left = 260;
  const barArea = W - left - 110;
  const barH = 18;
  const gap = 4;
  const groupGap = 16;
  const top = 50;
  let y = top;
  const parts: string[] = [];
  for (const d of groups) {
    const rows = d.systems.map((s) => ({ system: s, m: figures[d.id]?.[s] })).filter((r) => r.m !== undefined);
    if (rows.length === 0) continue;
    const max = Math.max(1, ...rows.map((r) => r.m!.value ?? 0));
    parts.push(`<text x="10" y="${y + 13}" font-weight="bold">${esc(d.label)} (${esc(d.unit)})</text>`);
    y += barH + gap;
    for (const r of rows) {
      const name = SYSTEM_NAMES[r.system] ?? r.system;
      parts.push(`<text x="24" y="${y + 13}">${esc(name)}</text>`);
      const v = r.m!.value;
      if (v !== null && Number.isFinite(v)) {
        const w = Math.max(1, (v / max) * barArea);
        parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${COLORS[r.system] ?? '#888'}"/>`);
        parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 13}">${esc(fmtNum(v))}</text>`);
      } else {
        parts.push(`<text x="${left + 4}" y="${y + 13}" fill="#888">n/a</text>`);
      }
      y += barH + gap;
    }
    y += groupGap;
  }
  const H = y + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="10" y="24" font-size="15" font-weight="bold">${esc(title)}</text>`,
    ...parts,
    `<text x="10" y="${H - 10}" fill="#555">Higher is better. Each group is scaled to its own largest bar.</text>`,
    '</svg>',
    '',
  ].join('\n');
}

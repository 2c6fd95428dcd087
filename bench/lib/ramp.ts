// Fan-out at saturation (issue 17): ramp the offered deliveries/s until the
// system falls behind or loses, with the soak's majority-of-attempts rule
// (RampSettings in profile.ts says the rule). The same search runs for every
// system; only the attempt differs: C readers on a bridge (wsRamp) or
// nlb_sink's netlink sockets (sinkRamp).

import { flood } from '../scenarios/socket_level';
import { sleep, startC, type JsonObject, type Proc } from './proc';
import type { Profile, RampSettings } from './profile';
import { num, type Measurement } from './result';
import { probeUntilUp } from './ws_load';

export interface Counts {
  /** Sender msg/s asked for, and what it did. */
  rate: number;
  sent: number;
  sendRate: number;
  /** Least and most messages a client (socket) had, lagMs after the sender's end. */
  min: number;
  max: number;
  /** Messages never delivered (sent × clients − delivered, once the bridge's backlog drained), and out of order. */
  lost: number;
  disorder: number;
}

export interface Attempt extends Counts {
  clean: boolean;
  why: string;
  [detail: string]: unknown;
}

export interface Step {
  deliveries: number;
  rate: number;
  clean: boolean;
  attempts: Attempt[];
}

export interface RampResult extends Measurement {
  /** Highest clean step, deliveries/s (the figure). */
  value: number | null;
  clients: number;
  rule: string;
  steps: Step[];
  saturated: boolean;
}

const RULE =
  'clean attempt: sender ≥ 97 % of its rate, every client every message once and in order within lagMs of the sender end, no client closed; a step is clean by the majority of `tries` attempts; ×2 until a step is not clean (÷2 until one is), then bisections';

/** Whether an attempt is clean, and why not. */
function verdict(a: Counts, clients: number, open: number, closes: Record<string, number>): { clean: boolean; why: string } {
  const why: string[] = [];
  if (a.sendRate < 0.97 * a.rate) why.push(`sender reached ${Math.round(a.sendRate)} msg/s`);
  if (a.min < a.sent) why.push(`min client ${a.min}/${a.sent}`);
  if (a.max > a.sent) why.push(`max client ${a.max}/${a.sent} (duplicates)`);
  if (a.disorder > 0) why.push(`${a.disorder} out of order`);
  if (open < clients) why.push(`${clients - open} clients closed ${JSON.stringify(closes)}`);
  return { clean: why.length === 0, why: why.join(', ') };
}

/** The search itself: attempt(rate) at sender msg/s, for `clients` receivers. */
export async function ramp(s: RampSettings, clients: number, attempt: (rate: number) => Promise<Attempt>): Promise<RampResult> {
  const needed = Math.ceil((s.tries + 1) / 2);
  const steps: Step[] = [];
  const step = async (deliveries: number): Promise<Step> => {
    const rate = deliveries / clients;
    const attempts: Attempt[] = [];
    let clean = 0;
    while (clean < needed && attempts.length - clean < needed) {
      const a = await attempt(rate);
      attempts.push(a);
      if (a.clean) clean++;
    }
    const st = { deliveries, rate, clean: clean >= needed, attempts };
    steps.push(st);
    process.stderr.write(
      `bench:   ramp ${clients} clients ${Math.round(deliveries)}/s ${st.clean ? 'clean' : 'NOT clean'} (${attempts.map((a) => (a.clean ? '✓' : `✗ ${a.why}`)).join('; ')})\n`,
    );
    return st;
  };
  let lo = 0;
  let hi = Infinity;
  let d = s.startDeliveries;
  for (;;) {
    const st = await step(d);
    if (st.clean) {
      lo = d;
      if (hi < Infinity || d * 2 > s.maxDeliveries) break;
      d *= 2;
    } else {
      hi = d;
      if (lo > 0 || d / 2 < s.startDeliveries / 16) break;
      d /= 2;
    }
  }
  if (lo > 0 && hi < Infinity) {
    for (let i = 0; i < s.bisections; i++) {
      const mid = Math.round((lo + hi) / 2);
      if ((await step(mid)).clean) lo = mid;
      else hi = mid;
    }
  }
  const at = steps.find((x) => x.deliveries === lo && x.clean);
  const out: RampResult = {
    value: lo,
    clients,
    rule: RULE,
    settings: s,
    saturated: hi < Infinity,
    firstUnclean: hi < Infinity ? hi : null,
    steps,
  };
  if (at) {
    // Loss inside the clean step (a majority-clean step may hold one unclean attempt).
    out.lostAtCapacity = at.attempts.reduce((n, a) => n + a.lost, 0);
    out.attemptsAtCapacity = at.attempts.length;
  }
  if (lo === 0) out.error = `no clean step down to ${Math.round(steps[steps.length - 1]?.deliveries ?? 0)} deliveries/s`;
  return out;
}

/** C readers (bench/c/nlb_ws_reader.c -R) holding `clients` connections to url, up and probed, for a ramp of settings s. */
export async function startReaders(p: Profile, s: RampSettings, url: string, clients: number): Promise<Proc[]> {
  const per = s.clientsPerReader;
  const readers: Proc[] = [];
  for (let i = 0; i < clients; i += per) readers.push(startC('nlb_ws_reader', ['-u', url, '-R', '-k', Math.min(per, clients - i)]));
  try {
    const ready = await Promise.all(readers.map((r) => r.waitForKey('ready', 120_000)));
    const connected = ready.reduce((n, r) => n + num(r.connected), 0);
    if (connected < clients)
      throw new Error(
        `only ${connected} of ${clients} clients connected: ${readers
          .map((r) => r.stderr())
          .join(' ')
          .slice(0, 300)}`,
      );
    await probeUntilUp(p, readers, 60_000);
    // JIT and buffers warm: one attempt's worth of probes at the ramp's first rate.
    const rate = s.startDeliveries / clients;
    await flood({ group: p.group, count: Math.max(10, Math.round(rate * s.attemptSeconds)), seconds: 10, rate, probe: true });
    await sleep(300);
    return readers;
  } catch (err) {
    await stopReaders(readers);
    throw err;
  }
}

export async function stopReaders(readers: Proc[]): Promise<void> {
  for (const r of readers) if (!r.exit) r.child.stdin!.write('exit\n');
  await Promise.all(readers.map((r) => r.stop(1000)));
}

let nextId = 1;

async function ask(readers: Proc[], line: (id: number) => string, key: string): Promise<JsonObject[]> {
  const id = nextId++;
  for (const r of readers) r.child.stdin!.write(line(id) + '\n');
  return Promise.all(
    readers.map((r) =>
      r.waitFor((l) => key in l && (typeof l[key] === 'object' ? num((l[key] as JsonObject).id) : num(l[key])) === id, 10_000),
    ),
  );
}

interface ReaderReport {
  clients: number;
  open: number;
  min: number;
  max: number;
  total: number;
  disorder: number;
  cpuSeconds: number;
  closes: Record<string, number>;
}

async function reports(readers: Proc[]): Promise<ReaderReport[]> {
  return (await ask(readers, (id) => `report ${id}`, 'report')).map((l) => l.report as ReaderReport);
}

/** A whole ramp of settings s through the bridge at url, read by C readers holding `clients` connections. */
export async function rampThroughReaders(p: Profile, s: RampSettings, url: string, clients: number): Promise<RampResult> {
  const readers = await startReaders(p, s, url, clients);
  try {
    return await ramp(s, clients, (rate) => wsAttempt(p, s, readers, clients, rate));
  } finally {
    await stopReaders(readers);
  }
}

/** One attempt of a ramp of settings s through a bridge read by C readers at `rate` msg/s. */
export async function wsAttempt(p: Profile, s: RampSettings, readers: Proc[], clients: number, rate: number): Promise<Attempt> {
  const count = Math.max(10, Math.round(rate * s.attemptSeconds));
  // Every reader back to zero, expecting `count` each.
  const id = nextId++;
  for (const r of readers) r.child.stdin!.write(`reset ${id} ${count}\n`);
  await Promise.all(readers.map((r) => r.waitFor((l) => num(l.reset) === id, 10_000)));
  const cpu0 = (await reports(readers)).reduce((n, r) => n + r.cpuSeconds, 0);
  const sent = await flood({ group: p.group, count, seconds: s.attemptSeconds * 2 + 5, rate });
  const done = Promise.all(readers.map((r) => r.waitFor((l) => num(l.done) === id, s.lagMs)));
  await done.catch(() => undefined);
  const reps = await reports(readers);
  const closes: Record<string, number> = {};
  for (const r of reps) for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] ?? 0) + v;
  const open = reps.reduce((n, r) => n + r.open, 0);
  const total = reps.reduce((n, r) => n + r.total, 0);
  const base = {
    rate,
    sent: num(sent.sent),
    sendRate: num(sent.rate),
    min: Math.min(...reps.map((r) => r.min)),
    max: Math.max(...reps.map((r) => r.max)),
    lost: num(sent.sent) * clients - total,
    disorder: reps.reduce((n, r) => n + r.disorder, 0),
    readerCpuSeconds: reps.reduce((n, r) => n + r.cpuSeconds, 0) - cpu0,
  };
  const v = verdict(base, clients, open, closes);
  // Not there after lagMs is late or lost: what the backlog still brings is late.
  const missingAtLag = base.lost;
  if (!v.clean) base.lost = num(sent.sent) * clients - (await quiet(readers));
  return { ...base, missingAtLag, ...v };
}

/** After an unclean attempt, wait until the bridge's backlog has drained (nothing new for 300 ms, at most 15 s); the messages then delivered. */
async function quiet(readers: Proc[]): Promise<number> {
  const until = Date.now() + 15_000;
  let last = -1;
  while (Date.now() < until) {
    const total = (await reports(readers)).reduce((n, r) => n + r.total, 0);
    if (total === last) return total;
    last = total;
    await sleep(300);
  }
  return last;
}

/** One attempt of the C ceiling: nlb_sink with `clients` netlink sockets on the group. */
export async function sinkAttempt(p: Profile, clients: number, rate: number): Promise<Attempt> {
  const s = p.fanoutRamp;
  const count = Math.max(10, Math.round(rate * s.attemptSeconds));
  const sink = startC('nlb_sink', [
    '-g',
    p.group,
    '-n',
    count,
    '-k',
    clients,
    '-t',
    s.attemptSeconds * 2 + 10,
    '-i',
    300,
    '-b',
    p.rcvbuf,
    '-p',
    2,
  ]);
  try {
    await sink.waitForKey('ready', 10_000);
    const sent = await flood({ group: p.group, count, seconds: s.attemptSeconds * 2 + 5, rate });
    let got: JsonObject;
    let behind = false;
    try {
      got = await sink.waitForKey('received', s.lagMs);
    } catch {
      behind = true;
      got = await sink.waitForKey('received', s.attemptSeconds * 2 + 15_000);
    }
    const base = {
      rate,
      sent: num(sent.sent),
      sendRate: num(sent.rate),
      min: num(got.min_per_socket),
      max: num(got.max_per_socket),
      lost: num(sent.sent) * clients - num(got.received),
      disorder: 0,
      drops: num(got.drops),
      receiverCpuNsPerMsg: num(got.cpuNsPerMsg),
    };
    const v = verdict(base, clients, clients, {});
    if (behind && v.clean) return { ...base, clean: false, why: `complete only after ${s.lagMs} ms` };
    if (base.drops > 0) return { ...base, clean: false, why: [v.why, `${base.drops} dropped`].filter(Boolean).join(', ') };
    return { ...base, ...v };
  } finally {
    await sink.stop(500);
  }
}

// Case 7: soak. 100 WebSocket clients on one group at half of the saturation
// of the 100-client fan-out, for NLBRIDGE_SOAK_SECONDS (default 300 s: what
// `npm test` and .ci/run do, so the reliability suite stays under 15 min; set
// NLBRIDGE_SOAK_SECONDS=600 for the issue's 10 minutes).
//
// 1. Saturation, measured in this run (never hard-coded: the host may be
//    busy): a first daemon, the 100 clients (two agent processes of 50,
//    support/soak_clients.ts), the bench's C sender (bench/c/nlb_flood.c)
//    paced at R msg/s for STEP_SECONDS. A step is clean when every client got
//    every message exactly once and in order within LAG_MS of the sender's
//    end, with no event frame (dropped, overrun, ...), no netlink overrun and
//    the sender on pace; a step is clean or not by the majority of STEP_TRIES
//    attempts. R doubles from RAMP_START until a step is not clean, then
//    BISECT_STEPS bisections; saturation = the highest clean R.
// 2. Soak on a fresh daemon (so the ramp's overload leaves nothing behind):
//    100 new clients at half of that saturation for the soak's duration.
//    Pass: each client received every message, exactly once and in order; the
//    daemon's netlink overrun and frame-drop metrics stay 0; its live heap
//    after full GCs grows by at most HEAP_GROWTH_LIMIT and its RSS at the end
//    is within RSS_BAND of the first half's highest (both after warm-up); its
//    open fds at the end equal those after FD_WARMUP seconds within
//    FD_TOLERANCE.
//
// Why not an RSS slope (the rule until 2026-11-29): between the daemon's full
// GCs its RSS climbs, at 5,600 msg/s by ≈ 9 MB/min (garbage promoted to the
// old generation), and drops at the next full GC, ≈ every 50–100 s; a 150 s
// window's slope was -0.2 MB/min in one CI run and 9.1 in the next with the
// same code (no leak: --trace-gc showed the live heap after every full GC at
// 13–18 MB through a 200 s run). So the daemon runs with --trace-gc, and a
// leak is looked for where it shows without that sawtooth:
// - the live heap after full GCs (JavaScript retention: a received message
//   with its JSON frame is over 200 B, per delivery ×100): at most 8 MB above
//   its lowest after warm-up, a few bytes per message of the soak (the
//   figure prints the bound);
// - native memory and everything else: the RSS at the end at most 32 MB
//   above the highest RSS of the first half after warm-up (the sawtooth's
//   height is ≈ 10–25 MB); coarse, ≈ 40 B per message at 5,600 msg/s over
//   the second half. The addon's own allocations are checked under ASan
//   (tests/host/addon_asan.test.ts).
// Half of saturation is a margin, not a guarantee: on this shared host one
// run (each step then decided by a single attempt) measured 6,400 msg/s in a
// quiet moment, soaked at 3,200 while other tests loaded the host, and lost
// 25,845 messages to three netlink overruns (told to every client as overrun
// events, and in /metrics) — the case failed, as it must when anything is
// lost. The failure message shows the daemon's CPU share and the host load
// next to how far the slowest client fell behind, to tell the two apart.
// FD_TOLERANCE 2: the count is read before any HTTP request of the test's own
// (they are made without keep-alive), so the daemon's fds are its sockets,
// pipes and the 100 clients; the tolerance only allows for a socket being
// accepted or closed at the instant of reading.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { Proc, sleep, type JsonObject } from '../../bench/lib/proc';
import { REPO_ROOT, recordCase } from './support/report';
import { rssBytes, spawnDaemon, type DaemonProc } from './support/daemon_proc';

const SOAK_SECONDS = Number(process.env.NLBRIDGE_SOAK_SECONDS ?? 300);
const GROUP = 19;
const CLIENTS = 100;
const AGENTS = 2;
const STEP_SECONDS = 3;
/** A clean ramp step has every message at every client this long after the sender's last one. */
const LAG_MS = 300;
const RAMP_START = 200;
const RAMP_MAX = 64_000;
const BISECT_STEPS = 3;
const STEP_TRIES = 3;
const NEEDED = Math.ceil((STEP_TRIES + 1) / 2);
/**
 * Retention limits (why these values: see the top of the file): the live V8
 * heap after the last full GC may exceed its lowest after HEAP_WARMUP by
 * HEAP_GROWTH_LIMIT; the RSS at the end may exceed the highest RSS of the
 * first half after warm-up by RSS_BAND.
 */
const HEAP_GROWTH_LIMIT = 8 * 1024 * 1024;
const RSS_BAND = 32 * 1024 * 1024;
const HEAP_WARMUP = Math.min(35, SOAK_SECONDS / 4);
/** A --trace-gc line of a full GC: live heap (committed) before -> after, MB. */
const FULL_GC = /Mark-Compact (?:\([a-z ]+\) )?[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;
const FD_WARMUP = Math.min(30, SOAK_SECONDS / 4);
const FD_TOLERANCE = 2;
const MB = 1024 * 1024;
const FLOOD = path.join(REPO_ROOT, '.cache', 'reliability', 'soak', 'nlb_flood');
const SAMPLES = path.join(REPO_ROOT, '.cache', 'reliability', 'soak', 'samples.json');
const AGENT = path.join(REPO_ROOT, 'dist', 'tests', 'reliability', 'support', 'soak_clients.js');
const MASK = (1 << (GROUP - 1)) >>> 0;

before(() => {
  mkdirSync(path.dirname(FLOOD), { recursive: true });
  // Own copy: other cases and bench runs may be executing theirs.
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', FLOOD, path.join(REPO_ROOT, 'bench', 'c', 'nlb_flood.c')]);
  assert.ok(
    Number.isFinite(SOAK_SECONDS) && SOAK_SECONDS >= 20,
    `NLBRIDGE_SOAK_SECONDS=${process.env.NLBRIDGE_SOAK_SECONDS} (at least 20)`,
  );
});

interface FloodResult {
  sent: number;
  failed: number;
  first_errno: number;
  seconds: number;
  rate: number;
}

function flood(rate: number, count: number, seconds: number, probe = false): Promise<FloodResult> {
  const args = [
    '-g',
    String(GROUP),
    '-n',
    String(count),
    '-t',
    String(seconds),
    '-r',
    String(Math.round(rate)),
    '-p',
    '2',
    ...(probe ? ['-P'] : []),
  ];
  return new Promise((resolve, reject) =>
    execFile(FLOOD, args, (err, stdout, stderr) =>
      err && !stdout ? reject(new Error(`${err.message} ${stderr}`)) : resolve(JSON.parse(stdout) as FloodResult),
    ),
  );
}

/** GET without keep-alive: the daemon's fd count must not depend on our HTTP client's pool. */
function httpGet(d: DaemonProc, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${d.base}${p}`, { agent: false, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
  });
}

interface Metrics {
  overrunLost: number;
  overruns: number;
  rxDrops: number;
  wsDropped: number;
  closedSlow: number;
  received: number;
}

async function metrics(d: DaemonProc): Promise<Metrics> {
  const text = await httpGet(d, '/metrics');
  // Families with labels are summed over their labels.
  const sum = (name: string, label = ''): number => {
    let n = 0;
    for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'gm')))
      if (!label || (m[1] ?? '').includes(label)) n += Number(m[2]);
    return n;
  };
  return {
    overrunLost: sum('nlbridge_netlink_overrun_lost_messages_total'),
    overruns: sum('nlbridge_netlink_overruns_total'),
    rxDrops: sum('nlbridge_rx_socket_drops_total'),
    wsDropped: sum('nlbridge_websocket_frames_dropped_total'),
    closedSlow: sum('nlbridge_websocket_closed_slow_total'),
    received: sum('nlbridge_received_messages_total', `group="${GROUP}"`),
  };
}

interface Report {
  connected: number;
  open: number;
  min: number;
  max: number;
  total: number;
  disorder: number;
  firstDisorder: unknown;
  events: Record<string, number>;
  closes: Record<string, number>;
  errors: number;
  idleMs: number | null;
  cpuSeconds: number;
}

/** The 100 clients, spread over AGENTS processes. */
class Clients {
  private seq = 0;
  private constructor(private readonly agents: Proc[]) {}

  static async start(d: DaemonProc): Promise<Clients> {
    const per = CLIENTS / AGENTS;
    const agents = Array.from(
      { length: AGENTS },
      (_, i) =>
        new Proc(`soak_clients#${i}`, process.execPath, [AGENT, JSON.stringify({ url: `${d.wsBase}/groups/${MASK}`, clients: per })]),
    );
    const ready = await Promise.all(agents.map((a) => a.waitForKey('ready', 30_000)));
    const c = new Clients(agents);
    const connected = ready.reduce((n, r) => n + Number(r.connected), 0);
    if (connected !== CLIENTS) {
      await c.exit();
      throw new Error(`only ${connected}/${CLIENTS} clients connected`);
    }
    return c;
  }

  private async ask(cmd: string, key: string): Promise<JsonObject[]> {
    const id = ++this.seq;
    for (const a of this.agents) a.command({ cmd, id });
    return Promise.all(this.agents.map((a) => a.waitFor((l) => key in l && l.id === id, 10_000)));
  }

  /** Zero the counters; the path is then proved up again with probes (not counted). */
  async reset(): Promise<void> {
    const answers = await this.ask('reset', 'reset');
    let up = false;
    // Only a probed line printed after this reset's answer counts.
    const all = Promise.all(
      this.agents.map((a, i) => a.waitFor((l) => 'probed' in l && a.lines.indexOf(l) > a.lines.indexOf(answers[i]), 15_000)),
    );
    let failed = false;
    all.then(
      () => (up = true),
      () => (failed = true),
    );
    while (!up && !failed) {
      await flood(200, 5, 1, true);
      // Waits for the event (every agent's probed line), re-sending a probe
      // burst each 100 ms until it comes: a burst may land before a client
      // is back on the group.
      await Promise.race([all, sleep(100)]);
    }
    await all;
  }

  async report(): Promise<Report> {
    const rs = (await this.ask('report', 'report')).map((l) => l.report as Report);
    const sumRec = (pick: (r: Report) => Record<string, number>): Record<string, number> => {
      const o: Record<string, number> = {};
      for (const r of rs) for (const [k, v] of Object.entries(pick(r))) o[k] = (o[k] ?? 0) + v;
      return o;
    };
    return {
      connected: rs.reduce((n, r) => n + r.connected, 0),
      open: rs.reduce((n, r) => n + r.open, 0),
      min: Math.min(...rs.map((r) => r.min)),
      max: Math.max(...rs.map((r) => r.max)),
      total: rs.reduce((n, r) => n + r.total, 0),
      disorder: rs.reduce((n, r) => n + r.disorder, 0),
      firstDisorder: rs.find((r) => r.firstDisorder)?.firstDisorder ?? null,
      events: sumRec((r) => r.events),
      closes: sumRec((r) => r.closes),
      errors: rs.reduce((n, r) => n + r.errors, 0),
      idleMs: rs.some((r) => r.idleMs === null) ? null : Math.min(...rs.map((r) => r.idleMs!)),
      cpuSeconds: rs.reduce((n, r) => n + r.cpuSeconds, 0),
    };
  }

  /**
   * Reports until every client has `count` messages or `ms` passed; the
   * last report either way, since in a ramp step the time is what is tested
   * (every message within LAG_MS) and the caller says what fell short.
   */
  async waitFor(count: number, ms: number): Promise<Report> {
    const until = Date.now() + ms;
    for (;;) {
      const r = await this.report();
      if (r.min >= count || Date.now() >= until) return r;
      await sleep(25); // between two reports
    }
  }

  /** Until no client received anything for 500 ms (at most 15 s). */
  async quiet(): Promise<void> {
    const until = Date.now() + 15_000;
    while (Date.now() < until) {
      const r = await this.report();
      if (r.idleMs === null || r.idleMs > 500) return;
      // Quiet is an absence (nothing more arrives), so it is a time: the
      // agents' own idle clock, probed every 100 ms.
      await sleep(100);
    }
  }

  async exit(): Promise<void> {
    for (const a of this.agents) a.command({ cmd: 'exit' });
    await Promise.all(this.agents.map((a) => a.stop(3000)));
  }
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
const CLK_TCK = 100;
/** utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15). */
const cpuTicks = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return num / den;
}

interface Step {
  rate: number;
  clean: boolean;
  why: string;
  /** Attempts made (see step). */
  tries: number;
}

/**
 * A ramp step at `rate` msg/s, decided by a majority of STEP_TRIES attempts
 * (two clean or two unclean, at most three): on a shared 2-core host another
 * process can stall the daemon for a second, which a 3 s step cannot absorb,
 * or leave it a quiet moment; one attempt alone would let either decide the
 * saturation the whole soak depends on.
 */
async function step(d: DaemonProc, clients: Clients, rate: number): Promise<Step> {
  const whys: string[] = [];
  let clean = 0;
  let tries = 0;
  while (clean < NEEDED && tries - clean < NEEDED) {
    tries++;
    const why = await attempt(d, clients, rate);
    if (why) whys.push(why);
    else clean++;
  }
  return { rate, clean: clean >= NEEDED, why: whys.join('; '), tries };
}

/** One attempt at `rate` msg/s: '' when clean, else why not. */
async function attempt(d: DaemonProc, clients: Clients, rate: number): Promise<string> {
  const count = Math.round(rate * STEP_SECONDS);
  await clients.reset();
  const m0 = await metrics(d);
  const sent = await flood(rate, count, STEP_SECONDS + 5);
  const r = await clients.waitFor(sent.sent, LAG_MS);
  const m1 = await metrics(d);
  const why: string[] = [];
  if (sent.failed) why.push(`sender failed ${sent.failed} (errno ${sent.first_errno})`);
  if (sent.rate < 0.97 * rate) why.push(`sender reached ${Math.round(sent.rate)} msg/s`);
  if (r.min < sent.sent) why.push(`min client ${r.min}/${sent.sent} after ${LAG_MS} ms`);
  if (r.disorder) why.push(`${r.disorder} out of order`);
  if (Object.keys(r.events).length) why.push(`events ${JSON.stringify(r.events)}`);
  if (m1.overrunLost > m0.overrunLost) why.push(`netlink overrun lost ${m1.overrunLost - m0.overrunLost}`);
  if (m1.wsDropped > m0.wsDropped) why.push(`frames dropped ${m1.wsDropped - m0.wsDropped}`);
  if (r.open < CLIENTS) why.push(`${CLIENTS - r.open} clients closed ${JSON.stringify(r.closes)}`);
  if (why.length) await clients.quiet();
  return why.join(', ');
}

/** Saturation of the 100-client fan-out on a daemon of its own: the highest clean step. */
async function saturation(): Promise<{ rate: number; steps: Step[] }> {
  const d = await spawnDaemon(['--auth', 'none', '--log-level', 'info']);
  const clients = await Clients.start(d);
  const steps: Step[] = [];
  try {
    // JIT warm-up: probes (not counted) at a modest rate.
    await clients.reset();
    await flood(1000, 3000, 10, true);
    let lo = 0;
    let hi = 0;
    for (let rate = RAMP_START; rate <= RAMP_MAX; rate *= 2) {
      const s = await step(d, clients, rate);
      steps.push(s);
      if (!s.clean) {
        hi = rate;
        break;
      }
      lo = rate;
    }
    if (lo > 0 && hi > 0) {
      for (let i = 0; i < BISECT_STEPS; i++) {
        const rate = Math.round((lo + hi) / 2);
        const s = await step(d, clients, rate);
        steps.push(s);
        if (s.clean) lo = rate;
        else hi = rate;
      }
    }
    return { rate: lo, steps };
  } finally {
    await clients.exit();
    await d.stop();
  }
}

let d: DaemonProc | null = null;
after(async () => {
  if (d) assert.equal(await d.stop(), 0, 'the soak daemon exits cleanly');
});

test(`case 7: soak, ${CLIENTS} clients at half of saturation for ${SOAK_SECONDS} s`, async () => {
  const sat = await saturation();
  const ramp = sat.steps.map((s) => `${s.rate}${s.clean ? '✓' : '✗'}${s.why ? ` (${s.why})` : ''}`).join(', ');
  console.log(`# saturation ${sat.rate} msg/s × ${CLIENTS} clients = ${sat.rate * CLIENTS} deliveries/s; ramp: ${ramp}`);
  assert.ok(sat.rate >= RAMP_START, `no clean ramp step: ${ramp}`);
  assert.ok(
    sat.steps.some((s) => !s.clean),
    `the ramp never saturated up to ${RAMP_MAX} msg/s: ${ramp}`,
  );

  const rate = Math.floor(sat.rate / 2);
  const count = rate * SOAK_SECONDS;
  const daemon = await spawnDaemon(['--auth', 'none', '--log-level', 'info'], {}, ['--trace-gc']);
  d = daemon;
  const pid = daemon.pid;
  const clients = await Clients.start(d);
  await clients.reset();
  const m0 = await metrics(d);
  console.log(`# soak: ${rate} msg/s × ${CLIENTS} clients = ${rate * CLIENTS} deliveries/s for ${SOAK_SECONDS} s (${count} messages)`);

  const samples: { t: number; rss: number; fds: number }[] = [];
  // The live heap after each full GC, stamped with the sample that saw its --trace-gc line.
  const fullGcs: { t: number; live: number }[] = [];
  let logsSeen = daemon.logs.length;
  const t0 = Date.now();
  const sample = (): void => {
    const t = (Date.now() - t0) / 1000;
    samples.push({ t, rss: rssBytes(pid), fds: fdCount(pid) });
    for (; logsSeen < daemon.logs.length; logsSeen++) {
      const gc = FULL_GC.exec(String(daemon.logs[logsSeen].msg ?? ''));
      if (gc) fullGcs.push({ t, live: Number(gc[1]) * MB });
    }
  };
  sample();
  const sampler = setInterval(sample, 1000);
  // Every 5 s: how far the slowest client is behind the sender's schedule,
  // the daemon's CPU share and the host's load, to tell a daemon that falls
  // behind from one the host does not run (the failure message shows them).
  const progress: { t: number; behind: number; daemonCpu: number; load1: number; events: number }[] = [];
  let cpuPrev = cpuTicks(pid);
  let tPrev = Date.now();
  let polling = false;
  const poller = setInterval(() => {
    if (polling) return;
    polling = true;
    void clients
      .report()
      .then((rep) => {
        const now = Date.now();
        const cpu = cpuTicks(pid);
        const t = (now - t0) / 1000;
        progress.push({
          t,
          behind: Math.min(count, Math.round(rate * t)) - rep.min,
          daemonCpu: (cpu - cpuPrev) / CLK_TCK / ((now - tPrev) / 1000),
          load1: os.loadavg()[0],
          events: Object.values(rep.events).reduce((a, b) => a + b, 0),
        });
        cpuPrev = cpu;
        tPrev = now;
      })
      .catch(() => undefined)
      .finally(() => (polling = false));
  }, 5000);
  const sent = await flood(rate, count, SOAK_SECONDS + 30);
  clearInterval(sampler);
  clearInterval(poller);
  sample();
  const r = await clients.waitFor(count, 10_000);
  // Before any HTTP request of ours: the fds are the daemon's own and the 100 clients'.
  const fdEnd = fdCount(pid);
  const m1 = await metrics(d);
  const alive = d.alive();
  await clients.exit();

  // The series, for a look at the trend (e.g. a plot) when the case fails.
  writeFileSync(SAMPLES, JSON.stringify({ rate, seconds: SOAK_SECONDS, saturation: sat, samples, progress }));
  const worst = progress.reduce(
    (w, p) => (p.behind > w.behind ? p : w),
    progress[0] ?? { t: 0, behind: 0, daemonCpu: 0, load1: 0, events: 0 },
  );
  const firstEvent = progress.find((p) => p.events > 0);
  const overrunLogs = d.logs.filter((l) => /overrun/i.test(String(l.msg))).length;
  const diagnosis =
    `slowest client at most ${worst.behind} messages behind (at ${worst.t.toFixed(0)} s: daemon CPU ${(worst.daemonCpu * 100).toFixed(0)} %, host load ${worst.load1.toFixed(1)}); ` +
    `daemon CPU ${(Math.min(...progress.map((p) => p.daemonCpu)) * 100).toFixed(0)}–${(Math.max(...progress.map((p) => p.daemonCpu)) * 100).toFixed(0)} % per 5 s, host load ${Math.min(...progress.map((p) => p.load1)).toFixed(1)}–${Math.max(...progress.map((p) => p.load1)).toFixed(1)}` +
    (firstEvent
      ? `; first event frames by ${firstEvent.t.toFixed(0)} s (daemon CPU ${(firstEvent.daemonCpu * 100).toFixed(0)} %, load ${firstEvent.load1.toFixed(1)}), ${overrunLogs} overrun log lines`
      : '');
  console.log(`# ${diagnosis}`);
  const half = samples.filter((s) => s.t >= SOAK_SECONDS / 2 && s.t <= SOAK_SECONDS);
  const perMin = slope(
    half.map((s) => s.t / 60),
    half.map((s) => s.rss),
  );
  const warmGcs = fullGcs.filter((g) => g.t >= HEAP_WARMUP);
  const heapLow = warmGcs.length ? Math.min(...warmGcs.map((g) => g.live)) : 0;
  const heapLast = warmGcs.length ? warmGcs[warmGcs.length - 1].live : 0;
  const heapGrowth = heapLast - heapLow;
  const firstHalfMax = Math.max(...samples.filter((s) => s.t >= HEAP_WARMUP && s.t < SOAK_SECONDS / 2).map((s) => s.rss));
  const fdWarm = samples.find((s) => s.t >= FD_WARMUP)!.fds;
  const fdMax = Math.max(...samples.filter((s) => s.t >= FD_WARMUP).map((s) => s.fds));
  const rssFirst = samples[0].rss;
  const rssWarm = half[0].rss;
  const rssEnd = samples[samples.length - 1].rss;
  const rssMax = Math.max(...samples.map((s) => s.rss));
  const delta = (k: keyof Metrics): number => m1[k] - m0[k];
  // The bounds in bytes per message: what a leak would have to hold per message to stay under them.
  const heapPerMsgBound = HEAP_GROWTH_LIMIT / (rate * (SOAK_SECONDS - HEAP_WARMUP));
  const rssPerMsgBound = RSS_BAND / ((rate * SOAK_SECONDS) / 2);
  const mb = (b: number): string => (b / MB).toFixed(1);

  const figure =
    `saturation ${sat.rate} msg/s × ${CLIENTS} clients = ${sat.rate * CLIENTS} deliveries/s (ramp ${sat.steps.map((s) => `${s.rate}${s.clean ? '✓' : '✗'}${s.tries > 2 ? `(${s.tries} tries)` : ''}`).join(' ')}); ` +
    `soak ${SOAK_SECONDS} s at ${rate} msg/s (${rate * CLIENTS} deliveries/s, sender ${Math.round(sent.rate)}): ${sent.sent} sent, every client got min ${r.min} / max ${r.max}, ` +
    `${r.disorder} out of order, events ${JSON.stringify(r.events)}, ${r.open}/${CLIENTS} open; overrun lost ${m1.overrunLost}, rx drops ${m1.rxDrops}, frames dropped ${m1.wsDropped}, closed slow ${m1.closedSlow}; ` +
    `live heap after ${warmGcs.length} full GCs from ${HEAP_WARMUP} s: ${warmGcs.length ? `${mb(heapLow)}–${mb(Math.max(...warmGcs.map((g) => g.live)))} MB, the last ${mb(heapLast)} (growth ${mb(heapGrowth)} MB, limit ${mb(HEAP_GROWTH_LIMIT)} = ${heapPerMsgBound.toFixed(1)} B per message)` : 'none'}; ` +
    `RSS ${mb(rssFirst)} → ${mb(rssWarm)} at ${SOAK_SECONDS / 2} s → ${mb(rssEnd)} MB (max ${mb(rssMax)}; first-half max after warm-up ${mb(firstHalfMax)}, band ${mb(RSS_BAND)} = ${rssPerMsgBound.toFixed(1)} B per message; second-half slope ${(perMin / MB).toFixed(3)} MB/min, for the record); fds ${fdWarm} at ${FD_WARMUP} s → ${fdEnd} at the end (max ${fdMax}, tolerance ±${FD_TOLERANCE}); ` +
    `client processes' CPU ${r.cpuSeconds.toFixed(0)} s`;
  console.log(`# ${figure}`);
  const pass =
    alive &&
    sent.sent === count &&
    sent.failed === 0 &&
    r.min === count &&
    r.max === count &&
    r.disorder === 0 &&
    Object.keys(r.events).length === 0 &&
    r.open === CLIENTS &&
    m1.overrunLost === 0 &&
    m1.overruns === 0 &&
    m1.rxDrops === 0 &&
    m1.wsDropped === 0 &&
    m1.closedSlow === 0 &&
    delta('received') >= count &&
    heapGrowth <= HEAP_GROWTH_LIMIT &&
    rssEnd <= firstHalfMax + RSS_BAND &&
    Math.abs(fdEnd - fdWarm) <= FD_TOLERANCE;
  recordCase({ name: '7. Soak', figure, pass });

  assert.ok(alive, 'the daemon is up');
  assert.equal(sent.sent, count, 'the sender sent every message');
  assert.equal(sent.failed, 0);
  assert.ok(sent.rate > 0.97 * rate, `the sender kept its pace (${sent.rate} of ${rate} msg/s)`);
  assert.equal(r.open, CLIENTS, `every client still open (closes ${JSON.stringify(r.closes)})`);
  assert.equal(r.min, count, `every client received every message (${diagnosis})`);
  assert.equal(r.max, count, 'no client received more than was sent');
  assert.equal(r.disorder, 0, `every message at its place (first off: ${JSON.stringify(r.firstDisorder)})`);
  assert.deepEqual(r.events, {}, 'no dropped/overrun/gap event');
  assert.equal(m1.overruns, 0, 'no netlink overrun');
  assert.equal(m1.overrunLost, 0, 'no netlink loss');
  assert.equal(m1.rxDrops, 0, 'receive socket drop counter 0');
  assert.equal(m1.wsDropped, 0, 'no frame dropped for a slow client');
  assert.equal(m1.closedSlow, 0, 'no client closed as slow');
  assert.ok(delta('received') >= count, 'the daemon received every message');
  assert.ok(
    heapGrowth <= HEAP_GROWTH_LIMIT,
    `live heap after full GCs grew ${mb(heapGrowth)} MB (${warmGcs.map((g) => `${g.t.toFixed(0)} s: ${mb(g.live)}`).join(', ')})`,
  );
  assert.ok(rssEnd <= firstHalfMax + RSS_BAND, `RSS at the end ${mb(rssEnd)} MB, first-half max after warm-up ${mb(firstHalfMax)} MB`);
  assert.ok(Math.abs(fdEnd - fdWarm) <= FD_TOLERANCE, `fds ${fdWarm} after warm-up, ${fdEnd} at the end`);
});

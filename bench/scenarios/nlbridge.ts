// nlbridge's figures, each measured like its counterpart: the daemon runs in
// its own process (`node dist/daemon/main.js --protocol usersock --auth none`),
// clients and load generators in theirs.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { collectGarbage, memoryUsage, openInspector } from '../lib/inspector';
import { Proc, ROOT, cpuSeconds, rssBytes, sleep, startAgent } from '../lib/proc';
import { payloadText } from '../lib/nlmsg';
import type { Profile } from '../lib/profile';
import { bestOf, higherValue, lowerP99, measure, num, type Figures, type Measurement } from '../lib/result';
import { clientRun, freePort, startClients, waitForPort } from '../lib/ws_load';
import { flood, startSink } from './socket_level';

// BENCH_DAEMON points at another build of the daemon's entry point.
const DAEMON = process.env.BENCH_DAEMON ?? path.join(ROOT, 'dist', 'daemon', 'main.js');

export interface NlbridgeOptions {
  /** Start the daemon with --cpu-prof into this directory. */
  cpuProfDir?: string;
  /** C 1→1 saturation, for reference in ingress runs. */
  ceiling: number;
  /** More daemon options (the fleet section's --nats …). */
  extraArgs?: string[];
  /** Start the daemon with its inspector on a loopback port (for collectGarbage). */
  inspect?: boolean;
}

export interface Daemon {
  proc: Proc;
  port: number;
  base: string;
  ws(query?: string): string;
}

async function startDaemon(p: Profile, o: NlbridgeOptions, tag: string): Promise<Daemon> {
  if (!fs.existsSync(DAEMON)) throw new Error('daemon not built (dist/daemon/main.js missing)');
  const port = await freePort();
  const nodeArgs: string[] = [];
  if (o.cpuProfDir) {
    fs.mkdirSync(o.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`, `--cpu-prof-name=daemon-${tag}-${Date.now()}.cpuprofile`);
  }
  if (o.inspect) nodeArgs.push('--inspect=127.0.0.1:0');
  const proc = new Proc(`daemon(${tag})`, process.execPath, [...nodeArgs, DAEMON, ...daemonArgs(port, p), ...(o.extraArgs ?? [])], {
    ...process.env,
    NODE_ENV: 'production',
  });
  try {
    await waitForPort(port, 15_000);
  } catch (err) {
    await proc.stop(100);
    throw new Error(`${(err as Error).message}; daemon said: ${proc.stderr().slice(-500)}`, { cause: err });
  }
  const mask = ((1 << (p.group - 1)) >>> 0).toString();
  const base = `http://127.0.0.1:${port}`;
  return { proc, port, base, ws: (query = '') => `ws://127.0.0.1:${port}/groups/${mask}${query}` };
}

function daemonArgs(port: number, p: Profile): string[] {
  return [
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--protocol',
    'usersock',
    '--auth',
    'none',
    '--log-level',
    'warn',
    '--rcvbuf',
    String(p.rcvbuf),
  ];
}

async function stopDaemon(d: Daemon): Promise<void> {
  // SIGTERM lets the daemon close cleanly (and write its CPU profile).
  d.proc.child.kill('SIGTERM');
  await d.proc.stop(5000);
}

export async function withDaemon<T>(p: Profile, o: NlbridgeOptions, tag: string, fn: (d: Daemon) => Promise<T>): Promise<T> {
  const d = await startDaemon(p, o, tag);
  try {
    return await fn(d);
  } finally {
    await stopDaemon(d);
  }
}

export async function runNlbridge(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  const thr = await measure(figures, 'ws_one_frame', 'nlbridge', () =>
    bestOf(
      p.repeats,
      () =>
        withDaemon(p, o, 'frame', (d) =>
          clientRun(p, { url: d.ws(), clients: 1, flood: { count: p.wsFloodCount, seconds: p.wsFloodSeconds } }),
        ),
      higherValue,
    ),
  );
  await measure(figures, 'ws_one_frame', 'nlbridge-batch', () =>
    bestOf(
      p.repeats,
      () =>
        withDaemon(p, o, 'batch', (d) =>
          clientRun(p, { url: d.ws('?batch=1'), clients: 1, flood: { count: p.wsFloodCount, seconds: p.wsFloodSeconds } }),
        ),
      higherValue,
    ),
  );
  await measure(figures, 'ws_one_frame', 'nlbridge-binary', () =>
    bestOf(
      p.repeats,
      () =>
        withDaemon(p, o, 'binary', (d) =>
          clientRun(p, { url: d.ws('?format=binary'), clients: 1, flood: { count: p.wsFloodCount, seconds: p.wsFloodSeconds } }),
        ),
      higherValue,
    ),
  );
  await measure(figures, 'latency_half', 'nlbridge', () =>
    withDaemon(p, o, 'lathalf', async (d) => {
      const sat = num(thr.value);
      if (!(sat > 0)) throw new Error('no saturation rate');
      const rate = sat / 2;
      const count = Math.max(100, Math.round(rate * p.halfSatSeconds));
      const r = await clientRun(p, { url: d.ws(), clients: 1, latency: true, flood: { count, seconds: count / rate + 2, rate } });
      return { ...r, value: num(r.p50_us), rate };
    }),
  );
  await runHttpSend(p, figures, o);
  await runIngress(p, figures, o);
  await runMemory(p, figures, o);
}

/** The JSON schema of POST /send's body, from openapi.yaml, with every $ref inlined. */
export function sendBodySchema(): object {
  const spec = parseYaml(fs.readFileSync(path.join(ROOT, 'openapi.yaml'), 'utf8')) as Record<string, unknown>;
  const resolve = (node: unknown, depth: number): unknown => {
    if (depth > 50) throw new Error('openapi.yaml: $ref nesting too deep');
    if (Array.isArray(node)) return node.map((n) => resolve(n, depth + 1));
    if (node === null || typeof node !== 'object') return node;
    const obj = node as Record<string, unknown>;
    if (typeof obj.$ref === 'string') {
      const target = obj.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>((cur, k) => (cur as Record<string, unknown>)?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
      if (target === undefined) throw new Error(`openapi.yaml: unresolved ${obj.$ref}`);
      return resolve(target, depth + 1);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) {
      // OpenAPI-only keywords that ajv's strict mode refuses.
      if (k === 'example' || k === 'examples' || k === 'xml' || k === 'externalDocs' || k === 'discriminator') continue;
      out[k] = resolve(v, depth + 1);
    }
    return out;
  };
  const schema = (
    (
      (((spec.paths as Record<string, unknown>)['/send'] as Record<string, unknown>).post as Record<string, unknown>).requestBody as Record<
        string,
        unknown
      >
    ).content as Record<string, Record<string, unknown>>
  )['application/json'].schema;
  return resolve(schema, 0) as object;
}

/** The body every POST /send of the bench carries: one bench payload to the bench group. */
function sendBody(p: Profile): string {
  return JSON.stringify({ groups: (1 << (p.group - 1)) >>> 0, data: payloadText(0, 0n), encoding: 'utf8' });
}

/** autocannon against url; with the server's CPU per answered request (µs, from /proc/PID/stat: ±10 ms of ticks over the run). */
async function httpLoad(p: Profile, url: string, serverPid: number | undefined): Promise<Record<string, unknown>> {
  const agent = startAgent('http_load', { url, body: sendBody(p), connections: p.httpConnections, seconds: p.httpSeconds });
  const cpu0 = serverPid === undefined ? null : cpuSeconds(serverPid);
  try {
    const r = (await agent.waitForKey('result', (p.httpSeconds + 20) * 1000)).result as Record<string, unknown>;
    const cpu1 = serverPid === undefined ? null : cpuSeconds(serverPid);
    const answered = num(r.ok) + num(r.non2xx);
    if (cpu0 !== null && cpu1 !== null && answered > 0) r.serverCpuUsPerRequest = Math.round((((cpu1 - cpu0) * 1e6) / answered) * 10) / 10;
    return r;
  } finally {
    await agent.stop(1000);
  }
}

export async function runHttpSend(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  // The daemon's own answer to the bench body, replayed by the bare route.
  let answer: { status: number; body: unknown } | null = null;
  await measure(figures, 'http_send', 'nlbridge', () =>
    withDaemon(p, o, 'send', async (d) => {
      const res = await fetch(`${d.base}/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: sendBody(p) });
      const text = await res.text();
      if (res.status >= 300) throw new Error(`POST /send answered ${res.status}: ${text.slice(0, 200)}`);
      answer = { status: res.status, body: JSON.parse(text) as unknown };
      const r = await httpLoad(p, `${d.base}/send`, d.proc.child.pid);
      return { value: num(r.rate), ...r };
    }),
  );
  await measure(figures, 'http_send', 'bare-fastify', async () => {
    const schema = sendBodySchema();
    const port = await freePort();
    const reply = answer ?? { status: 200, body: { ok: true } };
    const server = startAgent('bare_fastify', { port, schema, status: reply.status, reply: reply.body });
    try {
      await server.waitForKey('ready', 10_000);
      const r = await httpLoad(p, `http://127.0.0.1:${port}/send`, server.child.pid);
      return { value: num(r.rate), ...r };
    } finally {
      server.child.kill('SIGTERM');
      await server.stop(2000);
    }
  });
}

/** WebSocket ingress: one client types bench payloads as text frames; nlb_sink counts what reaches the group. */
async function runIngress(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  await measure(figures, 'ws_ingress', 'nlbridge', () =>
    withDaemon(p, o, 'ingress', async (d) => {
      const sink = await startSink(p, { expect: p.ingressFrames, seconds: p.ingressSeconds + 15, idleMs: 1000 });
      const sender = startAgent('ws_sender', {
        url: d.ws(),
        frames: p.ingressFrames,
        maxSeconds: p.ingressSeconds,
        template: '__PAYLOAD__',
        encoding: 'text',
      });
      try {
        const sent = (await sender.waitForKey('result', (p.ingressSeconds + 15) * 1000)).result as Record<string, unknown>;
        const got = await sink.waitForKey('received', (p.ingressSeconds + 20) * 1000);
        return {
          value: num(got.rate),
          framesSent: sent.sent,
          senderRate: sent.rate,
          received: got.received,
          lost: num(sent.sent) - num(got.received),
          foreign: got.foreign,
          closeCode: sent.closeCode,
        };
      } finally {
        await sender.stop(1000);
        await sink.stop(500);
      }
    }),
  );
  const c = figures.socket_flood?.c;
  await measure(figures, 'ws_ingress', 'c', async () => {
    if (!c || c.value === null) throw new Error('C ceiling not measured (run the socket section)');
    return { value: num(c.sendRate), note: 'nlb_flood send rate during the socket-level flood' };
  });
}

async function runMemory(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  let daemon: Daemon;
  try {
    daemon = await startDaemon(p, o, 'memory');
  } catch (err) {
    for (const f of ['memory_idle', 'memory_per_client', 'memory_slow_reader']) {
      await measure(figures, f, 'nlbridge', async () => {
        throw err;
      });
    }
    return;
  }
  const d = daemon;
  try {
    await measure(figures, 'memory_idle', 'nlbridge', async () => {
      await sleep(1000);
      const rss = rssBytes(d.proc.pid);
      if (rss === null) throw new Error('daemon gone');
      return { value: rss };
    });
    await measure(figures, 'memory_per_client', 'nlbridge', () =>
      // Its own daemon, with the inspector: both RSS readings follow a full
      // GC, so the figure is what the clients keep (lib/inspector.ts says why).
      withDaemon(p, { ...o, inspect: true }, 'memory-clients', async (m) => {
        await sleep(1000);
        const rawBefore = rssBytes(m.proc.pid) ?? NaN;
        await collectGarbage(m.proc);
        const before = rssBytes(m.proc.pid) ?? NaN;
        const agents = await startClients(p, { url: m.ws(), clients: p.memoryClients, expectPerClient: 1, maxSeconds: 60 });
        try {
          await sleep(1000);
          const rawAfter = rssBytes(m.proc.pid) ?? NaN;
          await collectGarbage(m.proc);
          const after = rssBytes(m.proc.pid) ?? NaN;
          return {
            value: (after - before) / p.memoryClients,
            clients: p.memoryClients,
            rssBefore: before,
            rssAfter: after,
            // The old method's reading (no GC), kept to show how far it strays.
            rawPerClient: (rawAfter - rawBefore) / p.memoryClients,
          };
        } finally {
          await Promise.all(agents.map((a) => a.stop(500)));
        }
      }),
    );
    await measure(figures, 'memory_slow_reader', 'nlbridge', async () => {
      // Several runs, each on its own daemon (profile.ts slowReaderTrials says why): the median run is the figure.
      const trials: Measurement[] = [];
      for (let i = 0; i < p.slowReaderTrials; i++) trials.push(await slowReaderTrial(p, o));
      const byValue = [...trials].sort((a, b) => num(a.value) - num(b.value));
      const median = byValue[Math.floor((byValue.length - 1) / 2)];
      return {
        ...median,
        trials: trials.map((t) => ({ value: t.value, rssAfterGc: t.rssAfterGc, rssBefore: t.rssBefore, memoryAtPeak: t.memoryAtPeak })),
      };
    });
  } finally {
    await stopDaemon(d);
  }
}

/** One run of the paused-client scenario on its own daemon, with the inspector for the reading after a GC. */
function slowReaderTrial(p: Profile, o: NlbridgeOptions): Promise<Measurement> {
  return withDaemon(p, { ...o, inspect: true }, 'memory-slow', async (m) => {
    await sleep(300);
    await collectGarbage(m.proc);
    const before = rssBytes(m.proc.pid) ?? NaN;
    // One paused client and one reading client on the same group.
    const agents = await startClients(
      { ...p, clientsPerProcess: 1 },
      {
        url: m.ws(),
        clients: 2,
        expectPerClient: Number.MAX_SAFE_INTEGER,
        maxSeconds: p.slowReaderSeconds + 20,
        pauseFirst: true,
        idleMs: 60_000,
      },
    );
    let peak = before;
    const sampler = setInterval(() => {
      const r = rssBytes(m.proc.pid);
      if (r !== null && r > peak) peak = r;
    }, 50);
    // What the RSS is made of at its highest (V8 heap, external memory, array buffers), read
    // from the daemon's process.memoryUsage() every 100 ms: where a difference in the peak lies.
    const session = await openInspector(m.proc);
    let atPeak: Record<string, number> = {};
    let reading = true;
    const breakdown = (async (): Promise<void> => {
      while (reading) {
        const u = await memoryUsage(session).catch(() => null);
        if (u !== null && (atPeak.rss === undefined || u.rss > atPeak.rss)) atPeak = u;
        await sleep(100);
      }
    })();
    try {
      await sleep(200);
      const count = Math.round(p.slowReaderRate * p.slowReaderSeconds);
      const sent = await flood({
        group: p.group,
        count,
        seconds: p.slowReaderSeconds + 2,
        rate: p.slowReaderRate,
        payload: p.slowReaderPayload,
      });
      await sleep(300);
      reading = false;
      await breakdown;
      const after = rssBytes(m.proc.pid) ?? NaN;
      // What the daemon still holds once the garbage of 50 MB of traffic is
      // collected, the paused client still connected (or closed by then).
      await collectGarbage(m.proc);
      const afterGc = rssBytes(m.proc.pid) ?? NaN;
      for (const a of agents) a.command({ cmd: 'report' });
      const results = await Promise.all(agents.map(async (a) => (await a.waitForKey('result', 5000)).result as Record<string, unknown>));
      const reader = results[1];
      return {
        value: peak - before,
        rssBefore: before,
        rssPeak: peak,
        rssAfter: after,
        rssAfterGc: afterGc,
        memoryAtPeak: atPeak,
        rate: p.slowReaderRate,
        payload: p.slowReaderPayload,
        seconds: p.slowReaderSeconds,
        sent: sent.sent,
        readingClientReceived: reader.received,
        readingClientLost: num(sent.sent) - num(reader.received),
      };
    } finally {
      reading = false;
      session.close();
      clearInterval(sampler);
      await Promise.all(agents.map((a) => a.stop(500)));
    }
  });
}

/**
 * Latency at 1,000 msg/s, read by the Node `ws` client and by the C reader
 * (nlb_ws_reader.c), whose own wake-up and parse cost is not in the figure
 * (issue 17).
 */
export async function runNlbridgeLatency(p: Profile, figures: Figures, o: NlbridgeOptions): Promise<void> {
  for (const reader of ['node', 'c'] as const) {
    await measure(figures, 'latency_1k', reader === 'c' ? 'nlbridge-creader' : 'nlbridge', () =>
      bestOf(
        p.repeats,
        () =>
          withDaemon(p, o, 'lat1k', async (d) => {
            const r = await clientRun(p, {
              url: d.ws(),
              clients: 1,
              latency: true,
              reader,
              flood: { count: p.latencyCount, seconds: p.latencyCount / 1000 + 2, rate: 1000 },
            });
            return { ...r, value: num(r.p50_us), rate: 1000 };
          }),
        lowerP99,
      ),
    );
  }
}

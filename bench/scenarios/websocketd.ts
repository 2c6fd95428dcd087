// The peer a user would set up in five minutes: websocketd spawning
// `rr_nlk -p 2 -j -g MASK` per connection, each stdout line one WebSocket
// message.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { groupMembers, waitForMembers } from '../lib/netlink_groups';
import { Proc, ROOT, pssBytes, sleep } from '../lib/proc';
import type { Profile } from '../lib/profile';
import { bestOf, higherValue, lowerP99, measure, num, type Figures } from '../lib/result';
import { clientRun, freePort, startClients, waitForPort } from '../lib/ws_load';

// BENCH_RR_NLK points at another build of rr_nlk (default: make -C module tools).
const RR_NLK = process.env.BENCH_RR_NLK ?? path.join(ROOT, 'module', 'tools', 'rr_nlk');

export function buildRrNlk(): void {
  if (process.env.BENCH_RR_NLK) return;
  execFileSync('make', ['-C', path.join(ROOT, 'module'), 'tools'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(RR_NLK)) throw new Error(`make -C module tools did not produce ${RR_NLK}`);
}

async function startWebsocketd(p: Profile): Promise<{ proc: Proc; url: string }> {
  const port = await freePort();
  const mask = String((1 << (p.group - 1)) >>> 0);
  const proc = new Proc('websocketd', 'websocketd', [
    `--port=${port}`,
    '--address=127.0.0.1',
    '--loglevel=error',
    RR_NLK,
    '-p',
    '2',
    '-j',
    '-g',
    mask,
  ]);
  await waitForPort(port, 10_000);
  return { proc, url: `ws://127.0.0.1:${port}/` };
}

function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  for (const c of childrenOf(pid)) out.push(c, ...descendants(c));
  return out;
}

/**
 * Memory of a process and all its descendants (websocketd forks one rr_nlk
 * per client), as PSS: summing RSS would count the shared libc pages once
 * per process.
 */
function treeRss(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => sum + (pssBytes(p) ?? 0), 0);
}

export async function withWebsocketd<T>(p: Profile, fn: (url: string, pid: number) => Promise<T>): Promise<T> {
  const { proc, url } = await startWebsocketd(p);
  try {
    return await fn(url, proc.pid);
  } finally {
    // websocketd signals a client's process 100-500 ms after the client left;
    // give it that, then make sure no rr_nlk outlives the run (a reader left
    // on the group would slow every later broadcast).
    const until = Date.now() + 3000;
    while (descendants(proc.pid).length > 0 && Date.now() < until) await sleep(50);
    const left = descendants(proc.pid);
    await proc.stop(100);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export async function runWebsocketd(p: Profile, figures: Figures): Promise<void> {
  try {
    buildRrNlk();
  } catch (err) {
    for (const f of ['ws_one_frame', 'latency_half', 'memory_idle', 'memory_per_client']) {
      await measure(figures, f, 'websocketd', async () => {
        throw err;
      });
    }
    return;
  }

  const thr = await measure(figures, 'ws_one_frame', 'websocketd', () =>
    bestOf(
      p.repeats,
      () => withWebsocketd(p, (url) => clientRun(p, { url, clients: 1, flood: { count: p.wsFloodCount, seconds: p.wsFloodSeconds } })),
      higherValue,
    ),
  );
  await measure(figures, 'latency_half', 'websocketd', () =>
    withWebsocketd(p, async (url) => {
      const sat = num(thr.value);
      if (!(sat > 0)) throw new Error('no saturation rate');
      const rate = sat / 2;
      const count = Math.max(100, Math.round(rate * p.halfSatSeconds));
      const r = await clientRun(p, { url, clients: 1, latency: true, flood: { count, seconds: count / rate + 2, rate } });
      return { ...r, value: num(r.p50_us), rate };
    }),
  );
  // Memory: the server side with no client, then with idle clients (one rr_nlk each).
  let idle = NaN;
  await measure(figures, 'memory_idle', 'websocketd', () =>
    withWebsocketd(p, async (_url, pid) => {
      await sleep(300);
      idle = treeRss(pid);
      return { value: idle, unit: 'bytes' };
    }),
  );
  await measure(figures, 'memory_per_client', 'websocketd', () =>
    withWebsocketd(p, async (url, pid) => {
      await sleep(300);
      const before = treeRss(pid);
      const baseline = groupMembers(2, p.group);
      const agents = await startClients(p, { url, clients: p.memoryClients, expectPerClient: 1, maxSeconds: 60 });
      try {
        await waitForMembers(2, p.group, baseline + p.memoryClients, 30_000);
        await sleep(300);
        const after = treeRss(pid);
        return { value: (after - before) / p.memoryClients, clients: p.memoryClients, rssBefore: before, rssAfter: after };
      } finally {
        await Promise.all(agents.map((a) => a.stop(200)));
      }
    }),
  );
}

/** Latency at 1,000 msg/s, read by the Node `ws` client and by the C reader (see runNlbridgeLatency). */
export async function runWebsocketdLatency(p: Profile, figures: Figures): Promise<void> {
  try {
    buildRrNlk();
  } catch (err) {
    for (const s of ['websocketd', 'websocketd-creader']) {
      await measure(figures, 'latency_1k', s, async () => {
        throw err;
      });
    }
    return;
  }
  for (const reader of ['node', 'c'] as const) {
    await measure(figures, 'latency_1k', reader === 'c' ? 'websocketd-creader' : 'websocketd', () =>
      bestOf(
        p.repeats,
        () =>
          withWebsocketd(p, async (url) => {
            const r = await clientRun(p, {
              url,
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

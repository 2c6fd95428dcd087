// Polls GET /healthz from its own process (so the latency is the daemon's, not
// the test runner's) one request at a time every `intervalMs` for `seconds`,
// on one keep-alive connection, then prints one JSON line: each latency (ms)
// and every failure.
//
// argv[2]: {"url":"http://127.0.0.1:PORT/healthz","seconds":60,"intervalMs":20,"timeoutMs":2000}

import http from 'node:http';

interface Config {
  url: string;
  seconds: number;
  intervalMs: number;
  timeoutMs: number;
}

export interface PollResult {
  latencies: number[];
  failures: string[];
}

function once(agent: http.Agent, cfg: Config): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.get(cfg.url, { agent, timeout: cfg.timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const ms = performance.now() - t0;
        if (res.statusCode !== 200 || !body.includes('"ok"')) reject(new Error(`HTTP ${res.statusCode} ${body}`));
        else resolve(ms);
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${cfg.timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as Config;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: PollResult = { latencies: [], failures: [] };
  const end = Date.now() + cfg.seconds * 1000;
  while (Date.now() < end) {
    const started = performance.now();
    try {
      out.latencies.push(await once(agent, cfg));
    } catch (err) {
      out.failures.push((err as Error).message);
    }
    const wait = cfg.intervalMs - (performance.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  agent.destroy();
  process.stdout.write(JSON.stringify({ result: out }) + '\n');
}

if (require.main === module) void main();

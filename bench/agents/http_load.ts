// HTTP load generator in its own process (autocannon), for POST /send and
// the bare fastify route it is compared with.
//
// argv[2]: {"url":..., "body":"<json text>", "connections":N, "seconds":S}

interface Config {
  url: string;
  body: string;
  connections: number;
  seconds: number;
  headers?: Record<string, string>;
}

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  duration: number;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const autocannon = require('autocannon') as (opts: object) => Promise<AutocannonResult>;

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as Config;
  const r = await autocannon({
    url: cfg.url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cfg.headers ?? {}) },
    body: cfg.body,
    connections: cfg.connections,
    duration: cfg.seconds,
  });
  const ok = r['2xx'];
  process.stdout.write(
    JSON.stringify({
      result: {
        rate: ok / r.duration,
        requestsAverage: r.requests.average,
        total: r.requests.total,
        ok,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        seconds: r.duration,
      },
    }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
  process.exit(1);
});

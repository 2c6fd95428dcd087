// POST /send's CPU per request through the whole fastify pipeline, without
// the network (app.inject), beside a bare fastify route with the same body
// schema and a constant answer: the hooks' and plugins' share of issue 17,
// steadier than autocannon on a loaded machine. Needs a network namespace of
// its own or a quiet host (it opens netlink sockets on NETLINK_USERSOCK).
//
//   node dist/bench/http_inject.js [ROOT=.] [N=10000]
//
// ROOT is another build's checkout (its dist/ and node_modules/), to compare
// before and after back to back: this build's layout (daemon/netlink/,
// daemon/bus_options) or the one before the daemon's redesign (everything
// in daemon/, 72f7187 and older).

import * as fs from 'node:fs';
import * as path from 'node:path';

interface Injectable {
  inject(o: object): Promise<{ statusCode: number; body: string }>;
  close(): Promise<void>;
}

const root = path.resolve(process.argv[2] ?? '.');
const N = Number(process.argv[3] ?? 10000);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const load = (m: string): Record<string, unknown> => require(path.join(root, m)) as Record<string, unknown>;

async function cpuPerRequest(app: Injectable, headers: Record<string, string>, body: string): Promise<number> {
  const one = (): Promise<{ statusCode: number; body: string }> => app.inject({ method: 'POST', url: '/send', headers, payload: body });
  const first = await one();
  if (first.statusCode !== 200) throw new Error(`POST /send answered ${first.statusCode}: ${first.body}`);
  for (let i = 0; i < 3000; i++) await one();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) await one();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / N;
}

async function main(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-explicit-any */
  const flat = !fs.existsSync(path.join(root, 'dist/daemon/bus_options.js'));
  const { DEFAULTS } = load('dist/daemon/config') as any;
  const { resolveProtocol } = load(flat ? 'dist/daemon/protocol' : 'dist/daemon/netlink/protocol') as any;
  const { Metrics } = load('dist/daemon/metrics') as any;
  const { Bus } = load(flat ? 'dist/daemon/bus' : 'dist/daemon/netlink/bus') as any;
  const { buildApp } = load('dist/daemon/app') as any;
  const { requestBodySchema } = load('dist/daemon/spec') as any;
  const pino = load('node_modules/pino') as any;
  const Fastify = load('node_modules/fastify') as any;
  const config = { ...DEFAULTS, protocol: 'usersock', port: 0, auth: 'none' };
  const protocol = resolveProtocol(config.protocol, config.sysfsRoot);
  const metrics = new Metrics({ version: 'bench' });
  const logger = pino({ level: 'warn' }, pino.destination({ dest: '/dev/null', sync: true }));
  const bus = flat
    ? new Bus({
        protocol,
        rcvbuf: config.rcvbuf,
        ackTimeoutMs: config.ackTimeoutMs,
        dedupeWindowMs: config.dedupeWindowMs,
        ring: { maxMessages: config.ringMessages, maxAgeMs: config.ringMaxAgeMs, maxBytes: config.ringMaxBytes },
        ringLingerMs: config.ringLingerMs,
        log: logger,
        metrics,
      })
    : new Bus((load('dist/daemon/bus_options') as any).busOptionsFrom(config, { protocol, log: logger, metrics }));
  /* eslint-enable @typescript-eslint/no-explicit-any */
  const app = await buildApp(config, {
    bus,
    metrics,
    auth: { mode: 'none', token: null, source: null, generated: false, scoped: [] },
    logger,
    version: 'bench',
  });
  // Listening, so the Host check has its port (inject makes no connection).
  await app.listen({ host: '127.0.0.1', port: 0 });
  const headers = { 'content-type': 'application/json', host: `127.0.0.1:${(app.server.address() as { port: number }).port}` };
  const body = JSON.stringify({ groups: 1 << 26, data: 'x'.repeat(64), encoding: 'utf8' });
  const answer = JSON.parse((await app.inject({ method: 'POST', url: '/send', headers, payload: body })).body) as unknown;
  const bare = Fastify({ logger: false, ajv: { customOptions: { allowUnionTypes: true } } });
  bare.post('/send', { schema: { body: requestBodySchema('/send', 'post') } }, async () => answer);
  await bare.ready();
  const rounds: { nlbridgeUs: number; bareUs: number }[] = [];
  for (let i = 0; i < 3; i++)
    rounds.push({ nlbridgeUs: await cpuPerRequest(app, headers, body), bareUs: await cpuPerRequest(bare, headers, body) });
  const best = (k: 'nlbridgeUs' | 'bareUs'): number => Math.min(...rounds.map((r) => r[k]));
  const round2 = (x: number): number => Math.round(x * 100) / 100;
  process.stdout.write(
    JSON.stringify({
      root,
      requests: N,
      rounds: rounds.map((r) => ({ nlbridgeUs: round2(r.nlbridgeUs), bareUs: round2(r.bareUs) })),
      nlbridgeUs: round2(best('nlbridgeUs')),
      bareUs: round2(best('bareUs')),
      bareOverNlbridge: round2(best('bareUs') / best('nlbridgeUs')),
    }) + '\n',
  );
  await app.close();
  await bare.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});

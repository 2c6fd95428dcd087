// The baseline for POST /send: a bare fastify route with the same body schema
// (taken from openapi.yaml by the runner) that answers without touching
// netlink. nlbridge's /send ÷ this route is the cost of the bridge itself.
//
// argv[2]: {"port":N, "schema":{...}, "status":N, "reply":{...}}

import Fastify from 'fastify';

interface Config {
  port: number;
  schema: object;
  status: number;
  reply: unknown;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as Config;
  const app = Fastify({ logger: false });
  app.post('/send', { schema: { body: cfg.schema } }, async (_req, reply) => {
    reply.code(cfg.status);
    return cfg.reply;
  });
  await app.listen({ port: cfg.port, host: '127.0.0.1' });
  process.stdout.write(JSON.stringify({ ready: true }) + '\n');
  process.on('SIGTERM', () => {
    void app.close().then(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
  process.exit(1);
});

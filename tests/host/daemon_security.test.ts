// Who may use the bridge: bearer token (header or WebSocket subprotocol),
// Host allow-list (DNS rebinding), Origin check, rate limit; the token never
// reaches the log.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call, connect, rawRequest, startDaemon, type Daemon } from './support/daemon_harness';
import { assertMatchesSpec } from './support/daemon_spec';

const TOKEN = 'c0ffee'.repeat(8);

async function refusal(p: Promise<unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const err = (await p.then(
    () => null,
    (e: unknown) => e,
  )) as (Error & { status?: number; body?: string }) | null;
  assert.ok(err, 'expected a refusal');
  assert.ok(err.status, `expected an HTTP refusal, got ${err.message}`);
  return { status: err.status, body: JSON.parse(err.body!) as Record<string, unknown> };
}

describe('authentication', () => {
  let d: Daemon;
  const logs: Record<string, unknown>[] = [];
  before(async () => {
    d = await startDaemon({ token: TOKEN, logs });
  });
  after(() => d.close());

  test('no token: 401 with WWW-Authenticate; wrong token: 401; right token: 200', async () => {
    const none = await call(d, 'GET', '/status', { auth: false });
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="nlbridge"');
    assert.equal((none.json as { field: string }).field, 'Authorization');
    const wrong = await call(d, 'POST', '/send', {
      body: { groups: 2, data: 'x' },
      headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}0` },
    });
    assert.equal(wrong.status, 401);
    assert.match((wrong.json as { detail: string }).detail, /wrong/);
    const basic = await call(d, 'GET', '/status', { headers: { authorization: `Basic ${Buffer.from('a:' + TOKEN).toString('base64')}` } });
    assert.equal(basic.status, 401);
    assert.equal((await call(d, 'GET', '/status')).status, 200);
    assert.equal((await call(d, 'GET', '/metrics')).status, 200);
  });

  test('/healthz and /openapi.yaml need no token', async () => {
    assert.equal((await call(d, 'GET', '/healthz', { auth: false })).status, 200);
    const spec = await call(d, 'GET', '/openapi.yaml', { auth: false });
    assert.equal(spec.status, 200);
    assert.match(spec.text, /^openapi: 3\.1/);
  });

  test('a token in the URL is not accepted', async () => {
    const r = await call(d, 'GET', `/status?token=${TOKEN}`, { auth: false });
    assert.equal(r.status, 401);
    const ws = await refusal(connect(d, `/groups/2?token=${TOKEN}`, { auth: false }));
    assert.equal(ws.status, 401);
  });

  test('WebSocket: Authorization header, or the bearer.<token> subprotocol offered with nlbridge (never echoed)', async () => {
    const a = await connect(d, '/groups/2');
    await a.client.close();
    const alone = await refusal(connect(d, '/groups/2', { protocols: [`bearer.${TOKEN}`] }));
    assert.equal(alone.status, 400);
    assert.equal(alone.body.field, 'Sec-WebSocket-Protocol');
    assert.ok(!JSON.stringify(alone.body).includes(TOKEN));
    const c = await connect(d, '/groups/2', { protocols: ['nlbridge', `bearer.${TOKEN}`] });
    assert.equal(c.client.ws.protocol, 'nlbridge');
    await c.client.close();
    const none = await refusal(connect(d, '/groups/2', { auth: false }));
    assert.equal(none.status, 401);
    assertMatchesSpec('GET', '/groups/2', none.status, 'application/problem+json', none.body);
    const wrong = await refusal(connect(d, '/groups/2', { protocols: ['nlbridge', 'bearer.nottheone1234567'] }));
    assert.equal(wrong.status, 401);
  });

  test('the token never appears in the log', async () => {
    await call(d, 'GET', '/status');
    await call(d, 'GET', '/status', { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.ok(logs.length > 0);
    for (const line of logs) assert.ok(!JSON.stringify(line).includes(TOKEN), `token in log: ${JSON.stringify(line)}`);
  });
});

describe('Host and Origin', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ config: { allowedOrigins: ['https://console.example'] } });
  });
  after(() => d.close());

  const get = (host: string | null, extra: string[] = []): ReturnType<typeof rawRequest> =>
    rawRequest(d.port, ['GET /healthz HTTP/1.1', ...(host === null ? [] : [`Host: ${host}`]), ...extra]);

  test('allowed Host values', async () => {
    for (const host of [`localhost:${d.port}`, `127.0.0.1:${d.port}`, `[::1]:${d.port}`, `LOCALHOST:${d.port}`]) {
      const r = await get(host);
      assert.equal(r.status, 200, host);
    }
  });

  test('refused Host values (DNS rebinding and lookalikes)', async () => {
    const bad = [
      'evil.example',
      `evil.example:${d.port}`,
      `localhost6:${d.port}`,
      `127.1:${d.port}`,
      `0x7f.1:${d.port}`,
      `0x7f000001:${d.port}`,
      `2130706433:${d.port}`,
      `127.0.0.2:${d.port}`,
      `localhost.:${d.port}`,
      `localhost.evil.example:${d.port}`,
      'localhost',
      `localhost:${d.port + 1}`,
      '',
    ];
    for (const host of bad) {
      const r = await get(host);
      assert.equal(r.status, 403, `Host ${JSON.stringify(host)} → ${r.status}`);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(body.code, 'HOST_NOT_ALLOWED');
      assert.equal(body.field, 'Host');
      assertMatchesSpec('GET', '/healthz', r.status, r.headers['content-type'], body);
    }
    const r = await rawRequest(d.port, ['GET /healthz HTTP/1.0']);
    assert.equal(r.status, 403, 'no Host at all');
  });

  test('Origin: same origin, none, or listed pass; foreign origins and bare IPs are refused (HTTP and WebSocket)', async () => {
    for (const origin of [`http://127.0.0.1:${d.port}`, 'https://console.example']) {
      assert.equal((await get(`127.0.0.1:${d.port}`, [`Origin: ${origin}`])).status, 200, origin);
    }
    // Same origin means the Origin's host equals the Host header.
    assert.equal((await get(`localhost:${d.port}`, [`Origin: http://localhost:${d.port}`])).status, 200);
    assert.equal((await get(`127.0.0.1:${d.port}`, [`Origin: http://localhost:${d.port}`])).status, 403);
    const bad = [
      'http://evil.example',
      `http://evil.example:${d.port}`,
      'http://127.0.0.1',
      'http://192.168.1.10',
      `http://127.0.0.1:${d.port + 1}`,
      'null',
      'file://',
    ];
    for (const origin of bad) {
      const r = await get(`127.0.0.1:${d.port}`, [`Origin: ${origin}`]);
      assert.equal(r.status, 403, origin);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'ORIGIN_NOT_ALLOWED');
      const ws = await refusal(connect(d, '/groups/2', { origin }));
      assert.equal(ws.status, 403, `WebSocket with Origin ${origin}`);
      assert.equal(ws.body.field, 'Origin');
    }
    const ok = await connect(d, '/groups/2', { origin: `http://127.0.0.1:${d.port}` });
    await ok.client.close();
    const listed = await connect(d, '/groups/2', { origin: 'https://console.example' });
    await listed.client.close();
  });
});

describe('rate limit', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ config: { rateLimit: 3 } });
  });
  after(() => d.close());

  test('POST /send above --rate-limit per minute is 429 with Retry-After', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await call(d, 'POST', '/send', { body: { groups: [20], data: 'r' } })).status, 200);
    const r = await call(d, 'POST', '/send', { body: { groups: [20], data: 'r' } });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal((await call(d, 'GET', '/status')).status, 200, 'reads are not limited');
  });
});

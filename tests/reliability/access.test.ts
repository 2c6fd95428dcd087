// Case 10: access. A real daemon process, as root (so --auth auto requires a
// token), probed with foreign and bare-IP Origins, every DNS-rebinding Host
// spelling, missing and wrong tokens, a rate limit that must be keyed by the
// token (not the shared 127.0.0.1), its unix socket from another user, and an
// unprivileged user's request without a token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, connect, rawRequest } from '../host/support/daemon_harness';
import { assertMatchesSpec } from '../host/support/daemon_spec';
import { recordCase } from './support/report';
import { spawnDaemon, type DaemonProc } from './support/daemon_proc';
import { skipUnless } from '../support/prerequisites';

const RATE = 5;
let d: DaemonProc;
let sockDir: string;
let sock: string;
/** What nobody runs: a directory of its own, readable by anyone (the checkout may not be: a 0700 clone). */
let nobodyDir: string;
const figures: Record<string, number> = {};

before(async () => {
  sockDir = mkdtempSync(path.join(os.tmpdir(), 'nlb-rel-unix-'));
  chmodSync(sockDir, 0o755); // traversable by anyone: only the socket's own mode may keep "nobody" out
  sock = path.join(sockDir, 'nlbridge.sock');
  nobodyDir = mkdtempSync(path.join(os.tmpdir(), 'nlb-rel-nobody-'));
  chmodSync(nobodyDir, 0o755);
  // ws has no dependencies of its own: the package directory is all it needs.
  cpSync(path.dirname(require.resolve('ws/package.json')), path.join(nobodyDir, 'node_modules', 'ws'), { recursive: true });
  d = await spawnDaemon([
    '--auth',
    'auto',
    '--rate-limit',
    String(RATE),
    '--unix-socket',
    sock,
    '--allowed-origins',
    'https://console.example',
  ]);
});
after(async () => {
  rmSync(nobodyDir, { recursive: true, force: true });
  assert.equal(await d.stop(), 0);
});

async function refusal(p: Promise<unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const err = (await p.then(
    () => null,
    (e: unknown) => e,
  )) as (Error & { status?: number; body?: string }) | null;
  assert.ok(err, 'expected a refusal');
  assert.ok(err.status, `expected an HTTP refusal, got ${err.message}`);
  return { status: err.status, body: JSON.parse(err.body!) as Record<string, unknown> };
}

/** Runs `script` under node as nobody:nogroup with no capabilities, in nobodyDir (where `require('ws')` finds its copy); its stdout. */
function asNobody(script: string): string {
  return execFileSync(
    'setpriv',
    ['--reuid=nobody', '--regid=nogroup', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, '-e', script],
    { encoding: 'utf8', timeout: 10000, cwd: nobodyDir },
  ).trim();
}

test('root daemon with --auth auto requires a token (generated, 0600)', () => {
  assert.ok(d.token, 'no token was generated');
  assert.ok(d.token.length >= 32);
});

test('DNS rebinding: every foreign Host spelling is refused with 403 HOST_NOT_ALLOWED (HTTP and WebSocket upgrade)', async () => {
  const p = d.port;
  const bad = [
    'evil.example',
    `evil.example:${p}`,
    `localhost6:${p}`,
    'localhost6',
    `127.1:${p}`,
    '127.1',
    `0x7f.1:${p}`,
    '0x7f.1',
    `0x7f000001:${p}`,
    `2130706433:${p}`,
    `0177.0.0.1:${p}`,
    `017700000001:${p}`,
    `127.0.1:${p}`,
    `127.0.0.2:${p}`,
    `0.0.0.0:${p}`,
    `[::ffff:127.0.0.1]:${p}`,
    `[::ffff:7f00:1]:${p}`,
    `[0:0:0:0:0:0:0:1]:${p}`,
    `ip6-localhost:${p}`,
    `localhost.:${p}`,
    `localhost.localdomain:${p}`,
    `localhost.evil.example:${p}`,
    `127.0.0.1.nip.io:${p}`,
    `evil.example@127.0.0.1:${p}`,
    `127.0.0.1:${p}@evil.example`,
    `127.0.0.1:${p}.evil.example`,
    `127.0.0.1 :${p}`,
    'localhost',
    `localhost:${p + 1}`,
    `127.0.0.1:0${p}`,
    '',
  ];
  for (const host of bad) {
    for (const [what, lines] of [
      ['GET /status', ['GET /status HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${d.token}`]],
      [
        'POST /send',
        [
          'POST /send HTTP/1.1',
          `Host: ${host}`,
          `Authorization: Bearer ${d.token}`,
          'Content-Type: application/json',
          'Content-Length: 28',
        ],
      ],
      [
        'WS upgrade',
        [
          'GET /groups/2 HTTP/1.1',
          `Host: ${host}`,
          `Authorization: Bearer ${d.token}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        ],
      ],
    ] as const) {
      const r = await rawRequest(p, [...lines], what === 'POST /send' ? '{"groups":[30],"data":"reb"}' : '');
      // A Host the HTTP parser itself rejects is a 400 without a body from Node; anything else must be our 403.
      if (r.status === 400 && r.body === '') {
        figures.parser400 = (figures.parser400 ?? 0) + 1;
        continue;
      }
      figures.host403 = (figures.host403 ?? 0) + 1;
      assert.equal(r.status, 403, `${what} with Host ${JSON.stringify(host)} → ${r.status} ${r.body}`);
      const body = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(body.code, 'HOST_NOT_ALLOWED', `${what} Host ${host}`);
      assertMatchesSpec('GET', '/status', 403, r.headers['content-type'], body);
    }
  }
  const none = await rawRequest(p, ['GET /status HTTP/1.0', `Authorization: Bearer ${d.token}`]);
  assert.equal(none.status, 403, 'no Host header at all');
  for (const host of [`localhost:${p}`, `127.0.0.1:${p}`, `[::1]:${p}`]) {
    assert.equal((await rawRequest(p, ['GET /status HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${d.token}`])).status, 200, host);
  }
  figures.hosts = bad.length + 1;
});

test('cross-site: foreign and bare-IP Origins are refused for HTTP and the WebSocket upgrade', async () => {
  const p = d.port;
  const bad = [
    'http://evil.example',
    `http://evil.example:${p}`,
    'https://evil.example',
    'http://127.0.0.1',
    `http://127.0.0.1:${p + 1}`,
    'http://192.168.1.10',
    `http://192.168.1.10:${p}`,
    'http://10.0.0.1',
    'http://[::1]',
    `http://[::ffff:127.0.0.1]:${p}`,
    `http://0x7f.1:${p}`,
    `http://127.1:${p}`,
    `http://localhost6:${p}`,
    `http://localhost:${p}`,
    'http://console.example',
    'https://console.example.evil.example',
    'https://evil.example/console.example',
    'null',
    'file://',
    'chrome-extension://abc',
  ];
  for (const origin of bad) {
    const r = await rawRequest(
      p,
      [
        'POST /send HTTP/1.1',
        `Host: 127.0.0.1:${p}`,
        `Origin: ${origin}`,
        `Authorization: Bearer ${d.token}`,
        'Content-Type: application/json',
        'Content-Length: 28',
      ],
      '{"groups":[30],"data":"xss"}',
    );
    assert.equal(r.status, 403, `POST with Origin ${origin} → ${r.status}`);
    assert.equal((JSON.parse(r.body) as { code: string }).code, 'ORIGIN_NOT_ALLOWED');
    const ws = await refusal(connect(d, '/groups/2', { origin, protocols: ['nlbridge', `bearer.${d.token}`] }));
    assert.equal(ws.status, 403, `WebSocket with Origin ${origin}`);
    assert.equal(ws.body.code, 'ORIGIN_NOT_ALLOWED');
  }
  const same = await connect(d, '/groups/2', { origin: `http://127.0.0.1:${p}`, protocols: ['nlbridge', `bearer.${d.token}`] });
  await same.client.close();
  const listed = await connect(d, '/groups/2', { origin: 'https://console.example', protocols: ['nlbridge', `bearer.${d.token}`] });
  await listed.client.close();
  figures.origins = bad.length;
});

test('missing or wrong token: 401 on every route but /healthz and /openapi.yaml, and on the WebSocket', async () => {
  const wrong = { authorization: `Bearer ${d.token!.slice(0, -1)}${d.token!.endsWith('0') ? '1' : '0'}` };
  let n = 0;
  for (const headers of [
    {},
    wrong,
    { authorization: d.token! },
    { authorization: `Basic ${Buffer.from(`x:${d.token}`).toString('base64')}` },
    { authorization: 'Bearer ' },
  ]) {
    for (const [method, url, body] of [
      ['GET', '/status'],
      ['GET', '/metrics'],
      ['GET', '/kernel/stats'],
      ['POST', '/send', { groups: [30], data: 'x' }],
    ] as const) {
      const r = await call(d, method, url, { auth: false, headers, body });
      assert.equal(r.status, 401, `${method} ${url} with ${JSON.stringify(headers)}`);
      n++;
    }
  }
  assert.equal((await refusal(connect(d, '/groups/2', { auth: false }))).status, 401);
  assert.equal((await refusal(connect(d, '/groups/2', { protocols: ['nlbridge', 'bearer.0123456789abcdef0123'] }))).status, 401);
  assert.equal((await refusal(connect(d, `/groups/2?token=${d.token}`, { auth: false }))).status, 401, 'token in the URL');
  assert.equal((await call(d, 'GET', '/healthz', { auth: false })).status, 200);
  figures.tokens = n + 3;
});

test(`rate limit (${RATE}/min) is keyed by the token: unauthenticated floods from 127.0.0.1 do not use up the token holder's budget`, async () => {
  for (let i = 0; i < 200; i++) {
    const r = await call(d, 'POST', '/send', {
      auth: false,
      headers: { authorization: 'Bearer notthetoken-notthetoken' },
      body: { groups: [30], data: 'flood' },
    });
    assert.equal(r.status, 401);
  }
  for (let i = 0; i < RATE; i++)
    assert.equal((await call(d, 'POST', '/send', { body: { groups: [30], data: 'ok' } })).status, 200, `request ${i + 1}`);
  const over = await call(d, 'POST', '/send', { body: { groups: [30], data: 'over' } });
  assert.equal(over.status, 429);
  assert.equal((over.json as { code: string }).code, 'RATE_LIMITED');
  assert.ok(Number(over.headers.get('retry-after')) > 0);
  assert.equal((await call(d, 'GET', '/status')).status, 200, 'reads are not limited');
});

test(
  'unix socket: served without a token to its owner, unreachable for another user (mode 0660)',
  { skip: skipUnless('nobody', 'curl') },
  async () => {
    assert.equal(statSync(sock).mode & 0o777, 0o660);
    const own = execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', sock, 'http://localhost/status'], {
      encoding: 'utf8',
    });
    assert.equal(own, '200');
    const script = `require('node:http').get({ socketPath: ${JSON.stringify(sock)}, path: '/status', headers: { host: 'localhost' } }, (r) => console.log('HTTP ' + r.statusCode)).on('error', (e) => console.log(e.code))`;
    assert.equal(asNobody(script), 'EACCES');
  },
);

test('an unprivileged user cannot send through the privileged daemon without the token', { skip: skipUnless('nobody') }, async () => {
  const script = `fetch(${JSON.stringify(d.base + '/send')}, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ groups: [30], data: 'nobody' }) }).then(async (r) => console.log(r.status + ' ' + (await r.json()).code), (e) => console.log('ERR ' + e.message))`;
  assert.equal(asNobody(script), '401 UNAUTHORIZED');
  const ws = `const s = new (require(${JSON.stringify(path.join(nobodyDir, 'node_modules', 'ws'))}))(${JSON.stringify(d.wsBase + '/groups/2')}); s.on('unexpected-response', (q, r) => { console.log('HTTP ' + r.statusCode); process.exit(0); }); s.on('open', () => { console.log('OPEN'); process.exit(0); }); s.on('error', (e) => console.log('ERR ' + e.message));`;
  assert.equal(asNobody(ws), 'HTTP 401');
  const metrics = await call(d, 'GET', '/metrics');
  const refusals = [...metrics.text.matchAll(/^nlbridge_auth_refusals_total\{reason="([^"]+)"\} (\d+)/gm)]
    .filter((m) => m[2] !== '0')
    .map((m) => `${m[1]} ${m[2]}`);
  figures.refusals = refusals.length;
  // Every reason is listed from the start at 0: each of these must have counted.
  assert.ok(
    refusals.some((r) => /^host [1-9]/.test(r)) &&
      refusals.some((r) => /^origin [1-9]/.test(r)) &&
      refusals.some((r) => /^no-token [1-9]/.test(r)),
    refusals.join(', '),
  );
  recordCase({
    name: '10. Access',
    figure:
      `${figures.hosts} Host spellings × (GET, POST, WS upgrade): ${figures.host403 + 1} refused 403 HOST_NOT_ALLOWED, ${figures.parser400 ?? 0} refused 400 by Node's HTTP parser, 0 accepted; ${figures.origins} foreign/bare-IP Origins refused (POST and WS); ` +
      `${figures.tokens} missing/wrong-token requests refused 401; 200 bad-token POSTs left the ${RATE}/min token budget intact (then 429); ` +
      `unix socket EACCES for nobody; nobody without token 401 (HTTP and WS); /metrics refusals: ${refusals.join(', ')}`,
    pass: true,
  });
});

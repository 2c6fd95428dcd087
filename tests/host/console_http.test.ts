// GET / and /console/{file} over plain HTTP: the page and its files with
// their security headers, no token needed for them (but for everything they
// then ask), the Host check like every route, and exactly the files listed.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Fastify from 'fastify';
import { CONSOLE_DIR, CONSOLE_FILES, consoleRoutes } from '../../daemon/http/console';
import { call, rawRequest, startDaemon, type Daemon } from './support/daemon_harness';

const TOKEN = 'console-http-token-0123456789';

function assertPageHeaders(headers: Headers, port: number): void {
  const csp = headers.get('content-security-policy') ?? '';
  for (const directive of [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `connect-src 'self' ws://127.0.0.1:${port} wss://127.0.0.1:${port}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ]) {
    assert.ok(csp.split('; ').includes(directive), `CSP has ${directive}: ${csp}`);
  }
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(headers.get('x-content-type-options'), 'nosniff');
  assert.equal(headers.get('referrer-policy'), 'no-referrer');
  assert.equal(headers.get('x-frame-options'), 'DENY');
  assert.equal(headers.get('cache-control'), 'no-cache');
  assert.match(headers.get('etag') ?? '', /^"[\w-]+"$/);
}

describe('GET / with a token required', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ token: TOKEN });
  });
  after(() => d.close());

  test('the page is 200 text/html with its CSP, without a token; /status still needs one', async () => {
    const page = await call(d, 'GET', '/', { auth: false });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html; charset=utf-8$/);
    assertPageHeaders(page.headers, d.port);
    assert.equal(page.text, fs.readFileSync(path.join(CONSOLE_DIR, 'index.html'), 'utf8'));
    // No inline code: every script and style is a file of the folder.
    assert.doesNotMatch(page.text, /<script(?![^>]*\bsrc=)[^>]*>|<style|\son[a-z]+=|style=/i);
    assert.equal((await call(d, 'GET', '/status', { auth: false })).status, 401);
  });

  test('every listed file is served with its type and the same headers; the list is the folder', async () => {
    const inFolder = fs
      .readdirSync(CONSOLE_DIR)
      .filter((f) => f !== 'index.html' && f !== 'tsconfig.json')
      .sort();
    assert.deepEqual(Object.keys(CONSOLE_FILES).sort(), inFolder, 'each file the page loads is listed, and nothing else');
    for (const [name, type] of Object.entries(CONSOLE_FILES)) {
      const r = await call(d, 'GET', `/console/${name}`, { auth: false });
      assert.equal(r.status, 200, name);
      assert.equal(r.headers.get('content-type'), type, name);
      assertPageHeaders(r.headers, d.port);
      assert.equal(r.text, fs.readFileSync(path.join(CONSOLE_DIR, name), 'utf8'));
    }
    // The page names only listed files.
    const html = fs.readFileSync(path.join(CONSOLE_DIR, 'index.html'), 'utf8');
    for (const m of html.matchAll(/(?:src|href)="console\/([^"]+)"/g)) assert.ok(m[1] in CONSOLE_FILES, m[1]);
    // And the modules import only listed files.
    for (const name of Object.keys(CONSOLE_FILES).filter((f) => f.endsWith('.js'))) {
      for (const m of fs.readFileSync(path.join(CONSOLE_DIR, name), 'utf8').matchAll(/from '\.\/([^']+)'/g))
        assert.ok(m[1] in CONSOLE_FILES, `${name} imports ${m[1]}`);
    }
  });

  test('a file not listed: 404 named (400 for a name the spec refuses), the token check first', async () => {
    const tsconfig = await call(d, 'GET', '/console/tsconfig.json');
    assert.equal(tsconfig.status, 400, 'not a servable name');
    const unknown = await call(d, 'GET', '/console/nope.js');
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json as { code: string }).code, 'NOT_FOUND');
    assert.equal((await call(d, 'GET', '/console/nope.js', { auth: false })).status, 401, 'only the listed files are public');
    const traversal = await call(d, 'GET', '/console/..%2Fpackage.json');
    assert.equal(traversal.status, 400);
  });

  test('If-None-Match with the ETag: 304 without a body; HEAD: the headers only', async () => {
    const first = await fetch(`${d.base}/console/main.js`);
    const etag = first.headers.get('etag') ?? '';
    await first.text();
    const again = await fetch(`${d.base}/console/main.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(await again.text(), '');
    const head = await fetch(`${d.base}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /^text\/html/);
    assert.ok(head.headers.get('content-security-policy'));
  });

  test('a Host not allowed gets the same 403 as every route; a foreign Origin too', async () => {
    for (const host of ['evil.example', 'localhost6', '127.1', `0x7f.1:${d.port}`]) {
      const page = await rawRequest(d.port, ['GET / HTTP/1.1', `Host: ${host}`]);
      const status = await rawRequest(d.port, ['GET /status HTTP/1.1', `Host: ${host}`, `Authorization: Bearer ${TOKEN}`]);
      assert.equal(page.status, 403, host);
      assert.deepEqual(JSON.parse(page.body), { ...JSON.parse(status.body) }, `the same problem as /status for Host ${host}`);
      assert.equal((JSON.parse(page.body) as { code: string }).code, 'HOST_NOT_ALLOWED');
      assert.equal(page.headers['content-security-policy'], undefined, 'no page was served');
    }
    const foreign = await rawRequest(d.port, ['GET / HTTP/1.1', `Host: 127.0.0.1:${d.port}`, 'Origin: http://evil.example']);
    assert.equal(foreign.status, 403);
    assert.equal((JSON.parse(foreign.body) as { code: string }).code, 'ORIGIN_NOT_ALLOWED');
  });
});

test('a console folder that is not installed: GET / is a 404 problem saying so', async (t) => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'nlbridge-console-'));
  t.after(() => fs.rmSync(empty, { recursive: true, force: true }));
  const app = Fastify();
  app.setErrorHandler((err: Error & { status?: number; body?: () => unknown }, _req, reply) => {
    void reply.code(err.status ?? 500).send(err.body?.() ?? { message: err.message });
  });
  consoleRoutes(app, empty);
  t.after(() => app.close());
  const r = await app.inject({ method: 'GET', url: '/' });
  assert.equal(r.statusCode, 404);
  assert.match((r.json() as { detail: string }).detail, /the console is not installed \(.*index\.html is missing\)/);
});

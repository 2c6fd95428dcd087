// Every operation of openapi.yaml, requested on the daemon the VM runs
// (installed from the .deb with apt): each answers 2xx with the documented
// content type and body (the fleet's, on a daemon with no fleet, their
// documented 404); the public ones also without a token. A route added
// to the spec without a line in ROUTES fails.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadSpec } from '../../../daemon/spec';
import { assertMatchesSpec } from '../../host/support/daemon_spec';
import { ROOT, type Vm } from './vm';

/**
 * One request to the installed daemon through the forwarded port, with its
 * content type. A stream (SSE) is read until @until matches, then closed.
 */
function request(
  v: Vm,
  method: string,
  urlPath: string,
  opts: { token?: string | null; body?: unknown; until?: RegExp } = {},
): Promise<{ status: number; type: string; body: string }> {
  const token = opts.token === undefined ? v.token : opts.token;
  const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
  const headers: Record<string, string> = { host: '127.0.0.1:8080' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (payload) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: v.apiPort, method, path: urlPath, headers, timeout: 20_000 }, (res) => {
      let body = '';
      const done = (): void => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body });
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
        if (opts.until?.test(body)) {
          done();
          req.destroy();
        }
      });
      res.on('end', done);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${urlPath}: no answer within 20 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * `notConfigured`: the installed daemon is on no fleet (the shipped config has
 * no "nats"), so the route gives its documented 404 FLEET_NOT_CONFIGURED.
 */
export const ROUTES: Record<string, { path: string; body?: unknown; until?: RegExp; ws?: boolean; notConfigured?: boolean }> = {
  'POST /send': { path: '/send', body: { groups: [3], data: 'e2e-every-route' } },
  'GET /groups/{mask}': { path: '/groups/4', ws: true },
  'GET /groups/{mask}/events': { path: '/groups/4/events', until: /event: hello/ },
  'GET /groups/{mask}/recent': { path: '/groups/4/recent' },
  'GET /groups': { path: '/groups?list=2,3', ws: true },
  'GET /status': { path: '/status' },
  'GET /kernel/stats': { path: '/kernel/stats' },
  'GET /metrics': { path: '/metrics' },
  'GET /healthz': { path: '/healthz' },
  'GET /openapi.yaml': { path: '/openapi.yaml' },
  'GET /asyncapi.yaml': { path: '/asyncapi.yaml' },
  'GET /': { path: '/' },
  'GET /console/{file}': { path: '/console/main.js' },
  'GET /fleet/groups/{mask}': { path: '/fleet/groups/4', notConfigured: true },
  'GET /fleet/groups/{mask}/events': { path: '/fleet/groups/4/events', notConfigured: true },
};
// Served without a token (daemon/README.md, security).
const PUBLIC = ['/healthz', '/openapi.yaml', '/asyncapi.yaml', '/', '/console/main.js'];

/** Requests every route of ROUTES (which must be openapi.yaml's) on @v's daemon; throws on the first wrong answer. */
export async function requestEveryRoute(v: Vm): Promise<void> {
  const { doc } = loadSpec(path.join(ROOT, 'openapi.yaml'));
  const ops = Object.entries(doc.paths).flatMap(([tpl, item]) =>
    Object.keys(item)
      .filter((m) => ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'].includes(m))
      .map((m) => `${m.toUpperCase()} ${tpl}`),
  );
  assert.deepEqual([...ops].sort(), Object.keys(ROUTES).sort(), 'openapi.yaml and this test list different routes');
  for (const [op, r] of Object.entries(ROUTES)) {
    const method = op.split(' ')[0]!;
    if (r.ws) {
      const ws = await v.ws(r.path);
      try {
        await ws.waitFor((f) => f.type === 'hello', 10_000, `hello on ${r.path}`);
      } finally {
        ws.close();
      }
      continue;
    }
    if (r.notConfigured) {
      const res = await request(v, method, r.path);
      assert.equal(res.status, 404, `${op}: ${res.status} ${res.body.slice(0, 300)}`);
      const problem = JSON.parse(res.body) as { code: string };
      assert.equal(problem.code, 'FLEET_NOT_CONFIGURED', res.body);
      assertMatchesSpec(method, r.path, res.status, res.type, problem);
      continue;
    }
    const tokens = PUBLIC.includes(r.path) ? [v.token, null] : [v.token];
    for (const token of tokens) {
      const res = await request(v, method, r.path, { token, body: r.body, until: r.until });
      const what = `${op} ${token ? 'with' : 'without'} the token`;
      assert.equal(res.status, 200, `${what}: ${res.status} ${res.body.slice(0, 300)}`);
      const mediaType = res.type.split(';')[0]!.trim();
      const body = mediaType.endsWith('json') ? JSON.parse(res.body) : res.body;
      assertMatchesSpec(method, r.path, res.status, res.type, body, { checkBody: !r.until });
      if (mediaType === 'application/yaml') {
        const spec = parseYaml(res.body) as Record<string, unknown>;
        assert.ok(spec.openapi ?? spec.asyncapi, `${what}: not an OpenAPI or AsyncAPI document`);
      }
    }
  }
}

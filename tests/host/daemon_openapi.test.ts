// openapi.yaml is the contract: it lints clean, the server serves exactly its
// paths, the problem codes match, and every kind of answer fits it (the other
// daemon tests check each response they get through the same validator).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { PROBLEMS } from '../../daemon/errors';
import { SPEC_PATH, loadSpec } from '../../daemon/spec';
import { call, connect, startDaemon, type Daemon } from './support/daemon_harness';
import { assertMatchesSpec } from './support/daemon_spec';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('openapi.yaml', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.close());

  test('lints clean with Redocly recommended-strict', async () => {
    const { lint, createConfig } = await import('@redocly/openapi-core');
    // operation-2xx-response is off because a WebSocket upgrade answers 101;
    // the next test checks the 2xx of every other operation instead.
    const config = await createConfig({
      extends: ['recommended-strict'],
      rules: {
        'operation-2xx-response': 'off',
        'operation-4xx-response': 'error',
        'no-unused-components': 'error',
        'security-defined': 'error',
      },
    });
    const problems = await lint({ ref: SPEC_PATH, config });
    assert.deepEqual(
      problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`),
      [],
    );
  });

  test('every operation answers 2xx, or 101 for the WebSocket streams', () => {
    const { doc } = loadSpec();
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(item)) {
        const codes = Object.keys(op.responses);
        const ok =
          p === '/groups' || p === '/groups/{mask}' || p === '/fleet/groups/{mask}'
            ? codes.includes('101')
            : codes.some((c) => c.startsWith('2'));
        assert.ok(ok, `${m.toUpperCase()} ${p}: ${codes.join(',')}`);
      }
    }
  });

  test('the server serves exactly the paths and methods of the spec', () => {
    const { doc } = loadSpec();
    const specOps = new Set<string>();
    for (const [p, item] of Object.entries(doc.paths)) {
      for (const m of Object.keys(item)) if (METHODS.includes(m)) specOps.add(`${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`);
    }
    for (const op of specOps) {
      const [method, url] = op.split(' ');
      assert.ok(d.app.hasRoute({ method: method as 'GET', url }), `spec operation ${op} has no route`);
    }
    // And nothing undocumented.
    const served = new Set(d.app.nlbridge.routes.map((r) => `${r.method} ${r.url}`));
    assert.deepEqual([...served].sort(), [...specOps].sort());
  });

  test('the problem codes of the error table are the spec enum', () => {
    const { doc } = loadSpec();
    const props = (doc.components.schemas.Problem as { properties: { code: { enum: string[] } } }).properties;
    assert.deepEqual([...props.code.enum].sort(), Object.keys(PROBLEMS).sort());
  });

  test('/openapi.yaml serves the file itself', async () => {
    const r = await call(d, 'GET', '/openapi.yaml');
    assert.equal(r.status, 200);
    assert.equal(r.text, fs.readFileSync(SPEC_PATH, 'utf8'));
    assert.match(r.headers.get('content-type') ?? '', /^application\/yaml/);
  });

  test('each operation answers within the spec', async () => {
    const send = await call(d, 'POST', '/send', { body: { groups: [16], data: 'spec' } });
    assert.equal(send.status, 200);
    const status = await call(d, 'GET', '/status');
    assert.equal(status.status, 200);
    const stats = await call(d, 'GET', '/kernel/stats');
    assert.equal(stats.status, 409, 'no dummy_netlink on this host');
    assert.equal((stats.json as { code: string }).code, 'NO_KERNEL_ENDPOINT');
    const metrics = await call(d, 'GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    // Every sample line is "name{labels} value" of a declared family.
    // A histogram's samples are its name with _bucket, _sum and _count;
    // values are floats as Go's ParseFloat reads them (exponents, +Inf).
    const types = new Map([...metrics.text.matchAll(/^# TYPE (\S+) (counter|gauge|histogram)$/gm)].map((m) => [m[1], m[2]]));
    const familyOf = (name: string): string | undefined => {
      if (types.has(name)) return name;
      const base = name.replace(/_(bucket|sum|count)$/, '');
      return types.get(base) === 'histogram' ? base : undefined;
    };
    for (const line of metrics.text.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?\d+(\.\d+)?(e[+-]?\d+)?|\+Inf)$/.exec(line);
      assert.ok(m, `bad sample line: ${line}`);
      assert.ok(familyOf(m[1]), `undeclared family ${m[1]}`);
    }
    assert.equal((await call(d, 'GET', '/healthz')).status, 200);
    assert.equal((await call(d, 'GET', '/groups/0x8000/recent?limit=5')).status, 200);
    // The streams: every frame is validated against StreamFrame by the client helper.
    const { client, hello } = await connect(d, '/groups/0x8000?batch=1');
    assert.equal(hello.type, 'hello');
    client.send(JSON.stringify({ id: 1, groups: [16], data: 'spec-ws' }));
    await client.next((f) => f.type === 'sent');
    await client.next((f) => f.type === 'message' && f.data === 'spec-ws');
    client.send(JSON.stringify({ id: 2, pid: 0 }));
    const err = await client.next((f) => f.type === 'error');
    assert.equal((err.problem as { code: string }).code, 'NO_KERNEL_ENDPOINT');
    assert.deepEqual(client.specErrors, []);
    await client.close();
  });

  test('the validator rejects what the spec does not allow (it can fail)', () => {
    assert.throws(() => assertMatchesSpec('GET', '/status', 200, 'application/json', { version: '1' }), /does not match/);
    assert.throws(() => assertMatchesSpec('GET', '/status', 418, 'application/json', {}), /not documented/);
    assert.throws(() => assertMatchesSpec('POST', '/send', 200, 'text/plain', 'x'), /content type text\/plain/);
    assert.throws(() => assertMatchesSpec('GET', '/undocumented', 200, 'application/json', {}), /not in openapi\.yaml/);
  });
});

describe('closing', () => {
  test('requests on a kept-alive connection during close get a 503 problem; /healthz says stopping', async () => {
    const d = await startDaemon();
    d.app.nlbridge.stopping = true;
    const r = await call(d, 'GET', '/status');
    assert.equal(r.status, 503);
    assert.equal((r.json as { code: string }).code, 'SHUTTING_DOWN');
    const h = await call(d, 'GET', '/healthz');
    assert.equal(h.status, 503);
    assert.equal((h.json as { status: string }).status, 'stopping');
    await d.close();
  });
});

// Scoped tokens over real HTTP, WebSocket and SSE: each scope refuses what it
// should with a 403 problem naming it, allows the rest; secrets never logged.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TAG, RrNlk, bit, buildTools, call, connect, startDaemon, type Daemon } from './support/daemon_harness';
import { waitFor } from '../support/wait';
import { SseClient } from './support/sse_client';
import { parseTokenSpecs, resolveTokens } from '../../daemon/scopes';

const G = 29;
const H = 31;
const MAIN = 'main-scopes-secret-0123456789';
const READER = 'reader-scopes-secret-0123456789';
const SENDER = 'sender-scopes-secret-0123456789';

type ProblemJson = { code: string; field: string; detail: string; refused: Record<string, unknown> };

describe('scoped tokens', () => {
  let d: Daemon;
  const logs: Record<string, unknown>[] = [];
  let rr: RrNlk;
  let rrPort: number;
  before(async () => {
    buildTools();
    rr = new RrNlk(['-g', String(bit(G))]);
    rrPort = await rr.portId;
    const scoped = resolveTokens(
      parseTokenSpecs([
        { name: 'reader', token: READER, read: [G], sendGroups: [], sendPorts: [], kernel: false },
        { name: 'sender', token: SENDER, read: [], sendGroups: [G], sendPorts: [rrPort], kernel: false },
      ]),
      {},
    );
    d = await startDaemon({ token: MAIN, scoped, logs });
  });
  after(async () => {
    rr.kill();
    await d.close();
  });
  const as = (t: string): { authorization: string } => ({ authorization: `Bearer ${t}` });
  /** Waits until rr_nlk printed `marker` at least `n` times. */
  const printed = (marker: string, n = 1): Promise<number> =>
    waitFor(`${marker} printed ${n}× by rr_nlk`, () => rr.with(marker).length, { timeoutMs: 5000, until: (k) => k >= n });
  /**
   * The main token sends an end marker to G and rr_nlk prints it: the bridge
   * sends from one tx socket in order, so anything sent before it that must
   * not arrive would have been printed before.
   */
  const endMarker = async (name: string): Promise<void> => {
    const end = `end-${name}-${TAG}`;
    assert.equal((await call({ base: d.base, token: MAIN }, 'POST', '/send', { body: { groups: [G], data: end } })).status, 200);
    await printed(end);
  };

  test('reader: streams its group; a mask with another group is 403 naming it (WS, SSE, /recent)', async () => {
    const { client, hello } = await connect({ wsBase: d.wsBase, token: READER }, `/groups/${bit(G)}`);
    assert.deepEqual(hello.groups, [G]);
    await client.close();
    await assert.rejects(
      connect({ wsBase: d.wsBase, token: READER }, `/groups/${bit(G) | bit(H)}`),
      (e: Error & { status?: number; body?: string }) => {
        assert.equal(e.status, 403);
        const p = JSON.parse(e.body ?? '{}') as ProblemJson;
        assert.equal(p.code, 'PERMISSION_DENIED');
        assert.deepEqual(p.refused, { read: [H] });
        assert.match(p.detail, new RegExp(`token "reader" may not read group ${H}`));
        return true;
      },
    );
    await assert.rejects(
      connect({ wsBase: d.wsBase, token: null }, `/groups?list=${H}`, { protocols: ['nlbridge', `bearer.${READER}`] }),
      (e: Error & { status?: number }) => e.status === 403,
    );
    const sse = await new SseClient().open(`${d.base}/groups/${bit(H)}/events`, as(READER));
    assert.equal(sse.status, 403);
    await sse.ended;
    assert.equal((JSON.parse(sse.body) as ProblemJson).field, 'mask');
    const ok = await new SseClient().open(`${d.base}/groups/${bit(G)}/events`, as(READER));
    assert.equal(ok.status, 200);
    ok.kill();
    const r = await call({ base: d.base, token: READER }, 'GET', `/groups/${bit(H)}/recent`);
    assert.equal(r.status, 403);
    assert.equal((await call({ base: d.base, token: READER }, 'GET', `/groups/${bit(G)}/recent`)).status, 200);
  });

  test('reader: may not send, by POST or by writing into its stream', async () => {
    const r = await call({ base: d.base, token: READER }, 'POST', '/send', { body: { groups: [G], data: 'x' } });
    assert.equal(r.status, 403);
    assert.deepEqual((r.json as ProblemJson).refused, { groups: [G] });
    const { client } = await connect({ wsBase: d.wsBase, token: READER }, `/groups/${bit(G)}`);
    try {
      const marker = `${TAG}-reader-typed`;
      client.send(marker);
      const err = await client.next((f) => f.type === 'error');
      assert.equal((err.problem as ProblemJson).code, 'PERMISSION_DENIED');
      client.send(JSON.stringify({ id: 7, pid: rrPort, data: 'x' }));
      const err2 = await client.next((f) => f.type === 'error');
      assert.equal(err2.id, 7);
      assert.deepEqual((err2.problem as ProblemJson).refused, { ports: [rrPort] });
      await endMarker('reader');
      assert.equal(rr.with(marker).length, 0, 'nothing reached netlink');
    } finally {
      await client.close();
    }
  });

  test('sender: its group and port are allowed; other groups, ports, the kernel and reading are refused', async () => {
    const t = { base: d.base, token: SENDER };
    const marker = `${TAG}-sender`;
    const ok = await call(t, 'POST', '/send', { body: { groups: [G], data: marker } });
    assert.equal(ok.status, 200);
    assert.equal((await call(t, 'POST', '/send', { body: { pid: rrPort, data: `${marker}-u` } })).status, 200);
    await printed(marker, 2);
    await endMarker('sender');
    assert.equal(rr.with(marker).length, 2);
    const refuse = async (body: unknown, field: string, refused: unknown): Promise<void> => {
      const r = await call(t, 'POST', '/send', { body });
      assert.equal(r.status, 403, JSON.stringify(body));
      const p = r.json as ProblemJson;
      assert.equal(p.code, 'PERMISSION_DENIED');
      assert.equal(p.field, field);
      assert.deepEqual(p.refused, refused);
      assert.match(p.detail, /token "sender" may not/);
    };
    await refuse({ groups: [G, H], data: 'x' }, 'groups', { groups: [H] });
    await refuse({ pid: rrPort + 1, data: 'x' }, 'pid', { ports: [rrPort + 1] });
    await refuse({ pid: 0, data: 'x' }, 'pid', { kernel: 'port 0' });
    await refuse({ relay: rrPort, data: 'x' }, 'relay', { kernel: 'RELAY' });
    await refuse({ groups: [40], data: 'x' }, 'groups', { groups: [40] });
    await assert.rejects(
      connect({ wsBase: d.wsBase, token: SENDER }, `/groups/${bit(G)}`),
      (e: Error & { status?: number }) => e.status === 403,
    );
  });

  test('the main token is unlimited; a wrong token is 401; no secret is logged', async () => {
    const { client } = await connect({ wsBase: d.wsBase, token: MAIN }, `/groups/${bit(G) | bit(H)}`);
    await client.close();
    assert.equal((await call({ base: d.base, token: MAIN }, 'POST', '/send', { body: { groups: [H], data: 'x' } })).status, 200);
    // The refused request's own log line (written in onResponse, maybe after the client has the answer).
    const completed401 = (): number =>
      logs.filter((l) => l.msg === 'request completed' && (l.res as { statusCode?: number } | undefined)?.statusCode === 401).length;
    const before401 = completed401();
    assert.equal((await call({ base: d.base, token: `${READER}x` }, 'GET', '/status')).status, 401);
    await waitFor('the 401 request\'s "request completed" log line', completed401, { timeoutMs: 5000, until: (n) => n > before401 });
    assert.ok(logs.length > 10);
    for (const line of logs) {
      const text = JSON.stringify(line);
      for (const secret of [MAIN, READER, SENDER]) assert.ok(!text.includes(secret), `secret in log: ${text}`);
    }
  });
});

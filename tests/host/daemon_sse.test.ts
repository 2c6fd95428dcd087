// Server-Sent Events at /groups/{mask}/events: the frames of the WebSocket
// stream with id: = cursor, resume with Last-Event-ID (under load: every
// message once, in order), curl -N, shutdown.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TAG, bit, buildTools, call, sleep, startDaemon, wwNlk, type Daemon } from './support/daemon_harness';
import { waitFor as waitForProbe } from '../support/wait';
import { Sender, indexOf } from './support/flood_sender';
import { SseClient, type SseEvent } from './support/sse_client';
import { skipUnless } from '../support/prerequisites';

const G1 = 27;
const G2 = 28;

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  await waitForProbe(what, pred, { timeoutMs: ms, intervalMs: 10 });
}

const msgs = (c: SseClient, prefix: string): SseEvent[] =>
  c.events.filter((e) => e.event === 'message' && indexOf(prefix, e.data.data) >= 0);

describe('SSE /groups/{mask}/events', () => {
  let d: Daemon;
  let sender: Sender;
  before(async () => {
    buildTools();
    d = await startDaemon({ token: 'sse-test-token-0123456789' });
    sender = new Sender();
  });
  after(async () => {
    sender.close();
    await d.close();
  });
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${d.token}` });

  test('text/event-stream: hello, then messages with id: = cursor, frames as on the WebSocket', async () => {
    const c = await new SseClient().open(`${d.base}/groups/${bit(G1) | bit(G2)}/events`, auth());
    try {
      assert.equal(c.status, 200);
      assert.match(String(c.headers['content-type']), /^text\/event-stream/);
      assert.equal(c.headers['cache-control'], 'no-cache');
      await waitFor(() => c.events.length >= 1, 2000, 'hello');
      assert.equal(c.events[0].event, 'hello');
      assert.deepEqual(c.events[0].data.groups, [G1, G2]);
      assert.equal(c.retry, 1000);
      const prefix = `${TAG}-sse`;
      await wwNlk(['-g', String(bit(G1) | bit(G2)), '-m', `${prefix}-0`]);
      await waitFor(() => msgs(c, prefix).length === 1, 5000, 'the message');
      // The end marker after it on one of the two groups: a second copy would have come before.
      const end = `${TAG}-end-sse`;
      await wwNlk(['-g', String(bit(G2)), '-m', end]);
      await waitFor(() => c.events.some((e) => e.event === 'message' && e.data.data === end), 5000, 'the end marker');
      const [m] = msgs(c, prefix);
      assert.equal(msgs(c, prefix).length, 1, 'one copy for two groups');
      assert.equal(m.id, m.data.cursor);
      assert.ok(String(m.id).startsWith(`${d.bus.ring.epoch}-`));
      assert.equal(m.data.n, 1);
      assert.equal(m.data.group, G1);
      assert.deepEqual(c.specErrors, []);
    } finally {
      c.kill();
    }
  });

  test('a stream killed under load resumes with Last-Event-ID: every message once, in order', async () => {
    const prefix = `${TAG}-sse-kill`;
    const N = 4000;
    const a = await new SseClient().open(`${d.base}/groups/${bit(G2)}/events`, auth());
    const sending = sender.run(G2, prefix, 0, N);
    await waitFor(() => msgs(a, prefix).length >= 600, 5000, '600 messages');
    a.kill();
    const before = msgs(a, prefix);
    const last = before[before.length - 1].id!;
    // The scenario: the sender goes on for a while with no stream open (what it sent meanwhile comes from the ring).
    await sleep(30);
    const b = await new SseClient().open(`${d.base}/groups/${bit(G2)}/events`, { ...auth(), 'last-event-id': last });
    try {
      await sending;
      await waitFor(
        () => {
          const m = msgs(b, prefix);
          return m.length > 0 && indexOf(prefix, m[m.length - 1].data.data) === N - 1;
        },
        10000,
        'the last message',
      );
      const idx = [...before, ...msgs(b, prefix)].map((e) => indexOf(prefix, e.data.data));
      assert.equal(idx.length, N, `delivered ${idx.length} of ${N}`);
      idx.forEach((v, i) => assert.equal(v, i));
      assert.ok(!b.events.some((e) => ['gap', 'dropped', 'overrun'].includes(e.event)));
      assert.deepEqual(b.specErrors, []);
    } finally {
      b.kill();
    }
  });

  test('Last-Event-ID from another daemon run: a gap event, then the live stream', async () => {
    const c = await new SseClient().open(`${d.base}/groups/${bit(G1)}/events`, { ...auth(), 'last-event-id': 'deadbeef-12' });
    try {
      await waitFor(() => c.events.some((e) => e.event === 'gap'), 2000, 'gap');
      const gap = c.events.find((e) => e.event === 'gap')!;
      assert.equal(gap.data.reason, 'epoch');
      assert.equal(gap.data.since, 'deadbeef-12');
      const prefix = `${TAG}-sse-ep`;
      await wwNlk(['-g', String(bit(G1)), '-m', `${prefix}-0`]);
      await waitFor(() => msgs(c, prefix).length === 1, 2000, 'live');
    } finally {
      c.kill();
    }
  });

  test('a bad Last-Event-ID or since is a 400 problem; no token is 401', async () => {
    const r = await call(d, 'GET', `/groups/${bit(G1)}/events`, { headers: { 'last-event-id': 'x y' } });
    assert.equal(r.status, 400);
    assert.equal((r.json as { field: string }).field, 'Last-Event-ID');
    assert.equal((await call(d, 'GET', `/groups/${bit(G1)}/events?since=${d.bus.ring.epoch}-99999999`)).status, 400);
    assert.equal((await call(d, 'GET', `/groups/${bit(G1)}/events`, { auth: false })).status, 401);
  });

  test('curl -N streams it', { skip: skipUnless('curl') }, async () => {
    const prefix = `${TAG}-curl`;
    const curl = spawn('curl', ['-sN', '-H', `Authorization: Bearer ${d.token}`, `${d.base}/groups/${bit(G1)}/events`]);
    let out = '';
    curl.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await waitFor(() => out.includes('event: hello'), 3000, 'hello from curl');
      await wwNlk(['-g', String(bit(G1)), '-m', `${prefix}-0`]);
      await waitFor(() => out.includes(`${prefix}-0`), 3000, 'the message from curl');
      assert.match(out, new RegExp(`id: ${d.bus.ring.epoch}-\\d+\\nevent: message\\ndata: \\{"type":"message"`));
    } finally {
      curl.kill();
    }
  });
});

test('closing the daemon ends open SSE streams promptly', async () => {
  const d = await startDaemon();
  const c = await new SseClient().open(`${d.base}/groups/${bit(G1)}/events`);
  await waitFor(() => c.events.length >= 1, 2000, 'hello');
  const t0 = Date.now();
  await d.close();
  await c.ended;
  assert.ok(Date.now() - t0 < 2000, `close took ${Date.now() - t0} ms`);
  assert.deepEqual(d.bus.joinedGroups(), []);
});

// Issue 18, watching: a daemon C connected to NATS streams what another
// daemon A publishes (/fleet/groups/{mask}, WebSocket and SSE), once, with
// `host`; ?hosts= selects; a jump in a host's sequence header, a publisher's
// drop notice and a lost NATS connection are told as gap frames; bad hosts
// are 400 naming the field; without --nats the routes answer 404
// FLEET_NOT_CONFIGURED. One nats-server; A is a spawned daemon publishing
// group 2, C an in-process daemon (so its token limits and scopes can be set);
// crafted messages (host Z) are published on NATS by the test itself.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { checkFleetSettings, startFleet } from '../../daemon/fleet/index';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, call, connect, sleep, startDaemon, type Daemon, type Frame } from './support/daemon_harness';
import { NatsServer } from './support/nats_server';
import { SseClient } from './support/sse_client';
import { fleetStatus } from './support/fleet_hosts';

const MAIN_TOKEN = 'fleet-watch-main-token';
const READER_TOKEN = 'fleet-watch-reader-token';

function messages(frames: readonly (Frame | Buffer)[]): Frame[] {
  return frames.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === 'message');
}

describe('fleet: watching other hosts', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let a: DaemonProc;
  let c: Daemon;
  let nc: NatsConnection;

  /** Publishes a crafted message of host `host` as a publishing daemon would. */
  const publish = (host: string, group: number, n: number, text: string, epoch = 'e1'): void => {
    const h = natsHeaders();
    h.set('n', String(n));
    h.set('g', String(group));
    h.set('p', '4242');
    h.set('s', String(n));
    h.set('t', '16');
    h.set('f', '0');
    h.set('c', `${epoch}-${n}`);
    nc.publish(`nlbridge.${host}.g.${group}`, encodeMessage({ type: 16, seq: n, payload: Buffer.from(text) }), { headers: h });
  };

  before(async () => {
    await server.start();
    nc = await natsConnect({ servers: server.url });
    a = await spawnDaemon(['--nats', server.url, '--host-id', 'A', '--nats-publish', '2']);
    c = await startDaemon({
      token: MAIN_TOKEN,
      scoped: [
        {
          token: READER_TOKEN,
          scope: { name: 'reader', read: [4], sendGroups: [], sendPorts: [], sendTypes: [], kernel: false },
        },
      ],
      config: { nats: [server.url], hostId: 'C', maxStreamsPerToken: 6 },
      fleet: (bus, config, logger) => startFleet(config, checkFleetSettings(config), bus, logger),
    });
    const connected = async (base: string, token: string | null): Promise<boolean> => {
      const r = await fetch(`${base}/status`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
      return ((await r.json()) as { fleet: { connected: boolean } }).fleet.connected;
    };
    await waitFor('A connected to NATS', () => connected(a.base, a.token), { timeoutMs: 10000 });
    await waitFor('C connected to NATS', () => connected(c.base, c.token), { timeoutMs: 10000 });
  });

  after(async () => {
    await a?.stop();
    await c?.close();
    await nc?.close();
    await server.stop();
  });

  test("a message on A's group 2 reaches C's /fleet WebSocket and SSE streams exactly once, with host A; ?hosts= selects", async () => {
    const all = await connect(c, `/fleet/groups/${bit(2)}`);
    const onlyA = await connect(c, `/fleet/groups/${bit(2)}?hosts=A`);
    const onlyB = await connect(c, `/fleet/groups/${bit(2)}?hosts=B,Q`);
    const sse = await new SseClient().open(`${c.base}/fleet/groups/${bit(2)}/events`, { authorization: `Bearer ${MAIN_TOKEN}` });
    assert.equal(sse.status, 200, sse.body);
    assert.equal(all.hello.hosts, null);
    assert.deepEqual(onlyA.hello.hosts, ['A']);
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      await waitFor('the SSE hello', () => sse.events.length, { timeoutMs: 3000, until: (n) => n >= 1 });
      sender.send(encodeMessage({ type: 16, seq: 5, payload: Buffer.from('hello-watch') }), { portId: 0, groups: bit(2) });
      const m = await all.client.next((f) => f.type === 'message', 5000, 'the fleet message');
      assert.equal(m.host, 'A');
      assert.equal(m.group, 2);
      assert.equal(m.data, 'hello-watch');
      assert.equal(m.seq, 5);
      assert.equal(m.portId, sender.portId, "the sender's real port id, as A saw it");
      assert.equal(m.cursor, undefined, 'no resume on a fleet stream');
      const ma = await onlyA.client.next((f) => f.type === 'message', 5000, 'the message on ?hosts=A');
      assert.equal(ma.host, 'A');
      await waitFor('the SSE message', () => sse.events.filter((e) => e.event === 'message'), {
        timeoutMs: 5000,
        until: (l) => l.length >= 1,
      });
      await sleep(500);
      assert.equal(messages(all.client.all).length, 1, 'exactly once');
      assert.equal(messages(onlyA.client.all).length, 1, 'exactly once');
      assert.equal(messages(onlyB.client.all).length, 0, '?hosts=B,Q: nothing of A');
      const sseMessages = sse.events.filter((e) => e.event === 'message');
      assert.equal(sseMessages.length, 1, 'exactly once over SSE');
      assert.equal(sseMessages[0].data.host, 'A');
      assert.equal(sseMessages[0].data.data, 'hello-watch');
      assert.equal(sseMessages[0].id, null, 'no id: no resume');
      assert.deepEqual(sse.specErrors, []);
      for (const s of [all, onlyA, onlyB]) {
        assert.deepEqual(s.client.specErrors, []);
        assert.equal(s.client.all.filter((f) => !Buffer.isBuffer(f) && f.type === 'gap').length, 0, 'no gap on a clean run');
      }
    } finally {
      sender.close();
      sse.kill();
      await all.client.close();
      await onlyA.client.close();
      await onlyB.client.close();
    }
  });

  test("a jump in a host's sequence is a gap with the count; a repeat is dropped; other groups pass unseen without a false gap", async () => {
    const ws = await connect(c, `/fleet/groups/${bit(2)}?hosts=Z`);
    const sse = await new SseClient().open(`${c.base}/fleet/groups/${bit(2)}/events?hosts=Z`, { authorization: `Bearer ${MAIN_TOKEN}` });
    try {
      await waitFor('the SSE hello', () => sse.events.length, { timeoutMs: 3000, until: (n) => n >= 1 });
      await sleep(200); // the NATS subscriptions are in place
      publish('Z', 2, 1, 'z1');
      publish('Z', 2, 2, 'z2');
      publish('Z', 2, 5, 'z5'); // 3 and 4 lost between Z and C
      publish('Z', 2, 5, 'z5-again'); // a resend after Z's reconnect
      publish('Z', 4, 6, 'z6-group4'); // not a watched group: not shown, but counted
      publish('Z', 2, 7, 'z7');
      await nc.flush();
      const gap = await ws.client.next((f) => f.type === 'gap', 5000, 'the gap');
      assert.deepEqual({ ...gap, n: 0 }, { type: 'gap', n: 0, reason: 'sequence', host: 'Z', lost: 2, from: 3, to: 4 });
      await ws.client.next((f) => f.type === 'message' && f.data === 'z7', 5000, 'z7');
      await sleep(300);
      const got = messages(ws.client.all).map((f) => f.data);
      assert.deepEqual(got, ['z1', 'z2', 'z5', 'z7']);
      const frames = ws.client.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type !== 'hello');
      assert.deepEqual(
        frames.map((f) => (f.type === 'message' ? f.data : f.type)),
        ['z1', 'z2', 'gap', 'z5', 'z7'],
        'the gap comes where the messages are missing, and only once',
      );
      assert.deepEqual(
        sse.events.filter((e) => e.event !== 'hello').map((e) => (e.event === 'message' ? e.data.data : `${e.event}:${e.data.lost}`)),
        ['z1', 'z2', 'gap:2', 'z5', 'z7'],
      );
      assert.deepEqual(sse.specErrors, []);

      // The publisher's own drop notice (8..10), then its next message: one gap, the publisher's, not a second one for the jump.
      nc.publish('nlbridge.Z.events', JSON.stringify({ type: 'dropped', host: 'Z', count: 3, from: 8, to: 10, reasons: { buffer: 3 } }));
      publish('Z', 2, 11, 'z11');
      await ws.client.next((f) => f.type === 'message' && f.data === 'z11', 5000, 'z11');
      const after7 = ws.client.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === 'gap');
      assert.equal(after7.length, 2, JSON.stringify(after7));
      assert.deepEqual({ ...after7[1], n: 0 }, { type: 'gap', n: 0, reason: 'publisher', host: 'Z', lost: 3, from: 8, to: 10 });

      // A new run of Z's daemon (another epoch) starts n again: no gap, no repeat.
      publish('Z', 2, 1, 'z-new-run', 'e2');
      await ws.client.next((f) => f.type === 'message' && f.data === 'z-new-run', 5000, 'the new run');
      assert.equal(ws.client.all.filter((f) => !Buffer.isBuffer(f) && f.type === 'gap').length, 2);
      assert.deepEqual(ws.client.specErrors, []);
    } finally {
      sse.kill();
      await ws.client.close();
    }
  });

  test("the local streams' format, batch and unicast are refused on /fleet, naming the parameter, not ignored", async () => {
    for (const [q, field] of [
      ['format=binary', 'format'],
      ['batch=1', 'batch'],
      ['unicast=1', 'unicast'],
    ]) {
      const r = await call(c, 'GET', `/fleet/groups/2/events?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal((r.json as { field: string }).field, field, q);
      await assert.rejects(connect(c, `/fleet/groups/2?${q}`), (err: Error & { status?: number; body?: string }) => {
        assert.equal(err.status, 400, q);
        assert.equal((JSON.parse(err.body!) as { field: string }).field, field);
        return true;
      });
    }
  });

  test('bad hosts are 400 naming the field, on both routes, before any upgrade', async () => {
    for (const q of [
      'hosts=',
      'hosts=A,',
      'hosts=a.b',
      'hosts=*',
      'hosts=%3E',
      `hosts=${'x'.repeat(65)}`,
      'hosts=a%00b', // a control character: no --host-id may hold one
      `hosts=${Array.from({ length: 33 }, (_, i) => `h${i}`).join(',')}`,
    ]) {
      const r = await call(c, 'GET', `/fleet/groups/2/events?${q}`);
      assert.equal(r.status, 400, q);
      const p = r.json as { code: string; field: string; detail: string };
      assert.equal(p.field, 'hosts', `${q}: ${p.detail}`);
      assert.match(p.detail, /^hosts: /);
      await assert.rejects(connect(c, `/fleet/groups/2?${q}`), (err: Error & { status?: number; body?: string }) => {
        assert.equal(err.status, 400, q);
        assert.equal((JSON.parse(err.body!) as { field: string }).field, 'hosts');
        return true;
      });
    }
  });

  test('a scoped token needs read permission on the groups; fleet streams count toward --max-streams-per-token', async () => {
    const reader = { base: c.base, wsBase: c.wsBase, token: READER_TOKEN };
    const refused = await call(reader, 'GET', `/fleet/groups/${bit(2)}/events`);
    assert.equal(refused.status, 403);
    assert.deepEqual((refused.json as { refused: { read: number[] } }).refused.read, [2]);
    await assert.rejects(connect(reader, `/fleet/groups/${bit(2)}`), (err: Error & { status?: number }) => err.status === 403);
    const ok = await connect(reader, `/fleet/groups/${bit(4)}`);
    await ok.client.close();

    // Six streams for the main token (--max-streams-per-token 6): local and fleet ones together.
    const held = [await connect(c, `/groups/${bit(3)}`)];
    for (let i = 0; i < 5; i++) held.push(await connect(c, `/fleet/groups/${bit(2)}`));
    try {
      await assert.rejects(connect(c, `/fleet/groups/${bit(2)}`), (err: Error & { status?: number }) => err.status === 429);
      const sse = await call(c, 'GET', `/fleet/groups/${bit(2)}/events`);
      assert.equal(sse.status, 429);
      assert.equal((sse.json as { code: string }).code, 'LIMIT_REACHED');
    } finally {
      for (const h of held) await h.client.close();
    }
  });

  // Last: it kills the server under A and C.
  test('losing the NATS server is told at once (gap, reason nats), and the count follows from the sequence once it is back', async () => {
    const ws = await connect(c, `/fleet/groups/${bit(2)}?hosts=Y`);
    try {
      await sleep(200);
      publish('Y', 2, 1, 'y1');
      await ws.client.next((f) => f.type === 'message' && f.data === 'y1', 5000, 'y1');
      await server.kill();
      const notice = await ws.client.next((f) => f.type === 'gap', 10000, 'the disconnect notice');
      assert.equal(notice.reason, 'nats');
      assert.equal(notice.lost, null);
      assert.equal(notice.host, null);
      assert.match(String(notice.detail), /disconnected/);
      await server.start();
      await waitFor(
        'C reconnected',
        async () =>
          (
            (await (await fetch(`${c.base}/status`, { headers: { authorization: `Bearer ${MAIN_TOKEN}` } })).json()) as {
              fleet: { connected: boolean };
            }
          ).fleet.connected,
        { timeoutMs: 15000 },
      );
      await nc.close().catch(() => undefined);
      nc = await natsConnect({ servers: server.url });
      await sleep(300); // C's client subscribed again
      publish('Y', 2, 4, 'y4'); // 2 and 3 were published while the server was down
      const gap = await ws.client.next((f) => f.type === 'gap', 5000, 'the counted gap');
      assert.deepEqual({ ...gap, n: 0 }, { type: 'gap', n: 0, reason: 'sequence', host: 'Y', lost: 2, from: 2, to: 3 });
      await ws.client.next((f) => f.type === 'message' && f.data === 'y4', 5000, 'y4');
      assert.deepEqual(ws.client.specErrors, []);
    } finally {
      await ws.client.close();
    }
  });

  test('a client frame on a fleet stream is answered by an error frame (read-only), not lost silently', async () => {
    const s = await connect(c, `/fleet/groups/${bit(2)}`);
    try {
      s.client.send('hello?');
      const err = await s.client.next((f) => f.type === 'error', 3000, 'the error frame');
      assert.equal((err.problem as { code: string }).code, 'METHOD_NOT_ALLOWED');
    } finally {
      await s.client.close();
    }
  });
});

describe('fleet: a daemon without --nats', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(() => d.close());

  test('/fleet/groups/{mask} and …/events answer 404 FLEET_NOT_CONFIGURED (a problem saying so)', async () => {
    const r = await call(d, 'GET', '/fleet/groups/2/events');
    assert.equal(r.status, 404);
    const p = r.json as { code: string; detail: string };
    assert.equal(p.code, 'FLEET_NOT_CONFIGURED');
    assert.match(p.detail, /not configured.*--nats/);
    await assert.rejects(connect(d, '/fleet/groups/2'), (err: Error & { status?: number; body?: string }) => {
      assert.equal(err.status, 404);
      assert.equal((JSON.parse(err.body!) as { code: string }).code, 'FLEET_NOT_CONFIGURED');
      return true;
    });
  });
});

describe('fleet: a stream opened before the first connection to NATS', { skip: skipUnless('nats-server') }, () => {
  test('is told a gap (reason nats) after its hello, then gets what the hosts publish once connected', async () => {
    const server = new NatsServer();
    await server.start();
    await server.kill(); // its port, with nobody on it yet
    const f = await spawnDaemon(['--nats', server.url, '--host-id', 'F', '--nats-publish', '4,']);
    const ws = await connect(f, `/fleet/groups/${bit(4)}`);
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const gap = await ws.client.next((x) => x.type !== 'hello', 5000, 'the first frame after the hello');
      assert.equal(gap.type, 'gap');
      assert.equal(gap.reason, 'nats');
      assert.equal(gap.lost, null);
      assert.match(String(gap.detail), /not connected/);
      // Held for NATS while it is away, and published as F connects: before F's own
      // stream has subscribed, so it is among what that gap told of.
      sender.send(encodeMessage({ type: 16, seq: 1, payload: Buffer.from('held') }), { portId: 0, groups: bit(4) });
      await server.start();
      await waitFor('F connected', async () => (await fleetStatus(f)).connected, { timeoutMs: 15000 });
      await sleep(300); // its stream subscribed
      sender.send(encodeMessage({ type: 16, seq: 2, payload: Buffer.from('after') }), { portId: 0, groups: bit(4) });
      const m = await ws.client.next((x) => x.type === 'message' && x.data === 'after', 5000, 'the message after the connection');
      assert.equal(m.host, 'F');
      assert.deepEqual(ws.client.specErrors, []);
    } finally {
      sender.close();
      await ws.client.close();
      await f.stop();
      await server.stop();
    }
  });
});

// Issue 18, reliability of publishing: nats-server killed (SIGKILL) for 10 s
// under load (the figure; it was 2.5 s). The local WebSocket stream stays lossless; the publish
// loss is counted exactly (published + dropped == sent), the `n` header shows
// the gap to a NATS receiver, the events subject tells the drops, and the
// daemon reconnects by itself. Then: a message over the server's max_payload
// is dropped, counted and told, never a crash.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as natsConnect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, connect, sleep, type Frame } from './support/daemon_harness';
import { indexOf } from './support/flood_sender';
import { fleetMetrics, fleetStatus, runMessages } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

describe('fleet: nats-server killed under load', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let daemon: DaemonProc;
  let receiver: NatsConnection;
  const msgs: Msg[] = [];
  const events: Record<string, unknown>[] = [];

  before(async () => {
    await server.start();
    // The receiver comes back fast after the restart (the daemon's backoff is longer), so it is
    // subscribed again before the daemon sends what it held.
    receiver = await natsConnect({ servers: server.url, maxReconnectAttempts: -1, reconnectTimeWait: 50, reconnectJitter: 10 });
    receiver.subscribe('nlbridge.hostB.g.2', { callback: (_e, m) => void msgs.push(m) });
    receiver.subscribe('nlbridge.hostB.events', { callback: (_e, m) => void events.push(m.json<Record<string, unknown>>()) });
    await receiver.flush();
    daemon = await spawnDaemon(['--nats', server.url, '--host-id', 'hostB', '--nats-publish', '2', '--nats-buffer-bytes', '65536']);
    await waitFor('the daemon connected to NATS', async () => (await fleetStatus(daemon)).connected, { timeoutMs: 10000 });
  });

  after(async () => {
    await daemon?.stop();
    await receiver?.close();
    await server.stop();
  });

  test('local stream lossless, publish loss counted exactly and told, reconnect automatic', async (t) => {
    // Enough to keep the load on through the whole outage and past the restart.
    const N = 24000;
    const prefix = `outage${process.pid}`;
    const { client: ws } = await connect(daemon, '/groups/2');
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    const killAt = 1000;
    const downMs = 10000;
    const started = Date.now();
    let killed = false;
    let restarted = false;
    try {
      // ≈ 2,000 msg/s for ≈ 12 s; the server is down from 1 s to 11 s.
      for (let i = 0; i < N; i++) {
        sender.send(encodeMessage({ type: 16, flags: 1, seq: i + 1, pid: sender.portId, payload: Buffer.from(`${prefix}-${i}`) }), {
          portId: 0,
          groups: bit(2),
        });
        if (i % 20 === 19) {
          await sleep(10);
          const t = Date.now() - started;
          if (!killed && t >= killAt) {
            killed = true;
            await server.kill();
          }
          if (killed && !restarted && t >= killAt + downMs) {
            restarted = true;
            await server.start();
          }
        }
      }
      if (!killed) await server.kill();
      if (!restarted) {
        await sleep(Math.max(0, killAt + downMs - (Date.now() - started)));
        await server.start();
      }
    } finally {
      sender.close();
    }
    assert.ok(killed && restarted);

    // The local stream: every message once, no loss notice.
    await waitFor('every message on the WebSocket', () => ws.all.filter((f) => !Buffer.isBuffer(f) && f.type === 'message').length, {
      timeoutMs: 20000,
      until: (n) => n >= N,
    });
    const frames = ws.all.filter((f): f is Frame => !Buffer.isBuffer(f));
    const idx = frames.filter((f) => f.type === 'message').map((f) => indexOf(prefix, f.data));
    assert.equal(idx.length, N);
    assert.deepEqual(
      idx,
      Array.from({ length: N }, (_, i) => i),
      'in order, each once',
    );
    assert.deepEqual(
      frames.filter((f) => f.type === 'dropped' || f.type === 'overrun' || f.type === 'gap'),
      [],
    );
    await ws.close();

    // The publish side: reconnected by itself, nothing left, every message published or dropped.
    const st = await waitFor('the daemon reconnected and settled', () => fleetStatus(daemon), {
      timeoutMs: 30000,
      until: (s) => s.connected && s.heldMessages === 0 && s.published + s.dropped === N,
      show: (s) => JSON.stringify(s),
    });
    assert.ok(st.reconnects >= 1, `reconnects ${st.reconnects}`);
    assert.ok(st.dropped > 0, 'a 64 KiB buffer cannot hold 10 s at 2,000 msg/s');
    assert.ok(st.published > 0);
    assert.equal(st.droppedBy.buffer, st.dropped);
    assert.equal(st.published + st.dropped, N, 'published + dropped == sent');
    const metrics = await fleetMetrics(daemon);
    assert.equal(metricValue(metrics, 'nlbridge_nats_published_total'), st.published);
    assert.equal(metricValue(metrics, 'nlbridge_nats_dropped_total', '{reason="buffer"}'), st.dropped);
    assert.equal(metricValue(metrics, 'nlbridge_nats_connected'), 1);
    assert.ok(
      daemon.logs.some((l) => l.msg === 'NATS reconnected'),
      'the reconnect is logged',
    );
    assert.ok(
      daemon.logs.some((l) => String(l.msg).startsWith('NATS disconnected')),
      'the disconnect is logged',
    );

    // The receiver: n is the per-host sequence (n = i + 1 here), the gap shows the loss.
    await waitFor(
      'the drop notices on the events subject',
      () => events.filter((e) => e.type === 'dropped').reduce((a, e) => a + (e.count as number), 0),
      {
        timeoutMs: 10000,
        until: (c) => c === st.dropped,
      },
    );
    const seen = new Set<number>();
    // A NATS message holds one netlink message or a run of them, numbered n, n+1, … (daemon/README.md, "Runs").
    for (const m of msgs)
      for (const r of runMessages(m.data, m.headers)) {
        assert.equal(indexOf(prefix, r.text), r.n - 1, 'n numbers the messages of this host');
        seen.add(r.n);
      }
    assert.ok(seen.size <= st.published, `the receiver saw ${seen.size} distinct, the daemon published ${st.published}`);
    const missing = N - seen.size;
    t.diagnostic(
      `sent ${N}; websocket ${idx.length}; published ${st.published}, dropped ${st.dropped}, reconnects ${st.reconnects}; receiver ${seen.size} distinct of ${msgs.length}, n gap ${missing}`,
    );
    assert.ok(missing >= st.dropped, `the n gap (${missing}) covers the dropped (${st.dropped})`);
    // Every dropped n is inside a notice's from..to, and never reached the receiver.
    for (const e of events.filter((x) => x.type === 'dropped')) {
      assert.ok((e.from as number) <= (e.to as number));
      assert.equal(seen.has(e.from as number), false, `n ${String(e.from)} was dropped, not received`);
    }
    assert.ok(daemon.alive());
  });
});

describe('fleet: a message over max_payload', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let daemon: DaemonProc;
  let receiver: NatsConnection;
  const msgs: Msg[] = [];
  const events: Record<string, unknown>[] = [];

  before(async () => {
    await server.start('max_payload: 512');
    receiver = await natsConnect({ servers: server.url });
    // Groups and events (not the daemon's claim on hostC, daemon/fleet/host_claim.ts).
    receiver.subscribe('nlbridge.hostC.g.>', { callback: (_e, m) => void msgs.push(m) });
    receiver.subscribe('nlbridge.hostC.events', { callback: (_e, m) => void events.push(m.json<Record<string, unknown>>()) });
    await receiver.flush();
    daemon = await spawnDaemon(['--nats', server.url, '--host-id', 'hostC', '--nats-publish', '0b100']);
    await waitFor('the daemon connected to NATS', async () => (await fleetStatus(daemon)).connected, { timeoutMs: 10000 });
  });

  after(async () => {
    await daemon?.stop();
    await receiver?.close();
    await server.stop();
  });

  test('is dropped, counted and told; the next one is published with n showing the gap', async () => {
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      sender.send(encodeMessage({ type: 16, flags: 0, seq: 1, pid: 0, payload: Buffer.alloc(2000, 0x61) }), { portId: 0, groups: bit(3) });
      sender.send(encodeMessage({ type: 16, flags: 0, seq: 2, pid: 0, payload: Buffer.from('small') }), { portId: 0, groups: bit(3) });
    } finally {
      sender.close();
    }
    const m = (await waitFor('the small message', () => msgs[0], { timeoutMs: 5000 }))!;
    assert.equal(m.subject, 'nlbridge.hostC.g.3');
    assert.equal(m.headers!.get('n'), '2', 'n = 1 was the big one');
    const e = (await waitFor('the drop notice', () => events.find((x) => x.type === 'dropped'), { timeoutMs: 5000 }))!;
    // Its run: the epoch of its cursors, as its messages carry it in header c.
    const run = m.headers!.get('c').split('-')[0];
    assert.match(run, /^[0-9a-f]{8}$/);
    assert.deepEqual(e, { type: 'dropped', host: 'hostC', run, count: 1, from: 1, to: 1, reasons: { 'max-payload': 1 } });
    const st = await waitFor('settled', () => fleetStatus(daemon), {
      timeoutMs: 5000,
      until: (s) => s.heldMessages === 0 && s.published === 1,
    });
    assert.equal(st.dropped, 1);
    assert.equal(st.droppedBy['max-payload'], 1);
    assert.equal(metricValue(await fleetMetrics(daemon), 'nlbridge_nats_dropped_total', '{reason="max-payload"}'), 1);
    assert.equal(msgs.length, 1);
    assert.ok(daemon.alive() && st.connected);
  });
});

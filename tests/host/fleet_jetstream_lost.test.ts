// The JetStream stream lost under a running daemon (--nats-jetstream on), as
// an outside audit found it: deleted while /fleet clients read it (they got
// one gap and then nothing, though host A kept publishing), deleted with no
// client reading (/status and the metric said "ready" and the daemon never
// created it again, so nothing was kept), and a cursor inside a run past the
// stream's end (since=S.i with S the next sequence: message S was dropped
// without a frame). Against the real nats-server 2.9 with `jetstream {
// store_dir }`; host A is a spawned daemon publishing group 2 and serving
// /fleet from the stream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import type { DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, connect, sleep } from './support/daemon_harness';
import { fleetMetrics, fleetStatus, fleetStreamId, spawnJetStreamHost, streamReady } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

const STREAM = 'NLBLOST';
/** The daemon's periodic check of the stream (daemon/fleet/stream_keeper.ts), with room for a loaded host. */
const CHECK_WAIT_MS = 10_000 + 8_000;

describe('fleet: the JetStream stream lost under a running daemon', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let a: DaemonProc;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let sender: NetlinkSocket;
  let k = 0;
  const send = (text: string): void => {
    sender.send(encodeMessage({ type: 16, seq: ++k, payload: Buffer.from(text) }), { portId: 0, groups: bit(2) });
  };
  const exists = (name: string): Promise<boolean> =>
    jsm.streams.info(name).then(
      () => true,
      () => false,
    );
  const metric = async (): Promise<number | undefined> => metricValue(await fleetMetrics(a), 'nlbridge_nats_jetstream_ready');

  before(async () => {
    await server.start(`jetstream { store_dir: "${path.join(server.dir, 'js')}" }`);
    nc = await natsConnect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    a = await spawnJetStreamHost(server.url, STREAM);
    await streamReady(a, 'A');
    sender = NetlinkSocket.open({ protocol: USERSOCK });
  });

  after(async () => {
    sender?.close();
    await a?.stop();
    await nc?.close();
    await server.stop();
  });

  test('deleted under a live and a resumed /fleet client: each is told (a nats gap) and goes on live; the daemon creates the stream again within 2 s', async () => {
    const live = (await connect(a, `/fleet/groups/${bit(2)}`)).client;
    const resumed = (await connect(a, `/fleet/groups/${bit(2)}?since=0`)).client;
    try {
      await sleep(300);
      send('before');
      for (const c of [live, resumed]) await c.next((f) => f.type === 'message' && f.data === 'before', 5000, 'the message before');

      await jsm.streams.delete(STREAM);
      for (const c of [live, resumed]) {
        // Told by its consumer, or (a consumer that missed it) by the daemon's next check of the stream.
        const gap = await c.next((f) => f.type === 'gap', CHECK_WAIT_MS, 'the gap telling the stream went');
        assert.equal(gap.reason, 'nats');
        assert.equal(gap.lost, null);
        assert.match(String(gap.detail), /JetStream .*: live from NATS instead, without cursors/);
        assert.doesNotMatch(String(gap.detail), /_/, 'words, not a status type');
      }
      // Host A goes on publishing: both clients go on receiving.
      await sleep(300);
      for (const text of ['after-1', 'after-2']) {
        send(text);
        for (const c of [live, resumed]) {
          const m = await c.next((f) => f.type === 'message', 5000, text);
          assert.equal(m.data, text);
          assert.equal(m.cursor, undefined, 'from core subscriptions: no cursor');
        }
      }
      assert.deepEqual([...live.specErrors, ...resumed.specErrors], []);

      // A reader saw the stream go: it is created again 2 s later, without waiting for the periodic check.
      await waitFor('the stream created again', () => exists(STREAM), {
        timeoutMs: CHECK_WAIT_MS,
      });
      const st = await waitFor('A ready again', () => fleetStatus(a), {
        timeoutMs: 5000,
        until: (s) => s.jetstream?.state === 'ready',
      });
      assert.equal(st.jetstream!.error, null);
      assert.ok(
        a.logs.some((l) => /created again/.test(String(l.msg)) && l.level === 40),
        'a warning says the stream was created again',
      );
      // What A publishes now is kept, and a new client reads it with cursors.
      const fresh = (await connect(a, `/fleet/groups/${bit(2)}?since=0`)).client;
      try {
        send('kept');
        const m = await fresh.next((f) => f.type === 'message' && f.data === 'kept', 5000, 'the kept message');
        assert.match(String(m.cursor), /^[0-9a-f]{8}-[0-9]+$/);
      } finally {
        await fresh.close();
      }
    } finally {
      await live.close();
      await resumed.close();
    }
  });

  test('since=S.i with S past the stream\'s end: a gap "past the end", then message S (not dropped without a frame)', async () => {
    send('settle');
    await sleep(500);
    const info = await jsm.streams.info(STREAM);
    const last = info.state.last_seq;
    // A bare cursor (of earlier versions, naming no stream): checked by its place only.
    const c = (await connect(a, `/fleet/groups/${bit(2)}?since=${last + 1}.1`)).client;
    try {
      const gap = await c.next((f) => f.type === 'gap', 5000, 'the gap');
      assert.equal(gap.reason, 'stream');
      assert.equal(gap.lost, null);
      assert.equal(gap.resumeFrom, last + 1);
      await sleep(300);
      send('next');
      const m = await c.next((f) => f.type === 'message', 5000, 'message S');
      assert.deepEqual([m.data, m.cursor], ['next', `${fleetStreamId(STREAM, info.created)}-${last + 1}`]);
      assert.deepEqual(c.specErrors, []);
    } finally {
      await c.close();
    }
  });

  test('deleted with no client reading: noticed by the periodic check; while it cannot be created (another stream holds its subject) /status and the metric say so; then created again', async () => {
    assert.equal(await metric(), 1);
    await jsm.streams.delete(STREAM);
    // Another stream takes the subject: creating NLBLOST is refused (subjects overlap).
    await jsm.streams.add({ name: 'THIEF', subjects: ['nlbridge.*.g.*'] });
    const st = await waitFor('A tells the stream is gone', () => fleetStatus(a), {
      timeoutMs: CHECK_WAIT_MS,
      until: (s) => s.jetstream?.state === 'error',
      show: (s) => JSON.stringify(s.jetstream),
    });
    assert.match(String(st.jetstream!.error), /THIEF/, 'names the stream that holds the subject');
    assert.equal(await metric(), 0);

    await jsm.streams.delete('THIEF');
    await waitFor('A ready again', () => fleetStatus(a), {
      timeoutMs: CHECK_WAIT_MS,
      until: (s) => s.jetstream?.state === 'ready',
    });
    assert.ok(await exists(STREAM));
    assert.equal(await metric(), 1);
    const before = (await jsm.streams.info(STREAM)).state.last_seq;
    send('stored-again');
    await waitFor('the message kept', async () => (await jsm.streams.info(STREAM)).state.last_seq, {
      timeoutMs: 5000,
      until: (s) => s > before,
    });
  });
});

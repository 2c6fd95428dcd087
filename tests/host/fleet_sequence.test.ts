// Issue 18, a host's sequence as a /fleet stream counts it, from outside:
// - a client resuming from the JetStream stream while the host drops a
//   message live: the drop notice comes on the events subject (live) while
//   the stream is read from far behind; every stored message is still
//   delivered, and the drop is told once;
// - a new run of a host (its daemon restarted) whose first messages never
//   reached this daemon is told as a `sequence` gap from 1, and two daemons
//   publishing as one host for a moment are counted each on its own;
// - a drop notice names its run: a new run's drop is told once, not again as
//   a jump.
// Against the real nats-server (Debian's 2.9). The first part uses a spawned
// daemon A publishing group 2; the second publishes as host Z from a plain
// NATS client, as the contract in daemon/README.md ("Subjects") says a
// daemon does, so the watching daemon is tested as any publisher would meet it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { connect as natsConnect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { checkFleetSettings, startFleet } from '../../daemon/fleet/index';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import type { DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, connect, sleep, startDaemon, type Daemon, type Frame } from './support/daemon_harness';
import { fleetStatus, spawnJetStreamHost, streamReady } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

const STREAM = 'NLBSEQ';
/** Messages stored before the client comes: enough that reading them back takes the watching daemon well over the drop's round trip. */
const BACKLOG = 100_000;

const isFrame = (f: Frame | Buffer): f is Frame => !Buffer.isBuffer(f);

describe('fleet: a host sequence read back from the stream while the host drops live', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let a: DaemonProc;
  let c: Daemon;
  let sender: NetlinkSocket;

  before(async () => {
    // A small max_payload: a message above it is dropped by A's publisher and told on nlbridge.A.events.
    await server.start(`max_payload: 8192\njetstream { store_dir: "${path.join(server.dir, 'js')}" }`);
    a = await spawnJetStreamHost(server.url, STREAM);
    c = await startDaemon({
      // The default backlog (1 MiB, a tenth of the replay's frames): the reading is paced by the client.
      // A short stall bound for the client that never reads.
      config: { nats: [server.url], hostId: 'C', natsJetstream: 'on', natsStream: STREAM, wsStallMs: 1500 },
      fleet: (bus, config, logger) => startFleet(config, checkFleetSettings(config), bus, logger),
    });
    await streamReady(a, 'A');
    await streamReady(c, 'C');
    sender = NetlinkSocket.open({ protocol: USERSOCK });
  });

  after(async () => {
    sender?.close();
    await a?.stop();
    await c?.close();
    await server.stop();
  });

  test('every stored message is delivered, and the drop told once, though its notice comes while the stream is read far behind', async () => {
    // Paced under A's receive rate: an overrun would be loss of its own.
    for (let i = 1; i <= BACKLOG; i++) {
      sender.send(encodeMessage({ type: 16, seq: i, payload: Buffer.from(`m-${i}`) }), { portId: 0, groups: bit(2) });
      if (i % 500 === 0) await sleep(5);
    }
    await waitFor('A published the backlog', () => fleetStatus(a), { timeoutMs: 30000, until: (s) => s.published >= BACKLOG });
    const before_ = await fleetStatus(a);
    assert.equal(before_.dropped, 0, 'nothing dropped while the backlog was stored');

    const { client } = await connect(c, `/fleet/groups/${bit(2)}?hosts=A&since=0`);
    await waitFor('the first stored message', () => client.all.some((f) => isFrame(f) && f.type === 'message'), { timeoutMs: 10000 });
    // Now, while C reads the backlog back: one message over max_payload (dropped by A, n = BACKLOG + 1), then one more.
    sender.send(encodeMessage({ type: 16, seq: 1, payload: Buffer.alloc(9000, 0x62) }), { portId: 0, groups: bit(2) });
    sender.send(encodeMessage({ type: 16, seq: 2, payload: Buffer.from('after') }), { portId: 0, groups: bit(2) });

    const done = await waitFor(
      'the message after the drop',
      () => client.all.some((f) => isFrame(f) && f.type === 'message' && f.data === 'after'),
      { timeoutMs: 60000 },
    ).catch(() => false);
    await sleep(300);
    await client.close();
    const frames = client.all.filter(isFrame);
    const texts = frames.filter((f) => f.type === 'message').map((f) => String(f.data));
    const gaps = frames.filter((f) => f.type === 'gap');
    const droppedByBacklog = frames.filter((f) => f.type === 'dropped').reduce((s, f) => s + Number(f.count), 0);
    assert.ok(done, `"after" arrived (${texts.length} messages, gaps ${JSON.stringify(gaps)})`);
    assert.equal(droppedByBacklog, 0, 'paced by the client: no frame dropped for its backlog');
    const expected = [...Array.from({ length: BACKLOG }, (_, i) => `m-${i + 1}`), 'after'];
    // Told compactly when it fails: how many, and the first difference.
    const firstDiff = expected.findIndex((t, i) => texts[i] !== t);
    assert.equal(texts.length, expected.length, `every stored message once (first difference at ${firstDiff}: ${texts[firstDiff]})`);
    assert.equal(firstDiff, -1, 'in order');
    assert.deepEqual(
      gaps.map((g) => ({ reason: g.reason, host: g.host, lost: g.lost, from: g.from, to: g.to })),
      [{ reason: 'publisher', host: 'A', lost: 1, from: BACKLOG + 1, to: BACKLOG + 1 }],
      'the drop told once, as the publisher said it',
    );
    assert.deepEqual(client.specErrors, []);
  });

  test('a resuming client that stops reading is closed as stalled after --ws-stall-ms, and leaves no consumer on the server', async () => {
    const consumers = async (): Promise<number> => {
      const nc = await natsConnect({ servers: server.url });
      try {
        return (await (await jetstreamManager(nc)).streams.info(STREAM)).state.consumer_count;
      } finally {
        await nc.close();
      }
    };
    const { client } = await connect(c, `/fleet/groups/${bit(2)}?hosts=A&since=0`);
    await waitFor('the first stored message', () => client.all.some((f) => isFrame(f) && f.type === 'message'), { timeoutMs: 10000 });
    const socket = (client.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    await waitFor('closed as a slow client', () => c.metrics.wsClosedSlow.total(), { timeoutMs: 20000, until: (n) => n === 1 });
    socket.resume();
    const code = await client.closed;
    assert.ok(code === 1013 || code === 1006, `close code ${code}`);
    await waitFor('its consumer deleted', consumers, { timeoutMs: 5000, until: (n) => n === 0 });
    assert.equal(c.app.nlbridge.streams.size, 0);
  });
});

describe("fleet: a host's runs, as a live /fleet stream counts them", { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let c: Daemon;
  let nc: NatsConnection;

  before(async () => {
    await server.start();
    c = await startDaemon({
      config: { nats: [server.url], hostId: 'C' },
      fleet: (bus, config, logger) => startFleet(config, checkFleetSettings(config), bus, logger),
    });
    await waitFor('C connected', () => fleetStatus(c), { timeoutMs: 10000, until: (s) => s.connected });
    nc = await natsConnect({ servers: server.url });
  });

  after(async () => {
    await nc?.close();
    await c?.close();
    await server.stop();
  });

  /** Host Z's message number n of run `run` on group 2, as a daemon publishes it (header c: "<run>-<cursor seq>"). */
  const publish = (run: string, n: number): void => {
    const h = natsHeaders();
    h.set('n', String(n));
    h.set('c', `${run}-${n}`);
    h.set('g', '2');
    h.set('p', '0');
    nc.publish('nlbridge.Z.g.2', encodeMessage({ type: 16, payload: Buffer.from(`${run}:${n}`) }), { headers: h });
  };
  const notice = (e: Record<string, unknown>): void =>
    nc.publish('nlbridge.Z.events', JSON.stringify({ type: 'dropped', host: 'Z', ...e }));

  test('a new run whose first messages were lost is a sequence gap from 1; two daemons as one host are counted apart; a new run’s drop notice is told once', async () => {
    const { client } = await connect(c, `/fleet/groups/${bit(2)}?hosts=Z`);
    await nc.flush();
    await sleep(200); // the stream's subscriptions are up once its hello is sent; a margin for the server's interest
    publish('aaaa0001', 1);
    publish('aaaa0001', 2);
    publish('bbbb0002', 4); // a restart: 1..3 of the new run never came
    publish('aaaa0001', 3); // the first daemon again (two daemons as Z for a moment): its own count goes on
    publish('bbbb0002', 5);
    publish('aaaa0001', 6); // 4..5 of the first daemon lost
    notice({ run: 'cccc0003', count: 2, from: 1, to: 2, reasons: { buffer: 2 } }); // a third run: its first two dropped and told
    publish('cccc0003', 3);
    publish('cccc0003', 4);
    await nc.flush();
    await waitFor('the last message', () => client.all.some((f) => isFrame(f) && f.data === 'cccc0003:4'), { timeoutMs: 5000 });
    await sleep(200);
    await client.close();
    const shape = client.all
      .filter(isFrame)
      .filter((f) => f.type === 'message' || f.type === 'gap')
      .map((f) => (f.type === 'message' ? String(f.data) : `gap ${String(f.reason)} ${String(f.lost)} ${String(f.from)}..${String(f.to)}`));
    assert.deepEqual(shape, [
      'aaaa0001:1',
      'aaaa0001:2',
      'gap sequence 3 1..3',
      'bbbb0002:4',
      'aaaa0001:3',
      'bbbb0002:5',
      'gap sequence 2 4..5',
      'aaaa0001:6',
      'gap publisher 2 1..2',
      'cccc0003:3',
      'cccc0003:4',
    ]);
    assert.deepEqual(client.specErrors, []);
  });
});

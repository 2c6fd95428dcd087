// A JetStream stream (of any name) whose subjects capture nlbridge.<host>.send
// (--nats-jetstream on, --nats-send on). Such a stream answers every send
// request with its PubAck and keeps it; an outside audit found the daemon
// still carried the send out, so the requester held the stream's answer (a
// 503 from a full stream: a retry sent twice) for a send that was done. The
// daemon now names the stream (log, /status fleet.jetstream.sendError) and
// carries out no NATS send while it captures the subject; once it is gone,
// sends are answered again. Against the real nats-server 2.9.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NetlinkSocket } from '../../addon/socket';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, sleep } from './support/daemon_harness';
import { fleetMetrics, fleetStatus } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

/** The daemon's periodic check of the stream (daemon/fleet/stream_keeper.ts), with room for a loaded host. */
const CHECK_WAIT_MS = 10_000 + 8_000;

describe('fleet: a stream capturing the send subject', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let a: DaemonProc;
  let reader: NetlinkSocket;
  const got: string[] = [];
  const texts = (): string[] => [...got];

  const request = async (data: string): Promise<{ status: string | null; body: Record<string, unknown> }> => {
    const m = await nc.request('nlbridge.A.send', JSON.stringify({ groups: bit(5), data }), { timeout: 5000 });
    return { status: m.headers?.get('status') || null, body: m.json<Record<string, unknown>>() };
  };

  before(async () => {
    await server.start(`jetstream { store_dir: "${path.join(server.dir, 'js')}" }`);
    nc = await natsConnect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'SENDS', subjects: ['nlbridge.*.send'] });
    reader = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(5) });
    reader.on('datagrams', (batch: { data: Buffer }[]) => {
      for (const d of batch) got.push(d.data.subarray(16).toString().replace(/\0+$/, ''));
    });
    const conf = path.join(server.dir, 'nlbridge.json');
    fs.writeFileSync(conf, JSON.stringify({ natsSendScope: { sendGroups: [5], kernel: false } }), { mode: 0o600 });
    a = await spawnDaemon([
      '--config',
      conf,
      '--nats',
      server.url,
      '--host-id',
      'A',
      '--nats-send',
      'on',
      '--nats-jetstream',
      'on',
      '--nats-stream',
      'NLBSEND',
    ]);
  });

  after(async () => {
    reader?.close();
    await a?.stop();
    await nc?.close();
    await server.stop();
  });

  test('named as an error in /status and the log; a send request gets only the PubAck and is not carried out; once the stream goes, sends are answered again', async () => {
    const st = await waitFor('the stream checked', () => fleetStatus(a), {
      timeoutMs: 10000,
      until: (s) => s.jetstream !== null && s.jetstream.state !== 'pending',
    });
    assert.equal(st.jetstream!.state, 'ready', 'its own stream is fine');
    const sendError = (st.jetstream as unknown as { sendError: string | null }).sendError;
    assert.match(String(sendError), /stream SENDS captures nlbridge\.A\.send/);
    assert.ok(
      a.logs.some((l) => l.level === 50 && /stream SENDS captures nlbridge\.A\.send/.test(String(l.msg))),
      'logged as an error',
    );

    const r = await request('captured');
    assert.equal(r.status, null, "the stream's PubAck, not the daemon's answer");
    assert.equal(r.body.stream, 'SENDS');
    await sleep(1000);
    assert.deepEqual(texts(), [], 'the send was not carried out');
    const metrics = await fleetMetrics(a);
    assert.equal(metricValue(metrics, 'nlbridge_nats_send_requests_total', '{status="503"}'), 1);

    await jsm.streams.delete('SENDS');
    await waitFor('sends answered again', () => fleetStatus(a), {
      timeoutMs: CHECK_WAIT_MS,
      until: (s) => (s.jetstream as unknown as { sendError: string | null }).sendError === null,
    });
    const ok = await request('answered');
    assert.equal(ok.status, '200');
    await waitFor('the send carried out', texts, { timeoutMs: 5000, until: (g) => g.includes('answered') });
    assert.deepEqual(texts(), ['answered']);
  });
});

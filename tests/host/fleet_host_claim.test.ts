// Issue 18, a second instance: two daemons started with the same --host-id
// (two machines left with the same hostname, the default; a second daemon
// on one machine). An outside check found both answering every request on
// nlbridge.<host>.send, so one request was sent to netlink twice, and both
// publishing as the same host. Now the older holds the host id and the newer
// stands aside (daemon/fleet/host_claim.ts): one answer, one netlink send, one
// publisher; both say so in /status, /metrics and the log; and when the older
// stops, the newer takes over and tells what it did not publish meanwhile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as natsConnect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, sleep } from './support/daemon_harness';
import { NatsServer } from './support/nats_server';
import { fleetMetrics, fleetStatus } from './support/fleet_hosts';
import { CLAIM_RECHECK_MS } from '../../daemon/fleet/host_claim';

/** Datagrams a raw netlink reader of `group` gets while `act` runs and for 300 ms after. */
async function netlinkCount(group: number, act: () => Promise<void>): Promise<number> {
  const reader = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(group) });
  let n = 0;
  reader.on('datagrams', (batch: unknown[]) => void (n += batch.length));
  try {
    await act();
    await sleep(300);
    return n;
  } finally {
    reader.close();
  }
}

/** One message on `group` from a raw sender, as the kernel's or another program's would come. */
function sendOnGroup(group: number, text: string): void {
  const s = NetlinkSocket.open({ protocol: USERSOCK });
  try {
    s.send(encodeMessage({ type: 16, seq: 1, payload: Buffer.from(text) }), { portId: 0, groups: bit(group) });
  } finally {
    s.close();
  }
}

describe('fleet: two daemons with one --host-id', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let older: DaemonProc;
  let newer: DaemonProc;
  let nc: NatsConnection;
  const published: Msg[] = [];
  const events: Record<string, unknown>[] = [];

  before(async () => {
    await server.start();
    nc = await natsConnect({ servers: server.url });
    nc.subscribe('nlbridge.H.g.2', { callback: (_err, m) => void published.push(m) });
    nc.subscribe('nlbridge.H.events', { callback: (_err, m) => void events.push(m.json<Record<string, unknown>>()) });
    await nc.flush();
    const conf = path.join(server.dir, 'nlbridge.json');
    fs.writeFileSync(conf, JSON.stringify({ natsSendScope: { sendGroups: '*', sendPorts: '*', kernel: false } }));
    const args = ['--config', conf, '--nats', server.url, '--host-id', 'H', '--nats-send', 'on', '--nats-publish', '2'];
    older = await spawnDaemon(args);
    await waitFor('the first daemon holds H', async () => (await fleetStatus(older, { spec: true })).hostClaim.state === 'holding', {
      timeoutMs: 10000,
    });
    newer = await spawnDaemon(args);
    await waitFor(
      'the second daemon stands aside',
      async () => (await fleetStatus(newer, { spec: true })).hostClaim.state === 'standing-aside',
      {
        timeoutMs: 10000,
      },
    );
  });

  after(async () => {
    await older?.stop();
    await newer?.stop();
    await nc?.close();
    await server.stop();
  });

  test('both say who else claims H: /status, /metrics and an error in the log', async () => {
    const o = await fleetStatus(older, { spec: true });
    const n = await fleetStatus(newer, { spec: true });
    assert.equal(o.hostClaim.state, 'holding');
    assert.equal(o.hostClaim.other?.pid, newer.pid, 'the holder names the one standing aside');
    assert.equal(n.hostClaim.other?.pid, older.pid, 'the one standing aside names the holder');
    for (const d of [older, newer]) assert.equal(metricValue(await fleetMetrics(d), 'nlbridge_nats_host_id_conflict'), 1);
    assert.ok(
      newer.logs.some((l) => l.level === 50 && /started earlier, uses this --host-id: this one stands aside/.test(String(l.msg))),
      'the newer logs an error',
    );
    assert.ok(
      older.logs.some((l) => l.level === 50 && /started later, uses this --host-id/.test(String(l.msg))),
      'the older logs an error',
    );
  });

  test('a request on nlbridge.H.send is answered once and sent to netlink once (it was sent twice)', async () => {
    const seen = await netlinkCount(5, async () => {
      const m = await nc.request('nlbridge.H.send', JSON.stringify({ groups: [5], data: 'once', type: 16 }), { timeout: 5000 });
      assert.equal(m.headers?.get('status'), '200');
    });
    assert.equal(seen, 1);
  });

  test('a message on group 2 is published once, by the holder; the other counts it dropped as host-id', async () => {
    const before = published.length;
    sendOnGroup(2, 'first');
    await waitFor('published', () => published.length > before, { timeoutMs: 5000 });
    await sleep(500);
    assert.equal(published.length - before, 1, 'one copy on the bus');
    assert.equal((await fleetStatus(newer, { spec: true })).droppedBy['host-id'], 1);
    assert.equal(metricValue(await fleetMetrics(newer), 'nlbridge_nats_dropped_total', '{reason="host-id"}'), 1);
    assert.equal((await fleetStatus(older, { spec: true })).published, 1);
  });

  test('the holder stops: the other takes H over, answers sends, and first tells what it did not publish', async () => {
    assert.equal(await older.stop(), 0);
    await waitFor('the second daemon holds H', async () => (await fleetStatus(newer, { spec: true })).hostClaim.state === 'holding', {
      timeoutMs: CLAIM_RECHECK_MS + 5000,
    });
    const seen = await netlinkCount(5, async () => {
      const m = await nc.request('nlbridge.H.send', JSON.stringify({ groups: [5], data: 'taken-over', type: 16 }), { timeout: 5000 });
      assert.equal(m.headers?.get('status'), '200');
    });
    assert.equal(seen, 1);
    const before = published.length;
    sendOnGroup(2, 'second');
    await waitFor('published by the new holder', () => published.length > before, { timeoutMs: 5000 });
    assert.equal(published.at(-1)!.headers?.get('n'), '2', 'its number follows the one it dropped');
    await waitFor('its drop notice', () => events.some((e) => e.type === 'dropped'), { timeoutMs: 5000 });
    assert.deepEqual(
      events.filter((e) => e.type === 'dropped'),
      // Its run: the epoch of its cursors (header c), as its messages carry it.
      [
        {
          type: 'dropped',
          host: 'H',
          run: published.at(-1)!.headers!.get('c').split('-')[0],
          count: 1,
          from: 1,
          to: 1,
          reasons: { 'host-id': 1 },
        },
      ],
    );
    assert.ok(newer.logs.some((l) => /no older daemon claims this --host-id any more/.test(String(l.msg))));
  });
});

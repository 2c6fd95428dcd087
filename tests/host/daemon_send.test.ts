// POST /send over real HTTP to real netlink peers (rr_nlk) on NETLINK_USERSOCK.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NetlinkSocket } from '../../addon/socket';
import { decodeDatagram } from '../../addon/codec';
import type { Datagram } from '../../addon/types';
import { RrNlk, TAG, USERSOCK, bit, buildTools, call, startDaemon, type Daemon } from './support/daemon_harness';
import { waitFor } from '../support/wait';

// Groups of this file (USERSOCK groups are host-global; tests run serially).
const G1 = 11;
const G2 = 12;
const G3 = 14;

/** Waits until every reader printed `marker`. */
async function printed(marker: string, ...readers: RrNlk[]): Promise<void> {
  await waitFor(`${marker} printed by ${readers.length} rr_nlk reader(s)`, () => readers.map((rr) => rr.with(marker).length), {
    timeoutMs: 5000,
    until: (counts) => counts.every((n) => n >= 1),
  });
}

describe('POST /send', () => {
  /**
   * POSTs an end marker to `groups` and waits until every reader printed it:
   * the bridge sends from one tx socket, netlink keeps its datagrams in
   * order, and rr_nlk prints as it reads, so a copy of anything sent before
   * (one that must not be printed) would have been printed before it.
   */
  async function endMarker(groups: number[], ...readers: RrNlk[]): Promise<void> {
    const marker = `${TAG}-end-${groups.join('-')}-${Date.now()}`;
    assert.equal((await call(d, 'POST', '/send', { body: { groups, data: marker } })).status, 200);
    await printed(marker, ...readers);
  }

  let d: Daemon;
  before(async () => {
    buildTools();
    d = await startDaemon();
  });
  after(() => d.close());

  test('a mask reaches rr_nlk on each group once, and a reader of both groups once', async () => {
    const only1 = new RrNlk(['-g', String(bit(G1))]);
    const only2 = new RrNlk(['-g', String(bit(G2))]);
    const both = new RrNlk(['-g', String(bit(G1) | bit(G2))]);
    const notIn = new RrNlk(['-g', String(bit(G3))]);
    try {
      await Promise.all([only1.portId, only2.portId, both.portId, notIn.portId]);
      const marker = `${TAG}-mask`;
      const mask = `0b${(bit(G1) | bit(G2)).toString(2)}`;
      const r = await call(d, 'POST', '/send', { body: { groups: mask, data: marker } });
      assert.equal(r.status, 200);
      const report = r.json as { seq: number; portId: number; ok: boolean; results: { to: string; group?: number; result: string }[] };
      assert.equal(report.ok, true);
      assert.deepEqual(report.results, [
        { to: 'group', group: G1, result: 'delivered' },
        { to: 'group', group: G2, result: 'delivered' },
        { to: 'kernel', result: 'no-kernel-endpoint' },
      ]);
      await printed(marker, only1, only2, both);
      await endMarker([G1, G2, G3], only1, only2, both, notIn);
      for (const [rr, group] of [
        [only1, G1],
        [only2, G2],
      ] as const) {
        const got = rr.with(marker);
        assert.equal(got.length, 1, `reader of group ${group} got ${got.length}`);
        assert.equal(got[0].group, group);
        assert.equal(got[0].seq, report.seq);
        assert.equal(got[0].port, d.bus.tx.portId, 'the sender is the bridge tx socket');
        assert.equal(got[0].type, 'DATA');
      }
      assert.equal(both.with(marker).length, 1, 'a reader of both groups prints one copy');
      assert.equal(notIn.with(marker).length, 0);
    } finally {
      for (const rr of [only1, only2, both, notIn]) rr.kill();
    }
  });

  test('groups as a list, a number, a hex string; base64 and hex payloads', async () => {
    const rr = new RrNlk(['-g', String(bit(G1) | bit(G3))]);
    try {
      await rr.portId;
      const m1 = `${TAG}-list`;
      const m2 = `${TAG}-num`;
      const m3 = `${TAG}-hex`;
      assert.equal(
        (await call(d, 'POST', '/send', { body: { groups: [G1, G3], data: Buffer.from(m1).toString('base64'), encoding: 'base64' } }))
          .status,
        200,
      );
      assert.equal((await call(d, 'POST', '/send', { body: { groups: bit(G3), data: m2 } })).status, 200);
      assert.equal(
        (
          await call(d, 'POST', '/send', {
            body: { groups: `0x${bit(G1).toString(16)}`, data: Buffer.from(m3).toString('hex'), encoding: 'hex' },
          })
        ).status,
        200,
      );
      await printed(m1, rr);
      await printed(m2, rr);
      await printed(m3, rr);
      await endMarker([G1, G3], rr);
      assert.equal(rr.with(m1).length, 1);
      assert.equal(rr.with(m2).length, 1);
      assert.equal(rr.with(m2)[0].group, G3);
      assert.equal(rr.with(m3).length, 1);
      assert.equal(rr.with(m3)[0].group, G1);
    } finally {
      rr.kill();
    }
  });

  test('type and flags go out as given', async () => {
    const rr = new RrNlk(['-g', String(bit(G2))]);
    try {
      await rr.portId;
      const marker = `${TAG}-type`;
      const r = await call(d, 'POST', '/send', { body: { groups: [G2], data: marker, type: 0x99, flags: 0 } });
      assert.equal(r.status, 200);
      await printed(marker, rr);
      const [line] = rr.with(marker);
      assert.equal(line.type, '0x99');
      assert.equal(line.flags, 0);
    } finally {
      rr.kill();
    }
  });

  test('unicast to a port id reaches that socket only; an unbound port is reported', async () => {
    const peer = NetlinkSocket.open({ protocol: USERSOCK });
    const got: Datagram[] = [];
    peer.on('datagrams', (b) => got.push(...b));
    try {
      const marker = `${TAG}-uni`;
      const r = await call(d, 'POST', '/send', { body: { pid: peer.portId, data: marker } });
      assert.equal(r.status, 200);
      assert.deepEqual((r.json as { results: unknown[] }).results, [{ to: 'port', portId: peer.portId, result: 'delivered' }]);
      // A second unicast as the end marker: a stray copy of the first would come before it.
      const end = `${TAG}-uni-end`;
      assert.equal((await call(d, 'POST', '/send', { body: { pid: peer.portId, data: end } })).status, 200);
      const payloads = (): string[] => got.map((dg) => decodeDatagram(dg.data).messages[0].payload.toString());
      await waitFor(`the end marker at the peer`, payloads, { timeoutMs: 5000, until: (p) => p.includes(end) });
      assert.deepEqual(payloads(), [marker, end], 'one datagram, then the end marker');
      assert.equal(got[0].portId, d.bus.tx.portId);
      assert.equal(got[0].group, 0);
      assert.equal(decodeDatagram(got[0].data).messages[0].payload.toString(), marker);
    } finally {
      peer.close();
    }
    // A port nobody holds (the closed socket's).
    const r2 = await call(d, 'POST', '/send', { body: { pid: peer.portId, data: 'x' } });
    assert.equal(r2.status, 404);
    const p = r2.json as { code: string; errno: string; field: string };
    assert.equal(p.code, 'PORT_UNREACHABLE');
    assert.equal(p.errno, 'ECONNREFUSED');
    assert.equal(p.field, 'pid');
  });

  test('a peer that does not read: EAGAIN answered at once with 503, never blocking', async () => {
    const peer = NetlinkSocket.open({ protocol: USERSOCK, receiveBufferBytes: 4096 });
    try {
      // No 'datagrams' listener: the queue fills.
      let last: Awaited<ReturnType<typeof call>> | null = null;
      const t0 = Date.now();
      for (let i = 0; i < 200; i++) {
        last = await call(d, 'POST', '/send', { body: { pid: peer.portId, data: 'x'.repeat(1000) } });
        if (last.status !== 200) break;
      }
      assert.ok(last);
      assert.equal(last.status, 503, `status ${last.status}: ${last.text}`);
      const p = last.json as { code: string; errno: string; field: string; detail: string };
      assert.equal(p.code, 'PEER_BUSY');
      assert.equal(p.errno, 'EAGAIN');
      assert.equal(p.field, 'pid');
      assert.ok(Date.now() - t0 < 5000);
      const metrics = await call(d, 'GET', '/metrics');
      assert.match(metrics.text, /nlbridge_send_errors_total\{code="EAGAIN"\} [1-9]/);
    } finally {
      peer.close();
    }
  });

  test('usersock: pid 0, ack, relay and groups above 32 are clear 409s', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ pid: 0, data: 'x' }, 'NO_KERNEL_ENDPOINT', 'pid'],
      [{ groups: [G1], data: 'x', ack: true }, 'NO_KERNEL_ENDPOINT', 'ack'],
      [{ relay: 1234, data: 'x' }, 'NEEDS_KERNEL', 'relay'],
      [{ groups: [G1, 40], data: 'x' }, 'NEEDS_KERNEL', 'groups'],
    ];
    for (const [body, code, field] of cases) {
      const r = await call(d, 'POST', '/send', { body });
      assert.equal(r.status, 409, JSON.stringify(body));
      const p = r.json as { code: string; field: string; detail: string };
      assert.equal(p.code, code);
      assert.equal(p.field, field);
      assert.match(p.detail, /usersock/);
    }
  });

  test('/metrics counts sends per group', async () => {
    await call(d, 'POST', '/send', { body: { groups: [G3], data: `${TAG}-m` } });
    const r = await call(d, 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.text, new RegExp(`nlbridge_sent_messages_total\\{group="${G3}"\\} [1-9]`));
    assert.match(r.text, /# TYPE nlbridge_websocket_clients gauge/);
  });
});

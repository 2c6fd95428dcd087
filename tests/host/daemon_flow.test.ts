// Loss is never silent: a slow WebSocket client loses frames (counted, told
// to it once it drains, others unaffected) and is closed with 1013 when it
// stays stalled; a netlink overrun (ENOBUFS) is told with the exact count.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { USERSOCK, bit, call, connect, sleep, startDaemon, type Frame, type WsClient } from './support/daemon_harness';
import { waitFor } from '../support/wait';

const G_SLOW = 17;
const G_FLOOD = 18;
const G_OTHER = 19;

/** Sends `count` messages to `group` in chunks, yielding between chunks so the in-process daemon keeps up. */
async function pace(sender: NetlinkSocket, group: number, count: number, payload: Buffer, chunk: number): Promise<void> {
  for (let seq = 1; seq <= count;) {
    for (let i = 0; i < chunk && seq <= count; i++, seq++) {
      sender.send(encodeMessage({ type: 0x10, seq, payload }), { groups: bit(group) });
    }
    await new Promise((r) => setImmediate(r));
    await sleep(1); // pacing (a rate): the in-process daemon reads between chunks
  }
}

const framesOf = (c: WsClient, type: string): Frame[] => c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === type);
const rawSocket = (c: WsClient): Socket => (c.ws as unknown as { _socket: Socket })._socket;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  await waitFor(what, cond, { timeoutMs: ms });
}

describe('slow clients', () => {
  test('a paused client loses frames, is told how many once it drains, and never delays a fast one', async () => {
    const d = await startDaemon({ config: { wsBufferBytes: 1024 * 1024, wsStallMs: 60000 } });
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const fast = await connect(d, `/groups?list=${G_SLOW}`);
      const slow = await connect(d, `/groups?list=${G_SLOW}`);
      rawSocket(slow.client).pause();
      const COUNT = 6000;
      await pace(sender, G_SLOW, COUNT, Buffer.alloc(4000, 'a'), 50);
      await until(() => framesOf(fast.client, 'message').length >= COUNT, 10000, 'the fast client gets everything');
      const fastMsgs = framesOf(fast.client, 'message');
      assert.equal(fastMsgs.length, COUNT);
      assert.deepEqual(
        fastMsgs.map((f) => f.seq),
        Array.from({ length: COUNT }, (_, i) => i + 1),
      );
      assert.deepEqual(
        fastMsgs.map((f) => f.n),
        Array.from({ length: COUNT }, (_, i) => i + 1),
      );
      assert.equal(framesOf(fast.client, 'dropped').length, 0);
      const droppedTotal = d.metrics.wsDropped.total();
      assert.ok(droppedTotal > 0, 'the slow client lost frames');
      assert.ok(droppedTotal < COUNT, 'it got some before its buffers filled');

      rawSocket(slow.client).resume();
      const dropped = await slow.client.next((f) => f.type === 'dropped', 10000, 'a dropped event');
      const received = framesOf(slow.client, 'message');
      // What it received plus what it was told it lost is everything.
      assert.equal(dropped.count, droppedTotal);
      assert.equal(received.length + Number(dropped.count), COUNT);
      // It got a prefix (the frames that fit before the backlog filled), and n shows the gap.
      assert.deepEqual(
        received.map((f) => f.seq),
        Array.from({ length: received.length }, (_, i) => i + 1),
      );
      assert.equal(dropped.n, COUNT + 1, 'the dropped frames consumed their n');
      const status = (await call(d, 'GET', '/status')).json as { counters: { wsFramesDropped: number } };
      assert.equal(status.counters.wsFramesDropped, droppedTotal);
      const metrics = (await call(d, 'GET', '/metrics')).text;
      assert.match(metrics, new RegExp(`nlbridge_websocket_frames_dropped_total ${droppedTotal}\\n`));
      assert.equal(slow.client.ws.readyState, slow.client.ws.OPEN, 'a client that drains stays connected');
      await fast.client.close();
      await slow.client.close();
    } finally {
      sender.close();
      await d.close();
    }
  });

  test('a client that stays over its backlog is closed with 1013; the others go on', async () => {
    const d = await startDaemon({ config: { wsBufferBytes: 256 * 1024, wsStallMs: 300 } });
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const fast = await connect(d, `/groups?list=${G_SLOW}`);
      const stuck = await connect(d, `/groups?list=${G_SLOW}`);
      rawSocket(stuck.client).pause();
      await pace(sender, G_SLOW, 4000, Buffer.alloc(4000, 'b'), 20);
      await until(() => d.metrics.wsClosedSlow.total() === 1, 5000, 'the stuck client is closed');
      rawSocket(stuck.client).resume();
      const code = await stuck.client.closed;
      assert.ok(code === 1013 || code === 1006, `close code ${code}`);
      // The fast client is still served.
      sender.send(encodeMessage({ type: 0x10, seq: 99999, payload: Buffer.from('still here') }), { groups: bit(G_SLOW) });
      await fast.client.next((f) => f.type === 'message' && f.data === 'still here');
      assert.equal(d.app.nlbridge.streams.size, 1);
      await fast.client.close();
    } finally {
      sender.close();
      await d.close();
    }
  });
});

describe('netlink overrun', () => {
  test('ENOBUFS: every subscriber hears the exact loss; received + lost = sent; metrics and one log line', async () => {
    const logs: Record<string, unknown>[] = [];
    const d = await startDaemon({ config: { rcvbuf: 4096 }, logs });
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const a = await connect(d, `/groups?list=${G_FLOOD}`);
      const other = await connect(d, `/groups?list=${G_OTHER}`);
      const COUNT = 3000;
      // One synchronous burst: the daemon (same process) cannot read meanwhile.
      const payload = Buffer.alloc(200, 'f');
      for (let seq = 1; seq <= COUNT; seq++) sender.send(encodeMessage({ type: 0x10, seq, payload }), { groups: bit(G_FLOOD) });
      const told = (): { received: number; lost: number } => ({
        received: framesOf(a.client, 'message').filter((f) => f.length === 200).length,
        lost: framesOf(a.client, 'overrun').reduce((s, f) => s + Number(f.lost), 0),
      });
      await waitFor(`an overrun event, and received + lost = ${COUNT}`, told, {
        timeoutMs: 10000,
        until: (t) => t.lost > 0 && t.received + t.lost >= COUNT,
      });
      // The other subscriber is told on its own connection, which may arrive later than a's.
      const lostA = told().lost;
      await waitFor(
        `the subscriber of the other group told ${lostA} lost`,
        () => framesOf(other.client, 'overrun').reduce((s, f) => s + Number(f.lost), 0),
        {
          timeoutMs: 5000,
          until: (n) => n >= lostA,
        },
      );
      const lost = framesOf(a.client, 'overrun').reduce((s, f) => s + Number(f.lost), 0);
      const received = framesOf(a.client, 'message').filter((f) => f.length === 200).length;
      assert.ok(lost > 0);
      assert.equal(received + lost, COUNT, `received ${received} + lost ${lost}`);
      // The socket is shared: a subscriber of another group is told too.
      assert.equal(
        framesOf(other.client, 'overrun').reduce((s, f) => s + Number(f.lost), 0),
        lost,
      );
      const metrics = (await call(d, 'GET', '/metrics')).text;
      assert.match(metrics, new RegExp(`nlbridge_netlink_overrun_lost_messages_total ${lost}\\n`));
      assert.match(metrics, /nlbridge_netlink_overruns_total [1-9]/);
      const warn = logs.filter((l) => String(l.msg).includes('overran'));
      assert.equal(warn.length, 1, 'one log line per episode');
      assert.equal(warn[0].level, 40);
      // The stream goes on after the overrun.
      sender.send(encodeMessage({ type: 0x10, seq: COUNT + 1, payload: Buffer.from('after') }), { groups: bit(G_FLOOD) });
      await a.client.next((f) => f.type === 'message' && f.data === 'after');
      // Nothing more of the burst came after the counts above (it would have come before 'after').
      assert.deepEqual(told(), { received, lost }, 'no later message or overrun report of the burst');
      await a.client.close();
      await other.client.close();
    } finally {
      sender.close();
      await d.close();
    }
  });
});

// WebSocket streams over real sockets: ww_nlk and rr_nlk as netlink peers.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { NetlinkSocket } from '../../addon/socket';
import { decodeDatagram, encodeMessage } from '../../addon/codec';
import type { Datagram } from '../../addon/types';
import {
  RrNlk,
  TAG,
  USERSOCK,
  bit,
  buildTools,
  call,
  connect,
  startDaemon,
  wwNlk,
  type Daemon,
  type Frame,
  type WsClient,
} from './support/daemon_harness';
import { waitFor } from '../support/wait';

// Absence ("not delivered again", "no other client") is checked after an end
// marker sent later on the same path: netlink keeps a socket's datagrams in
// order, the daemon routes them in that order, and a WebSocket or rr_nlk's
// stdout keeps what it is written in order, so a copy that must not come
// would have come before the marker.

/** Every frame ever received whose data is `data`. */
const framesWith = (c: WsClient, data: string): Frame[] => c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.data === data);

/** Waits until each client has received a frame with `data`. */
async function received(data: string, ...clients: WsClient[]): Promise<void> {
  await waitFor(`${data} at ${clients.length} WebSocket client(s)`, () => clients.map((c) => framesWith(c, data).length), {
    timeoutMs: 5000,
    until: (counts) => counts.every((n) => n >= 1),
  });
}

/** Waits until each rr_nlk printed `marker`. */
async function printed(marker: string, ...readers: RrNlk[]): Promise<void> {
  await waitFor(`${marker} printed by ${readers.length} rr_nlk reader(s)`, () => readers.map((rr) => rr.with(marker).length), {
    timeoutMs: 5000,
    until: (counts) => counts.every((n) => n >= 1),
  });
}

/** ww_nlk sends `marker` to `mask`, then each client has it. */
async function wwEnd(mask: number, marker: string, ...clients: WsClient[]): Promise<void> {
  const ww = await wwNlk(['-g', String(mask), '-m', marker]);
  assert.equal(ww.code, 0, ww.stderr);
  await received(marker, ...clients);
}

describe('WebSocket /groups', () => {
  let d: Daemon;
  before(async () => {
    buildTools();
    d = await startDaemon({ config: { ringLingerMs: 300 } });
  });
  after(() => d.close());

  test('hello first, then ww_nlk -g reaches the subscriber once (two groups of the mask)', async () => {
    const { client, hello } = await connect(d, `/groups/0x${(bit(5) | bit(6)).toString(16)}`);
    try {
      assert.equal(hello.n, 0);
      assert.deepEqual(hello.groups, [5, 6]);
      assert.equal(hello.portId, d.bus.tx.portId);
      assert.deepEqual(hello.protocol, { name: 'usersock', number: USERSOCK });
      const marker = `${TAG}-ww`;
      const ww = await wwNlk(['-g', String(bit(5) | bit(6)), '-m', marker]);
      assert.equal(ww.code, 0, ww.stderr);
      const f = await client.next((x) => x.type === 'message' && x.data === marker);
      assert.equal(f.group, 5);
      assert.equal(f.msgType, 16);
      assert.equal(f.encoding, 'utf8');
      assert.equal(f.n, 1);
      assert.ok(Number(f.portId) > 0);
      assert.equal(f.uid, 0);
      assert.deepEqual(f.flags, ['REQUEST']);
      await wwEnd(bit(6), `${TAG}-ww-end`, client);
      assert.equal(framesWith(client, marker).length, 1, 'the copy on group 6 is not delivered again');
      const status = (await call(d, 'GET', '/status')).json as {
        groups: { joined: number[]; subscribers: Record<string, number> };
        clients: { websocket: number };
      };
      assert.deepEqual(status.groups.joined, [5, 6]);
      assert.deepEqual(status.groups.subscribers, { '5': 1, '6': 1 });
      assert.equal(status.clients.websocket, 1);
    } finally {
      await client.close();
    }
    // The daemon's side of the close, then the linger (300 ms here): the
    // groups are still joined as soon as the subscriber is gone, and left
    // once the linger is over.
    await waitFor('no subscriber left on groups 5 and 6', () => d.bus.subscriberCounts(), {
      timeoutMs: 5000,
      until: (c) => c['5'] === 0 && c['6'] === 0,
    });
    assert.deepEqual(d.bus.rx.memberships(), [5, 6], 'the groups linger (--ring-linger-ms) for a resume');
    await waitFor('groups 5 and 6 left after the linger', () => d.bus.joinedGroups(), { timeoutMs: 5000, until: (g) => g.length === 0 });
    assert.deepEqual(d.bus.joinedGroups(), [], 'the last subscriber leaving leaves the groups after the linger');
    assert.deepEqual(d.bus.rx.memberships(), []);
  });

  test('a subscriber to mask 10 sees group 2 and 4 traffic and not group 1', async () => {
    const { client } = await connect(d, '/groups/10');
    try {
      for (const g of [1, 2, 4]) {
        const ww = await wwNlk(['-g', String(bit(g)), '-m', `${TAG}-g${g}`]);
        assert.equal(ww.code, 0);
      }
      // g4 was sent last, so group 1's message, had it come, came before it.
      await received(`${TAG}-g4`, client);
      const seen = client.frames.filter(
        (f): f is Frame => !Buffer.isBuffer(f) && f.type === 'message' && String(f.data).includes(`${TAG}-g`),
      );
      assert.deepEqual(
        seen.map((f) => [f.group, f.data]),
        [
          [2, `${TAG}-g2`],
          [4, `${TAG}-g4`],
        ],
      );
      // Per-stream counter without gaps.
      assert.deepEqual(
        seen.map((f) => f.n),
        [1, 2],
      );
    } finally {
      await client.close();
    }
  });

  test('a mask in the path may be 300 characters (fastify caps params at 100 unless told); 1,100 are refused naming the url, the socket closed', async () => {
    // 0x, 297 zeros, then 10: groups 2 and 4, written as wide as the spec allows.
    const { client, hello } = await connect(d, `/groups/0x${'0'.repeat(297)}a`);
    try {
      assert.deepEqual(hello.groups, [2, 4]);
    } finally {
      await client.close();
    }
    // An upgrade whose URL cannot be routed: answered 400 naming the url, and
    // the server closes the socket (it is off Node's keep-alive by then; left
    // open, every such request would hold a descriptor for good). Not
    // rawRequest(): its Connection: close would have the server close anyway.
    const sock = net.connect(d.port, '127.0.0.1');
    let answer = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (answer += c));
    const closedByServer = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 3000);
      sock.on('end', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    sock.write(
      `GET /groups/${'1'.repeat(1100)} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${d.token ? `Authorization: Bearer ${d.token}\r\n` : ''}\r\n`,
    );
    const closed = await closedByServer;
    sock.destroy();
    assert.match(answer, /^HTTP\/1\.1 400 /);
    const problem = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { field?: string };
    assert.equal(problem.field, 'url', answer);
    assert.ok(closed, 'the server left the refused upgrade socket open');
  });

  test('/groups?list= with the same semantics; two subscribers of different groups each get one copy', async () => {
    const a = await connect(d, '/groups?list=5');
    const b = await connect(d, '/groups?list=6,7');
    try {
      assert.deepEqual(b.hello.groups, [6, 7]);
      const marker = `${TAG}-two`;
      await wwNlk(['-g', String(bit(5) | bit(6) | bit(7)), '-m', marker]);
      await received(marker, a.client, b.client);
      await wwEnd(bit(5) | bit(6) | bit(7), `${TAG}-two-end`, a.client, b.client);
      assert.equal(framesWith(a.client, marker).length, 1);
      const gotB = framesWith(b.client, marker);
      assert.equal(gotB.length, 1);
      assert.equal(gotB[0].group, 6);
    } finally {
      await a.client.close();
      await b.client.close();
    }
  });

  test('typing into a WebSocket reaches rr_nlk (DATA to the stream groups, once) and other subscribers', async () => {
    const rr = new RrNlk(['-g', String(bit(7) | bit(8))]);
    const { client } = await connect(d, `/groups/${bit(7) | bit(8)}`);
    const other = await connect(d, '/groups?list=8');
    try {
      await rr.portId;
      const marker = `${TAG}-typed`;
      client.send(marker);
      await printed(marker, rr);
      client.send(`${TAG}-end-typed`);
      await printed(`${TAG}-end-typed`, rr);
      const lines = rr.with(marker);
      assert.equal(lines.length, 1);
      assert.equal(lines[0].type, 'DATA');
      assert.equal(lines[0].port, d.bus.tx.portId);
      const echo = await other.client.next((f) => f.type === 'message' && f.data === marker);
      assert.equal(echo.fromBridge, true);
      assert.equal(echo.group, 8);
    } finally {
      rr.kill();
      await client.close();
      await other.client.close();
    }
  });

  test('a JSON object written is a full /send request, answered by a sent or error frame', async () => {
    const rr = new RrNlk(['-g', String(bit(9))]);
    const { client } = await connect(d, '/groups?list=5');
    try {
      await rr.portId;
      const marker = `${TAG}-json`;
      client.send(JSON.stringify({ id: 'req-1', groups: [9], data: Buffer.from(marker).toString('hex'), encoding: 'hex' }));
      const sent = await client.next((f) => f.type === 'sent');
      assert.equal(sent.id, 'req-1');
      const report = sent.report as { ok: boolean; results: { group: number }[] };
      assert.equal(report.ok, true);
      assert.equal(report.results[0].group, 9);
      await printed(marker, rr);
      client.send(JSON.stringify({ id: 'end', groups: [9], data: `${TAG}-end-json` }));
      await printed(`${TAG}-end-json`, rr);
      assert.equal(rr.with(marker).length, 1);
      client.send(JSON.stringify({ id: 2, groups: [9], data: 'zz', encoding: 'hex' }));
      const err = await client.next((f) => f.type === 'error');
      assert.equal(err.id, 2);
      const problem = err.problem as { status: number; field: string; code: string };
      assert.equal(problem.status, 400);
      assert.equal(problem.field, 'data');
      client.send(JSON.stringify({ groups: [9], colour: 'red' }));
      const err2 = await client.next((f) => f.type === 'error');
      assert.equal((err2.problem as { field: string }).field, 'colour');
    } finally {
      rr.kill();
      await client.close();
    }
  });

  test('unicast=1: the client gets its own port id; ww_nlk -d reaches it and no other client', async () => {
    const uni = await connect(d, '/groups?list=5&unicast=1');
    const plain = await connect(d, '/groups?list=5');
    try {
      const portId = Number(uni.hello.portId);
      assert.equal(uni.hello.unicast, true);
      assert.notEqual(portId, d.bus.tx.portId);
      assert.notEqual(portId, d.bus.rx.portId);
      const marker = `${TAG}-direct`;
      const ww = await wwNlk(['-d', String(portId), '-m', marker]);
      assert.equal(ww.code, 0, ww.stderr);
      const f = await uni.client.next((x) => x.type === 'message' && x.data === marker);
      assert.equal(f.group, 0);
      // uni has it, so the daemon routed it; a wrong copy to plain was written before this marker.
      await wwEnd(bit(5), `${TAG}-direct-end`, plain.client);
      assert.equal(framesWith(plain.client, marker).length, 0);
      // What this client writes goes out from its own port, so peers can answer it.
      const peer = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(5) });
      const got: Datagram[] = [];
      peer.on('datagrams', (b) => got.push(...b));
      try {
        const fromUni = (text: string): Datagram[] => got.filter((g) => decodeDatagram(g.data).messages[0]?.payload.toString() === text);
        uni.client.send(`${TAG}-from-uni`);
        uni.client.send(`${TAG}-from-uni-end`);
        await waitFor("the client's two writes at the peer", () => fromUni(`${TAG}-from-uni-end`).length, {
          timeoutMs: 5000,
          until: (n) => n >= 1,
        });
        const mine = got.filter((g) => decodeDatagram(g.data).messages[0]?.payload.toString() === `${TAG}-from-uni`);
        assert.equal(mine.length, 1);
        assert.equal(mine[0].portId, portId);
        // ... and an answer to that port reaches the client.
        peer.send(encodeMessage({ type: 0x10, seq: 1, payload: Buffer.from(`${TAG}-reply`) }), { portId });
        await uni.client.next((x) => x.type === 'message' && x.data === `${TAG}-reply`);
      } finally {
        peer.close();
      }
      const st = (await call(d, 'GET', '/status')).json as { clients: { unicast: number } };
      assert.equal(st.clients.unicast, 1);
    } finally {
      await uni.client.close();
      await plain.client.close();
    }
    await waitFor('the unicast client socket closed', () => d.bus.clientEndpointCount, { timeoutMs: 5000, until: (n) => n === 0 });
    assert.equal(d.bus.clientEndpointCount, 0, 'the client socket closes with the client');
  });

  test('format=binary sends the raw netlink message; batch=1 packs newline-separated JSON', async () => {
    const bin = await connect(d, '/groups?list=6&format=binary');
    const batched = await connect(d, '/groups?list=6&batch=1');
    try {
      const marker = `${TAG}-bin`;
      await wwNlk(['-g', String(bit(6)), '-m', marker, '-c', '20']);
      const endMark = `${TAG}-bin-end`;
      await wwNlk(['-g', String(bit(6)), '-m', endMark]);
      await waitFor(
        'the end marker in both streams (raw and batched)',
        () => [
          bin.client.all.some((f) => Buffer.isBuffer(f) && decodeDatagram(f).messages[0]?.payload.toString() === endMark),
          framesWith(batched.client, endMark).length > 0,
        ],
        { timeoutMs: 5000, until: (v) => v.every(Boolean) },
      );
      const raw = bin.client.frames.filter((f): f is Buffer => Buffer.isBuffer(f));
      const mine = raw.map((b) => decodeDatagram(b).messages[0]).filter((m) => m?.payload.toString() === marker);
      assert.equal(mine.length, 20);
      assert.deepEqual(
        mine.map((m) => m.header.seq),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      const msgs = batched.client.frames.filter((f) => !Buffer.isBuffer(f) && f.type === 'message' && f.data === marker) as Frame[];
      assert.equal(msgs.length, 20);
      assert.deepEqual(
        msgs.map((m) => m.n),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    } finally {
      await bin.client.close();
      await batched.client.close();
    }
  });

  test('malformed datagrams are reported, counted, and never break the stream', async () => {
    const { client } = await connect(d, '/groups?list=7');
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      sender.send(Buffer.from([1, 2, 3]), { groups: bit(7) });
      const bad = Buffer.alloc(20);
      bad.writeUInt32LE(0xffffffff, 0);
      sender.send(bad, { groups: bit(7) });
      sender.send(encodeMessage({ type: 0x10, seq: 5, payload: Buffer.from(`${TAG}-after`) }), { groups: bit(7) });
      const m1 = await client.next((f) => f.type === 'malformed');
      assert.equal(m1.reason, 'ETOOSHORT');
      assert.equal(m1.portId, sender.portId);
      const m2 = await client.next((f) => f.type === 'malformed');
      assert.equal(m2.reason, 'ETRUNC');
      await client.next((f) => f.type === 'message' && f.data === `${TAG}-after`);
      const metrics = (await call(d, 'GET', '/metrics')).text;
      assert.match(metrics, /nlbridge_received_rejected_total\{reason="ETOOSHORT"\} [1-9]/);
      assert.match(metrics, /nlbridge_received_rejected_total\{reason="ETRUNC"\} [1-9]/);
    } finally {
      sender.close();
      await client.close();
    }
  });

  test('a client frame over --ws-max-payload closes the stream with 1009; nothing is sent', async () => {
    const rr = new RrNlk(['-g', String(bit(9))]);
    const { client } = await connect(d, '/groups?list=9');
    try {
      await rr.portId;
      client.send(`${TAG}-big-`.padEnd(64 * 1024 + 1, 'x'));
      assert.equal(await client.closed, 1009);
      // The end marker, sent from the same tx socket after the close.
      assert.equal((await call(d, 'POST', '/send', { body: { groups: [9], data: `${TAG}-end-after-big` } })).status, 200);
      await printed(`${TAG}-end-after-big`, rr);
      assert.equal(rr.with(`${TAG}-big-`).length, 0);
    } finally {
      rr.kill();
    }
  });

  test('non-UTF-8 payloads arrive as base64', async () => {
    const { client } = await connect(d, '/groups?list=8');
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const payload = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
      sender.send(encodeMessage({ type: 0x10, seq: 77, pid: 4242, payload }), { groups: bit(8) });
      const f = await client.next((x) => x.type === 'message' && x.seq === 77 && x.portId === sender.portId);
      assert.equal(f.encoding, 'base64');
      assert.equal(f.data, payload.toString('base64'));
      assert.equal(f.nlmsgPid, 4242, 'nlmsg_pid as written');
      assert.equal(f.portId, sender.portId, 'identity is the real port id');
    } finally {
      sender.close();
      await client.close();
    }
  });
});

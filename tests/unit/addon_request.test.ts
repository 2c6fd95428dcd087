// Request/reply pairing (addon/request.ts) over a fake socket: acks matched
// by seq and sender, replies to a request that expects one, the rest handed
// on, timeouts, close, and a failed sendto.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import {
  NLMSG_ERROR,
  NLM_F_ACK,
  NLM_F_REQUEST,
  decodeDatagram,
  encodeAckPayload,
  encodeMessage,
  encodeMessages,
  type NlMsgHeader,
} from '../../addon/codec';
import { NetlinkConn, type AckInfo, type ConnHandler } from '../../addon/request';
import { NetlinkError } from '../../addon/socket';
import type { Datagram, SendDestination } from '../../addon/types';

class FakeSock extends EventEmitter {
  readonly portId = 4321;
  readonly sent: { data: Buffer; dest: SendDestination }[] = [];
  failWith: NetlinkError | null = null;
  closed = false;
  send(data: Buffer, dest: SendDestination): { broadcastGroup: number; unicast: 'delivered' } {
    if (this.failWith) throw this.failWith;
    this.sent.push({ data, dest });
    return { broadcastGroup: 0, unicast: 'delivered' };
  }
  /** One receive batch. */
  batch(...ds: Datagram[]): void {
    this.emit('datagrams', ds);
  }
  close(): void {
    this.closed = true;
  }
}

const dgram = (data: Buffer, portId = 0, group = 0, truncated = false): Datagram => ({
  data,
  portId,
  group,
  truncated,
  length: data.length,
});
const request = (seq: number): NlMsgHeader => ({ length: 20, type: 0x10, flags: NLM_F_REQUEST | NLM_F_ACK, seq, pid: 4321 });
const ack = (seq: number, errno = 0): Buffer =>
  encodeMessage({ type: NLMSG_ERROR, seq, pid: 4321, payload: encodeAckPayload(errno, request(seq)) });

function conn(): { sock: FakeSock; c: NetlinkConn; seen: string[]; acks: AckInfo[] } {
  const sock = new FakeSock();
  const seen: string[] = [];
  const acks: AckInfo[] = [];
  const handler: ConnHandler = {
    message: (d, h, payload, bytes) =>
      seen.push(`msg port=${d.portId} group=${d.group} seq=${h.seq} ${payload.toString()} bytes=${bytes.length}`),
    reject: (d, reason, offset) => seen.push(`reject ${reason}@${offset} port=${d.portId}`),
    batchEnd: () => seen.push('end'),
    ack: (a) => acks.push(a),
  };
  return { sock, c: new NetlinkConn(sock as never, handler), seen, acks };
}

test('acks settle a request at the expected count, in arrival order; other seqs and senders are not taken', async () => {
  const { sock, c, seen, acks } = conn();
  const p = c.expect(7, 1000);
  sock.batch(dgram(ack(7)), dgram(ack(8, 22)));
  p.expectAcks(2);
  // A message typed NLMSG_ERROR from a port other than the kernel's is traffic, not an ack.
  sock.batch(dgram(ack(7, 1), 555), dgram(ack(7, 111)));
  const r = await p.done;
  assert.deepEqual(r, {
    acks: [
      { errno: 0, code: 'OK' },
      { errno: 111, code: 'ECONNREFUSED' },
    ],
    messages: [],
  });
  assert.deepEqual(
    acks.map((a) => a.code),
    ['OK', 'EINVAL', 'ECONNREFUSED'],
    'every kernel ack is told, claimed or not',
  );
  assert.equal(seen.length, 3);
  assert.deepEqual([seen[0], seen[2]], ['end', 'end']);
  assert.match(seen[1], /^msg port=555 group=0 seq=7 .* bytes=36$/s);
  c.close();
});

test('a request expecting a reply settles at its first answer; expectAcks(0) settles at once; silence at the timeout', async () => {
  const { sock, c, seen } = conn();
  const reply = c.expect(9, 1000, 'reply');
  sock.batch(dgram(encodeMessage({ type: 0x13, seq: 9, payload: Buffer.from('stats') })));
  const r = await reply.done;
  assert.equal(r.messages.length, 1);
  assert.equal(r.messages[0].payload.toString(), 'stats');
  // Once settled, the same seq is traffic again.
  sock.batch(dgram(encodeMessage({ type: 0x13, seq: 9, payload: Buffer.from('late') })));
  assert.match(seen.at(-2)!, /seq=9 late/);
  const none = c.expect(10, 1000);
  none.expectAcks(0);
  assert.deepEqual(await none.done, { acks: [], messages: [] });
  const t0 = Date.now();
  const silent = c.expect(11, 40);
  silent.expectAcks(1);
  assert.deepEqual(await silent.done, { acks: [], messages: [] });
  assert.ok(Date.now() - t0 >= 35);
  c.close();
});

test("execute: sends to the kernel with the socket's port id, resolves with the answer; a failed sendto throws and leaves nothing pending", async () => {
  const { sock, c } = conn();
  const p = c.execute({ type: 0x13, flags: NLM_F_REQUEST, seq: 12 }, 1000);
  assert.deepEqual(sock.sent[0].dest, { portId: 0 });
  assert.deepEqual(decodeDatagram(sock.sent[0].data).messages[0].header, {
    length: 16,
    type: 0x13,
    flags: NLM_F_REQUEST,
    seq: 12,
    pid: 4321,
  });
  sock.batch(dgram(ack(12, 1)));
  assert.deepEqual(await p, { acks: [{ errno: 1, code: 'EPERM' }], messages: [] });
  sock.failWith = NetlinkError.fromErrno(-105, 'sendto', 'sendto port 0');
  assert.throws(
    () => c.execute({ type: 0x13, flags: NLM_F_REQUEST, seq: 13 }, 1000),
    (e: unknown) => e instanceof NetlinkError && e.code === 'ENOBUFS',
  );
  c.close();
  assert.equal(sock.closed, true);
});

test('close settles what is pending with what came', async () => {
  const { sock, c } = conn();
  const p = c.expect(20, 60000);
  p.expectAcks(2);
  sock.batch(dgram(ack(20)));
  c.close();
  assert.deepEqual(await p.done, { acks: [{ errno: 0, code: 'OK' }], messages: [] });
});

test('one decode loop: every message of a batch with its own bytes; cut and malformed datagrams after their good messages', () => {
  const { sock, c, seen } = conn();
  const two = encodeMessages([
    { type: 0x10, seq: 1, payload: Buffer.from('a') },
    { type: 0x10, seq: 2, payload: Buffer.from('bc') },
  ]);
  const bad = Buffer.concat([encodeMessage({ type: 0x10, seq: 3, payload: Buffer.from('d') }), Buffer.from([1, 2, 3])]);
  sock.batch(
    dgram(encodeMessage({ type: 0x10, seq: 0, payload: Buffer.from('solo') }), 77, 5),
    dgram(two, 78, 6),
    dgram(bad, 79),
    dgram(two.subarray(0, 24), 80, 0, true),
  );
  assert.deepEqual(seen, [
    'msg port=77 group=5 seq=0 solo bytes=20',
    'msg port=78 group=6 seq=1 a bytes=17',
    'msg port=78 group=6 seq=2 bc bytes=18',
    'msg port=79 group=0 seq=3 d bytes=17',
    'reject ETOOSHORT@20 port=79',
    'msg port=80 group=0 seq=1 a bytes=17',
    'reject ETRUNC@20 port=80',
    'end',
  ]);
  c.close();
});

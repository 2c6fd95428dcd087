// The bus over a fake socket standing in for dummy_netlink's kernel side
// (the host has no module; tests/vm runs the real one): copies per group with
// one seq, acks paired with destinations, BCAST above 32, RELAY, STATS, ack
// timeouts, refcounted membership, per-subscriber dedupe.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import pino from 'pino';
import { NLMSG_ERROR, NLM_F_ACK, NLM_F_REQUEST, decodeDatagram, encodeAckPayload, encodeMessage } from '../../addon/codec';
import { DnlMsgType, decodeBcast, decodeRelay, encodeStats, type DnlStats } from '../../addon/dummy_netlink';
import { ffs } from '../../addon/socket';
import type { Datagram, NetlinkSocketOptions, SendDestination } from '../../addon/types';
import { problemOf } from '../../daemon/errors';
import { Metrics } from '../../daemon/metrics';
import { Bus } from '../../daemon/netlink/bus';
import { BusError } from '../../daemon/netlink/errors';
import { toGroupList } from '../../daemon/netlink/groups';
import type { MalformedInfo, RxMessage, Subscriber } from '../../daemon/netlink/message';
import type { ProtocolInfo } from '../../daemon/netlink/protocol';
import { waitFor } from '../support/wait';

type Kernel = (msg: ReturnType<typeof decodeDatagram>['messages'][number], sock: FakeSock) => void;

let nextPort = 1000;
class FakeSock extends EventEmitter {
  readonly portId = nextPort++;
  readonly sent: { data: Buffer; dest: SendDestination }[] = [];
  readonly joins: number[] = [];
  readonly leaves: number[] = [];
  isClosed = false;
  constructor(
    readonly opts: NetlinkSocketOptions,
    private readonly kernel: Kernel | null,
  ) {
    super();
  }
  send(data: Buffer, dest: SendDestination = {}): { broadcastGroup: number; unicast: 'delivered' } {
    this.sent.push({ data: Buffer.from(data), dest });
    if ((dest.portId ?? 0) === 0 && this.kernel) {
      // The kernel's input runs inside sendto: its replies queue before sendto returns.
      for (const m of decodeDatagram(Buffer.from(data)).messages) this.kernel(m, this);
    }
    return { broadcastGroup: ffs(dest.groups ?? 0), unicast: 'delivered' };
  }
  /** Queue a datagram from `portId` for the next poll. */
  deliver(data: Buffer, portId = 0, group = 0): void {
    const d: Datagram = { data, portId, group, truncated: false, length: data.length };
    setImmediate(() => this.emit('datagrams', [d]));
  }
  join(g: number): void {
    this.joins.push(g);
  }
  leave(g: number): void {
    this.leaves.push(g);
  }
  memberships(): number[] {
    return [];
  }
  drops(): number {
    return 0;
  }
  unref(): this {
    return this;
  }
  close(): void {
    this.isClosed = true;
  }
}

const DUMMY: ProtocolInfo = {
  name: 'dummy',
  number: 25,
  kernelEndpoint: true,
  module: { unit: 25, r_grps: 3, b_grp: 0, period_ms: 0, ngroups: 64, allow_unpriv: false },
  maxGroup: 64,
  reason: 'test',
};

/** A kernel that acks every request with NLM_F_ACK (errno from `verdict`) and answers STATS. */
function kernel(verdict: (type: number, copyIndex: number) => number = () => 0, stats?: DnlStats): Kernel {
  let copies = 0;
  return (m, sock) => {
    const h = m.header;
    if (h.type === DnlMsgType.STATS && stats) {
      sock.deliver(encodeMessage({ type: DnlMsgType.STATS, seq: h.seq, pid: 0, payload: encodeStats({ ...stats }) }));
      return;
    }
    const errno = verdict(h.type, copies++);
    if (errno !== 0 || h.flags & NLM_F_ACK)
      sock.deliver(encodeMessage({ type: NLMSG_ERROR, seq: h.seq, pid: sock.portId, payload: encodeAckPayload(errno, h) }));
  };
}

function makeBus(k: Kernel | null, ackTimeoutMs = 200): { bus: Bus; tx: FakeSock; rx: FakeSock; metrics: Metrics } {
  const socks: FakeSock[] = [];
  const metrics = new Metrics();
  const bus = new Bus({
    protocol: DUMMY,
    rcvbuf: 1 << 20,
    ackTimeoutMs,
    dedupeWindowMs: 1000,
    ring: { maxMessages: 1000, maxAgeMs: 60000, maxBytes: 1 << 20 },
    ringLingerMs: 0,
    log: pino({ level: 'silent' }),
    metrics,
    openSocket: (o) => {
      const s = new FakeSock(o, socks.length === 0 ? k : null);
      socks.push(s);
      return s as never;
    },
  });
  return { bus, tx: socks[0], rx: socks[1], metrics };
}

test('groups 1..32: one copy per group, one seq, nl_pid 0; each copy paired with its ack', async () => {
  const { bus, tx } = makeBus(kernel((_t, i) => (i === 1 ? 22 : 0)));
  const report = await bus.send({ groups: toGroupList([2, 4]), data: Buffer.from('hi'), ack: true });
  assert.equal(tx.sent.length, 2);
  assert.deepEqual(
    tx.sent.map((s) => s.dest),
    [
      { portId: 0, groups: 0b10 },
      { portId: 0, groups: 0b1000 },
    ],
  );
  const headers = tx.sent.map((s) => decodeDatagram(s.data).messages[0].header);
  assert.equal(headers[0].seq, headers[1].seq);
  assert.equal(headers[0].seq, report.seq);
  assert.equal(headers[0].pid, tx.portId);
  assert.equal(headers[0].flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.deepEqual(report.results, [
    { to: 'group', group: 2, result: 'delivered', ack: { errno: 0, code: 'OK' } },
    { to: 'group', group: 4, result: 'delivered', ack: { errno: 22, code: 'EINVAL' } },
  ]);
  await bus.close();
});

test('groups above 32 go as one BCAST to the kernel, naming every group', async () => {
  const { bus, tx } = makeBus(kernel());
  const report = await bus.send({ groups: toGroupList([2, 40]), data: Buffer.from('wide'), ack: true });
  assert.equal(tx.sent.length, 1);
  assert.deepEqual(tx.sent[0].dest, { portId: 0, groups: 0 });
  const m = decodeDatagram(tx.sent[0].data).messages[0];
  assert.equal(m.header.type, DnlMsgType.BCAST);
  const b = decodeBcast(m.payload);
  assert.deepEqual(b.groups, [2, 40]);
  assert.equal(b.data.toString(), 'wide');
  assert.deepEqual(report.results, [
    { to: 'group', group: 2, result: 'kernel-broadcast' },
    { to: 'group', group: 40, result: 'kernel-broadcast' },
    { to: 'kernel', result: 'delivered', ack: { errno: 0, code: 'OK' } },
  ]);
  await assert.rejects(
    bus.send({ groups: toGroupList([2, 65]), data: Buffer.alloc(0) }),
    (e: unknown) =>
      e instanceof BusError && e.code === 'GROUP_RANGE' && /above the 64 groups/.test(e.message) && problemOf(e)?.code === 'BAD_GROUPS',
  );
  await assert.rejects(
    bus.send({ groups: toGroupList([40]), data: Buffer.alloc(0), type: 0x30 }),
    (e: unknown) => e instanceof BusError && e.what === 'type' && problemOf(e)?.field === 'type',
  );
  await bus.close();
});

test('relay: a RELAY request with the port id; the kernel verdict comes back as the ack', async () => {
  const { bus, tx } = makeBus(kernel((type) => (type === DnlMsgType.RELAY ? 111 : 0)));
  const report = await bus.send({ relay: 4242, data: Buffer.from('r'), ack: true });
  const m = decodeDatagram(tx.sent[0].data).messages[0];
  assert.equal(m.header.type, DnlMsgType.RELAY);
  assert.deepEqual(decodeRelay(m.payload).portId, 4242);
  assert.deepEqual(report.results, [{ to: 'relay', portId: 4242, result: 'delivered', ack: { errno: 111, code: 'ECONNREFUSED' } }]);
  await bus.close();
});

test('a kernel that does not answer: the ack is ETIMEDOUT after ackTimeoutMs', async () => {
  const { bus } = makeBus(() => undefined, 50);
  const t0 = Date.now();
  const report = await bus.send({ pid: 0, data: Buffer.from('k'), ack: true });
  assert.ok(Date.now() - t0 >= 45);
  assert.deepEqual(report.results, [{ to: 'kernel', result: 'delivered', ack: { errno: null, code: 'ETIMEDOUT' } }]);
  await bus.close();
});

test('STATS: decoded reply; silence is KERNEL_TIMEOUT; a refusal is a problem with its errno', async () => {
  const stats: DnlStats = {
    version: 2,
    unit: 25,
    received: 9n,
    accepted: 8n,
    ignored: 1n,
    relayed: 2n,
    broadcast: 3n,
    ticks: 4n,
    errors: 0n,
    once_full: 0n,
    once_senders: 1n,
  };
  const ok = makeBus(kernel(() => 0, stats));
  assert.deepEqual(await ok.bus.kernelStats(), stats);
  await ok.bus.close();
  const silent = makeBus(() => undefined, 30);
  await assert.rejects(
    silent.bus.kernelStats(),
    (e: unknown) => e instanceof BusError && e.code === 'KERNEL_TIMEOUT' && problemOf(e)?.code === 'KERNEL_TIMEOUT',
  );
  await silent.bus.close();
  const refusing = makeBus(kernel(() => 1));
  await assert.rejects(refusing.bus.kernelStats(), (e: unknown) => {
    const p = problemOf(e);
    return e instanceof BusError && e.code === 'KERNEL_REFUSED' && p?.code === 'PERMISSION_DENIED' && p.errno === 'EPERM';
  });
  await refusing.bus.close();
});

class Sub implements Subscriber {
  got: RxMessage[] = [];
  bad: MalformedInfo[] = [];
  flushes = 0;
  constructor(readonly groups: number[]) {}
  deliver(m: RxMessage): void {
    this.got.push(m);
  }
  flush(): void {
    this.flushes++;
  }
  overrun(): void {}
  malformed(i: MalformedInfo): void {
    this.bad.push(i);
  }
}

test('membership is refcounted: joined once, left with the last subscriber', async () => {
  const { bus, rx } = makeBus(null);
  const a = new Sub([2, 4]);
  const b = new Sub([4]);
  bus.subscribe(a);
  bus.subscribe(b);
  assert.deepEqual(rx.joins, [2, 4]);
  assert.deepEqual(bus.subscriberCounts(), { '2': 1, '4': 2 });
  bus.unsubscribe(a);
  assert.deepEqual(rx.leaves, [2]);
  bus.unsubscribe(b);
  assert.deepEqual(rx.leaves, [2, 4]);
  assert.deepEqual(bus.joinedGroups(), []);
  await bus.close();
});

test('dedupe is per subscriber: copies on 2 and 4 reach a subscriber of both once, a subscriber of 4 once', async () => {
  const { bus, rx } = makeBus(null);
  const both = new Sub([2, 4]);
  const only4 = new Sub([4]);
  bus.subscribe(both);
  bus.subscribe(only4);
  const copy = encodeMessage({ type: 0x10, seq: 5, pid: 77, payload: Buffer.from('x') });
  rx.deliver(copy, 555, 2);
  rx.deliver(copy, 555, 4);
  // A different sender with the same seq is another message.
  rx.deliver(copy, 556, 4);
  // An end marker from port 557, delivered after: a copy that must not reach a subscriber would have come before it.
  rx.deliver(encodeMessage({ type: 0x10, seq: 6, pid: 77, payload: Buffer.from('end') }), 557, 4);
  await waitFor('the end marker at both subscribers', () => [both, only4].every((s) => s.got.some((m) => m.portId === 557)), {
    timeoutMs: 5000,
  });
  for (const s of [both, only4]) s.got = s.got.filter((m) => m.portId !== 557);
  assert.deepEqual(
    both.got.map((m) => [m.group, m.portId]),
    [
      [2, 555],
      [4, 556],
    ],
  );
  assert.deepEqual(
    only4.got.map((m) => [m.group, m.portId]),
    [
      [4, 555],
      [4, 556],
    ],
  );
  await bus.close();
});

test("a malformed datagram: the messages before the fault are routed and kept, its group's subscribers told, the reason counted", async () => {
  const { bus, rx, metrics } = makeBus(null);
  const on3 = new Sub([3]);
  const on4 = new Sub([4]);
  bus.subscribe(on3);
  bus.subscribe(on4);
  const bad = Buffer.concat([encodeMessage({ type: 0x10, seq: 1, pid: 5, payload: Buffer.from('ok') }), Buffer.from([9, 9, 9])]);
  rx.deliver(bad, 777, 3);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    on3.got.map((m) => [m.payload.toString(), m.cursor]),
    [['ok', `${bus.ring.epoch}-1`]],
  );
  assert.deepEqual(on3.bad, [{ group: 3, portId: 777, reason: 'ETOOSHORT', offset: 20, length: bad.length }]);
  assert.equal(on3.flushes, 1, 'one flush per batch');
  assert.deepEqual([on4.got, on4.bad, on4.flushes], [[], [], 0], 'other groups hear nothing of it');
  assert.equal(metrics.rejected.get({ reason: 'ETOOSHORT' }), 1);
  assert.equal(metrics.received.get({ group: 3 }), 1);
  await bus.close();
});

test('what reaches the tx socket unasked is counted once, as unclaimed; a kernel ack nobody waits for is counted by code', async () => {
  const { bus, tx, metrics } = makeBus(null);
  tx.deliver(encodeMessage({ type: 0x10, seq: 1, pid: 5, payload: Buffer.from('stray') }), 999, 0);
  tx.deliver(
    encodeMessage({
      type: NLMSG_ERROR,
      seq: 4,
      pid: tx.portId,
      payload: encodeAckPayload(0, { length: 16, type: 0x10, flags: 5, seq: 4, pid: tx.portId }),
    }),
  );
  await new Promise((r) => setImmediate(r));
  assert.equal(metrics.received.total(), 1);
  assert.equal(metrics.received.get({ group: 'unclaimed' }), 1);
  assert.equal(metrics.kernelAcks.get({ code: 'OK' }), 1);
  await bus.close();
});

// The send planner (daemon/netlink/send_plan.ts), pure: every leg kind, every
// refusal, what each sendto outcome makes of a destination, the report or
// the error when nothing went anywhere; and how the HTTP side answers each
// of the netlink side's errors (problemOf).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NLM_F_ACK, NLM_F_REQUEST } from '../../addon/codec';
import { DNL_BCAST_GROUPS_MAX, DnlMsgType, decodeBcast, decodeRelay } from '../../addon/dummy_netlink';
import type { SendResult } from '../../addon/types';
import { problemOf } from '../../daemon/errors';
import { BusError, WHAT, type BusErrorCode } from '../../daemon/netlink/errors';
import { toGroupList } from '../../daemon/netlink/groups';
import type { ProtocolInfo } from '../../daemon/netlink/protocol';
import { SendError, SendTally, planSend, type SendFailure, type SendPlan, type SendRequest } from '../../daemon/netlink/send_plan';

const USERSOCK: ProtocolInfo = { name: 'usersock', number: 2, kernelEndpoint: false, module: null, maxGroup: 32, reason: 'test' };
const DUMMY: ProtocolInfo = {
  name: 'dummy',
  number: 25,
  kernelEndpoint: true,
  module: { unit: 25, r_grps: 0, b_grp: 0, period_ms: 0, ngroups: 1024, allow_unpriv: false },
  maxGroup: 1024,
  reason: 'test',
};
const SMALL_DUMMY: ProtocolInfo = { ...DUMMY, maxGroup: 64 };
const CUSTOM: ProtocolInfo = { name: 'custom', number: 16, kernelEndpoint: true, module: null, maxGroup: 32, reason: 'test' };

const data = Buffer.from('hi');
const groups = (...g: number[]): SendRequest['groups'] => toGroupList(g);

function refused(req: SendRequest, protocol: ProtocolInfo, code: BusErrorCode, what: string, message: RegExp): void {
  assert.throws(
    () => planSend(req, protocol),
    (e: unknown) => {
      assert.ok(e instanceof BusError, String(e));
      assert.equal(e.code, code);
      assert.equal(e.what, what);
      assert.match(e.message, message);
      return true;
    },
  );
}

test('group legs: one sendto per group with its nl_groups bit, DATA by default, REQUEST flags', () => {
  const plan = planSend({ groups: groups(2, 4, 32), data }, USERSOCK);
  assert.deepEqual(plan.legs, [
    { kind: 'group', group: 2, mask: 0b10 },
    { kind: 'group', group: 4, mask: 0b1000 },
    { kind: 'group', group: 32, mask: 0x80000000 },
  ]);
  assert.equal(plan.type, DnlMsgType.DATA);
  assert.equal(plan.flags, NLM_F_REQUEST);
  assert.equal(plan.payload, data);
  assert.equal(plan.ack, false);
  assert.equal(plan.what, 'groups');
});

test('port and kernel legs: a port id other than 0 after the groups; port 0 alone, or reached by the group legs', () => {
  assert.deepEqual(planSend({ groups: groups(3), pid: 4242, data }, USERSOCK).legs, [
    { kind: 'group', group: 3, mask: 0b100 },
    { kind: 'port', portId: 4242 },
  ]);
  const port = planSend({ pid: 4242, data, type: 0x30, flags: 0x1_0005 }, USERSOCK);
  assert.deepEqual(port.legs, [{ kind: 'port', portId: 4242 }]);
  assert.equal(port.type, 0x30);
  assert.equal(port.flags, 0x5, 'flags are 16 bits');
  assert.equal(port.what, 'pid');
  assert.deepEqual(planSend({ pid: 0, data }, DUMMY).legs, [{ kind: 'kernel' }]);
  assert.deepEqual(planSend({ groups: groups(3), pid: 0, data }, DUMMY).legs, [{ kind: 'group', group: 3, mask: 0b100 }]);
  const acked = planSend({ groups: groups(3), data, ack: true }, CUSTOM);
  assert.equal(acked.flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.equal(acked.ack, true);
});

test('bcast leg: groups above 32 go as one BCAST naming every group; relay leg: one RELAY to the port', () => {
  const wide = planSend({ groups: groups(2, 40), data, ack: true }, DUMMY);
  assert.deepEqual(wide.legs, [{ kind: 'bcast', groups: [2, 40] }]);
  assert.equal(wide.type, DnlMsgType.BCAST);
  assert.equal(wide.flags, NLM_F_REQUEST | NLM_F_ACK);
  assert.deepEqual(decodeBcast(wide.payload), { groups: [2, 40], data });
  assert.equal(wide.what, 'groups');
  const relay = planSend({ relay: 77, data }, DUMMY);
  assert.deepEqual(relay.legs, [{ kind: 'relay', portId: 77 }]);
  assert.equal(relay.type, DnlMsgType.RELAY);
  assert.deepEqual(decodeRelay(relay.payload), { portId: 77, data });
  assert.equal(relay.what, 'relay');
});

test('every refusal of the planner, in its own words', () => {
  refused({ data }, DUMMY, 'NO_DESTINATION', 'groups', /^name a destination: groups, pid or relay$/);
  refused({ relay: 5, groups: groups(2), data }, DUMMY, 'RELAY_NOT_ALONE', 'relay', /goes to the kernel alone/);
  refused({ relay: 5, pid: 7, data }, DUMMY, 'RELAY_NOT_ALONE', 'relay', /goes to the kernel alone/);
  refused(
    { relay: 5, data },
    USERSOCK,
    'NEEDS_MODULE',
    'relay',
    /^RELAY is a dummy_netlink request; protocol usersock \(2\) has no such kernel endpoint$/,
  );
  refused(
    { groups: groups(2, 40), data },
    CUSTOM,
    'NEEDS_MODULE',
    'groups',
    /^groups above 32 need the kernel's BCAST \(dummy_netlink\); protocol custom \(16\) has none$/,
  );
  refused(
    { groups: groups(2, 65), data },
    SMALL_DUMMY,
    'GROUP_RANGE',
    'groups',
    /^group 65 is above the 64 groups of protocol dummy \(25\)$/,
  );
  const many = toGroupList(Array.from({ length: DNL_BCAST_GROUPS_MAX + 1 }, (_, i) => 33 + i));
  refused(
    { groups: many, data },
    DUMMY,
    'BCAST_TOO_WIDE',
    'groups',
    new RegExp(`^one BCAST names at most ${DNL_BCAST_GROUPS_MAX} groups, got ${DNL_BCAST_GROUPS_MAX + 1}$`),
  );
  assert.equal(planSend({ groups: toGroupList(many.slice(1)), data }, DUMMY).legs.length, 1, 'the most one BCAST names');
  refused({ groups: groups(40), type: 0x30, data }, DUMMY, 'BCAST_TYPE', 'type', /BCAST delivers DATA \(16\)/);
  refused(
    { groups: groups(2), ack: true, data },
    USERSOCK,
    'NO_KERNEL_ENDPOINT',
    'ack',
    /^protocol usersock \(2\) has no kernel endpoint to acknowledge$/,
  );
  refused({ pid: 9, ack: true, data }, DUMMY, 'ACK_WITHOUT_KERNEL', 'ack', /^only the kernel acknowledges/);
  refused(
    { pid: 0, data },
    USERSOCK,
    'NO_KERNEL_ENDPOINT',
    'pid',
    /^port 0 is the kernel, and protocol usersock \(2\) has no kernel endpoint$/,
  );
});

/** Runs a plan's legs against scripted sendto outcomes (in leg order). */
function run(
  plan: SendPlan,
  protocol: ProtocolInfo,
  outcomes: (SendResult | SendFailure)[],
  acks: { errno: number; code: string }[] | null = null,
): ReturnType<SendTally['finish']> {
  const tally = new SendTally(plan, protocol);
  plan.legs.forEach((leg, i) => tally.record(leg, outcomes[i]));
  return tally.finish(9, 1234, 20, acks);
}
const ok: SendResult = { broadcastGroup: 0, unicast: 'delivered' };
const noKernel: SendResult = { broadcastGroup: 2, unicast: 'no-kernel-endpoint' };
const fail = (code: string): SendFailure => ({ code, message: `sendto: ${code}` });

function sendError(f: () => unknown, code: BusErrorCode, what: string, errno: string): SendError {
  let caught: unknown;
  try {
    f();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof SendError, String(caught));
  assert.equal(caught.code, code);
  assert.equal(caught.what, what);
  assert.equal(caught.errno, errno);
  assert.equal(caught.seq, 9);
  return caught;
}

test('group legs on a protocol without a kernel socket: delivered, and port 0 told once after them', () => {
  const plan = planSend({ groups: groups(2, 4), pid: 4242, data }, USERSOCK);
  const r = run(plan, USERSOCK, [noKernel, noKernel, ok]);
  assert.deepEqual(r, {
    seq: 9,
    portId: 1234,
    type: DnlMsgType.DATA,
    flags: NLM_F_REQUEST,
    bytes: 20,
    ok: true,
    results: [
      { to: 'group', group: 2, result: 'delivered' },
      { to: 'group', group: 4, result: 'delivered' },
      { to: 'kernel', result: 'no-kernel-endpoint' },
      { to: 'port', portId: 4242, result: 'delivered' },
    ],
  });
});

test('acks pair with the kernel-bound legs in send order; a missing one is ETIMEDOUT', () => {
  const plan = planSend({ groups: groups(2, 4), data, ack: true }, DUMMY);
  const r = run(plan, DUMMY, [ok, ok], [{ errno: 0, code: 'OK' }]);
  assert.deepEqual(r.results, [
    { to: 'group', group: 2, result: 'delivered', ack: { errno: 0, code: 'OK' } },
    { to: 'group', group: 4, result: 'delivered', ack: { errno: null, code: 'ETIMEDOUT' } },
  ]);
  const kernel = run(planSend({ pid: 0, data, ack: true }, DUMMY), DUMMY, [ok], [{ errno: 22, code: 'EINVAL' }]);
  assert.deepEqual(kernel.results, [{ to: 'kernel', result: 'delivered', ack: { errno: 22, code: 'EINVAL' } }]);
  const tally = new SendTally(planSend({ groups: groups(2), pid: 5, data, ack: true }, DUMMY), DUMMY);
  tally.record({ kind: 'group', group: 2, mask: 2 }, ok);
  tally.record({ kind: 'port', portId: 5 }, ok);
  assert.equal(tally.ackSlots.length, 1, 'a port does not ack: only the group leg waits for one');
});

test('bcast and relay legs: the kernel request is the one acknowledged; a failed one fails every group', () => {
  const wide = planSend({ groups: groups(2, 40), data, ack: true }, DUMMY);
  assert.deepEqual(run(wide, DUMMY, [ok], [{ errno: 0, code: 'OK' }]).results, [
    { to: 'group', group: 2, result: 'kernel-broadcast' },
    { to: 'group', group: 40, result: 'kernel-broadcast' },
    { to: 'kernel', result: 'delivered', ack: { errno: 0, code: 'OK' } },
  ]);
  const e = sendError(() => run(wide, DUMMY, [fail('EPERM')]), 'SEND_FAILED', 'groups', 'EPERM');
  assert.equal(e.message, 'send failed: sendto: EPERM');
  assert.deepEqual(e.results, [
    { to: 'group', group: 2, result: 'error', code: 'EPERM' },
    { to: 'group', group: 40, result: 'error', code: 'EPERM' },
    { to: 'kernel', result: 'error', code: 'EPERM' },
  ]);
  const relay = planSend({ relay: 77, data }, DUMMY);
  assert.deepEqual(run(relay, DUMMY, [ok]).results, [{ to: 'relay', portId: 77, result: 'delivered' }]);
  assert.equal(run(relay, DUMMY, [ok]).type, DnlMsgType.RELAY);
  sendError(() => run(relay, DUMMY, [fail('ENOBUFS')]), 'SEND_FAILED', 'relay', 'ENOBUFS');
});

test('a port that is gone, busy or failing: the error when it was the only destination, a result otherwise', () => {
  const port = planSend({ pid: 4242, data }, USERSOCK);
  const gone = sendError(() => run(port, USERSOCK, [fail('ECONNREFUSED')]), 'PORT_UNREACHABLE', 'pid', 'ECONNREFUSED');
  assert.equal(gone.message, 'no socket is bound to port id 4242 on protocol 2');
  assert.deepEqual(gone.results, [{ to: 'port', portId: 4242, result: 'port-unreachable', code: 'ECONNREFUSED' }]);
  const busy = sendError(() => run(port, USERSOCK, [fail('EAGAIN')]), 'PEER_BUSY', 'pid', 'EAGAIN');
  assert.equal(busy.message, 'port 4242 is not reading (its receive queue is full); retry later');
  sendError(() => run(port, USERSOCK, [fail('EPERM')]), 'SEND_FAILED', 'pid', 'EPERM');
  const kernel = planSend({ pid: 0, data }, DUMMY);
  assert.deepEqual(sendError(() => run(kernel, DUMMY, [fail('ECONNREFUSED')]), 'SEND_FAILED', 'pid', 'ECONNREFUSED').results, [
    { to: 'kernel', result: 'no-kernel-endpoint', code: 'ECONNREFUSED' },
  ]);
  sendError(() => run(kernel, DUMMY, [fail('EAGAIN')]), 'PEER_BUSY', 'pid', 'EAGAIN');
  // The groups went: the report says what failed, nothing is thrown.
  const mixed = run(planSend({ groups: groups(3, 5), pid: 4242, data }, USERSOCK), USERSOCK, [noKernel, fail('ENOBUFS'), fail('EAGAIN')]);
  assert.equal(mixed.ok, false);
  assert.deepEqual(mixed.results, [
    { to: 'group', group: 3, result: 'delivered' },
    { to: 'group', group: 5, result: 'error', code: 'ENOBUFS' },
    { to: 'kernel', result: 'no-kernel-endpoint' },
    { to: 'port', portId: 4242, result: 'busy', code: 'EAGAIN' },
  ]);
  sendError(
    () => run(planSend({ groups: groups(3, 5), data }, USERSOCK), USERSOCK, [fail('EPERM'), fail('ENOBUFS')]),
    'SEND_FAILED',
    'groups',
    'EPERM',
  );
});

test("problemOf: each of the netlink side's errors answers as the API always has", () => {
  const cases: [BusError, { status: number; code: string; field?: string; errno?: string; detail: string }][] = [
    [
      new BusError('SHUTTING_DOWN', 'the bridge is shutting down'),
      { status: 503, code: 'SHUTTING_DOWN', detail: 'the bridge is shutting down' },
    ],
    [
      new BusError('NO_DESTINATION', 'name a destination: groups, pid or relay', { what: 'groups' }),
      { status: 400, code: 'VALIDATION', field: 'groups', detail: 'groups: name a destination: groups, pid or relay' },
    ],
    [
      new BusError('RELAY_NOT_ALONE', 'alone', { what: 'relay' }),
      { status: 400, code: 'VALIDATION', field: 'relay', detail: 'relay: alone' },
    ],
    [new BusError('NEEDS_MODULE', 'x', { what: 'relay' }), { status: 409, code: 'NEEDS_KERNEL', field: 'relay', detail: 'relay: x' }],
    [
      new BusError('GROUP_RANGE', 'group 65 is above', { what: 'list' }),
      { status: 400, code: 'BAD_GROUPS', field: 'list', detail: 'list: group 65 is above' },
    ],
    [
      new BusError('GROUP_RANGE', 'group 65 is above', { what: WHAT.subscription }),
      { status: 400, code: 'BAD_GROUPS', field: 'mask', detail: 'mask: group 65 is above' },
    ],
    [new BusError('BCAST_TOO_WIDE', 'x', { what: 'groups' }), { status: 400, code: 'BAD_GROUPS', field: 'groups', detail: 'groups: x' }],
    [new BusError('BCAST_TYPE', 'x', { what: 'type' }), { status: 400, code: 'VALIDATION', field: 'type', detail: 'type: x' }],
    [new BusError('NO_KERNEL_ENDPOINT', 'x', { what: 'ack' }), { status: 409, code: 'NO_KERNEL_ENDPOINT', field: 'ack', detail: 'ack: x' }],
    [new BusError('NO_KERNEL_ENDPOINT', 'no STATS here'), { status: 409, code: 'NO_KERNEL_ENDPOINT', detail: 'no STATS here' }],
    [new BusError('ACK_WITHOUT_KERNEL', 'x', { what: 'ack' }), { status: 400, code: 'VALIDATION', field: 'ack', detail: 'ack: x' }],
    [
      new SendError('PEER_BUSY', 'port 5 is not reading', { what: 'pid', errno: 'EAGAIN' }, [], 3),
      { status: 503, code: 'PEER_BUSY', field: 'pid', errno: 'EAGAIN', detail: 'pid: port 5 is not reading' },
    ],
    [
      new SendError('PORT_UNREACHABLE', 'no socket', { what: 'pid', errno: 'ECONNREFUSED' }, [], 3),
      { status: 404, code: 'PORT_UNREACHABLE', field: 'pid', errno: 'ECONNREFUSED', detail: 'pid: no socket' },
    ],
    [
      new SendError('SEND_FAILED', 'send failed: x', { what: 'groups', errno: 'EPERM' }, [], 3),
      { status: 403, code: 'PERMISSION_DENIED', field: 'groups', errno: 'EPERM', detail: 'send failed: x' },
    ],
    [
      new SendError('SEND_FAILED', 'send failed: x', { what: 'pid', errno: 'EMSGSIZE' }, [], 3),
      { status: 413, code: 'PAYLOAD_TOO_LARGE', field: 'pid', errno: 'EMSGSIZE', detail: 'send failed: x' },
    ],
    [
      new BusError('SYSCALL', 'joining the groups failed: x', { what: WHAT.subscription, errno: 'EPERM' }),
      { status: 403, code: 'PERMISSION_DENIED', field: 'mask', errno: 'EPERM', detail: 'mask: joining the groups failed: x' },
    ],
    [
      new BusError('SYSCALL', "opening the client's socket failed: x", { what: WHAT.clientSocket, errno: 'EMFILE' }),
      { status: 502, code: 'SEND_FAILED', field: 'unicast', errno: 'EMFILE', detail: "unicast: opening the client's socket failed: x" },
    ],
    [
      new BusError('SYSCALL', 'STATS request failed: x', { errno: 'ENOBUFS' }),
      { status: 503, code: 'PEER_BUSY', errno: 'ENOBUFS', detail: 'STATS request failed: x' },
    ],
    [
      new BusError('KERNEL_REFUSED', 'the kernel refused STATS: EINVAL', { errno: 'EINVAL' }),
      { status: 400, code: 'VALIDATION', errno: 'EINVAL', detail: 'the kernel refused STATS: EINVAL' },
    ],
    [new BusError('KERNEL_TIMEOUT', 'no reply'), { status: 504, code: 'KERNEL_TIMEOUT', detail: 'no reply' }],
    [
      new BusError('BAD_CURSOR', 'x is not a cursor', { what: 'Last-Event-ID' }),
      { status: 400, code: 'VALIDATION', field: 'Last-Event-ID', detail: 'Last-Event-ID: x is not a cursor' },
    ],
  ];
  const seen = new Set<string>();
  for (const [err, want] of cases) {
    seen.add(err.code);
    const p = problemOf(err);
    assert.ok(p, err.code);
    const body = p.body();
    assert.equal(body.status, want.status, err.code);
    assert.equal(body.code, want.code, err.code);
    assert.equal(body.field, want.field, err.code);
    assert.equal(body.errno, want.errno, err.code);
    assert.equal(body.detail, want.detail, err.code);
    if (err instanceof SendError) assert.deepEqual([body.results, body.seq], [[], 3], 'what happened per destination goes along');
    else assert.equal('results' in body, false);
  }
  const codes: BusErrorCode[] = [
    'SHUTTING_DOWN',
    'NO_DESTINATION',
    'RELAY_NOT_ALONE',
    'NEEDS_MODULE',
    'GROUP_RANGE',
    'BCAST_TOO_WIDE',
    'BCAST_TYPE',
    'NO_KERNEL_ENDPOINT',
    'ACK_WITHOUT_KERNEL',
    'PEER_BUSY',
    'PORT_UNREACHABLE',
    'SEND_FAILED',
    'SYSCALL',
    'KERNEL_REFUSED',
    'KERNEL_TIMEOUT',
    'BAD_CURSOR',
  ];
  assert.deepEqual([...seen].sort(), [...codes].sort(), 'every code is answered');
  assert.equal(problemOf(new Error('x')), null, 'anything else is an internal error');
});

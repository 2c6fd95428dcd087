// NetlinkSocket against the real kernel on NETLINK_USERSOCK: unicast,
// broadcast by mask, membership, truncation, credentials, error codes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { NetlinkError, NetlinkSocket, NetworkNamespace } from '../../addon/index';
import type { Datagram } from '../../addon/types';
import { G, NETLINK_USERSOCK, bit, collect, isOurs, message, open } from './support/netlink';
import { isRealRoot } from '../support/prerequisites';

function oneOf(sock: NetlinkSocket, timeoutMs = 1000): Promise<Datagram[]> {
  return collect(sock, (all) => all.filter(isOurs).length >= 1, timeoutMs).then((all) => all.filter(isOurs));
}

function throwsNetlink(fn: () => unknown, code: string, syscall: string): NetlinkError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof NetlinkError, `expected a NetlinkError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.equal(caught.syscall, syscall);
  assert.ok(caught.errno < 0);
  return caught;
}

test('open binds: kernel-assigned port ids differ, a chosen port id is kept', (t) => {
  const a = open();
  const b = open();
  t.after(() => {
    a.close();
    b.close();
  });
  assert.equal(a.protocol, NETLINK_USERSOCK);
  assert.ok(a.portId !== 0 && b.portId !== 0);
  assert.notEqual(a.portId, b.portId);
  const chosen = 0x7e000000 + (process.pid & 0xffff);
  const c = open({ portId: chosen });
  t.after(() => c.close());
  assert.equal(c.portId, chosen);
  const err = throwsNetlink(() => open({ portId: chosen }), 'EADDRINUSE', 'bind');
  assert.equal(err.errno, -98);
  assert.match(err.message, new RegExp(`bind protocol 2 port ${chosen} groups 0x0: address already in use`));
});

test('unicast both ways carries the bytes, the sender port id and group 0', async (t) => {
  const a = open();
  const b = open();
  t.after(() => {
    a.close();
    b.close();
  });
  const toB = message(1, Buffer.from('a to b'));
  const gotB = oneOf(b);
  assert.deepEqual(a.send(toB, { portId: b.portId }), { broadcastGroup: 0, unicast: 'delivered' });
  const [db] = await gotB;
  assert.deepEqual(db.data, toB);
  assert.equal(db.portId, a.portId);
  assert.equal(db.group, 0);
  assert.equal(db.truncated, false);
  assert.equal(db.length, toB.length);
  assert.equal(db.uid, undefined);

  const toA = message(2, Buffer.from('b to a, a little longer'));
  const gotA = oneOf(a);
  b.send(toA, { portId: a.portId });
  const [da] = await gotA;
  assert.deepEqual(da.data, toA);
  assert.equal(da.portId, b.portId);
});

test('a send to mask 0b1010 reaches group 2 only (ffs), then reports no kernel endpoint', async (t) => {
  const r2 = open({ groups: 0b0010 });
  const r4 = open({ groups: 0b1000 });
  const w = open();
  t.after(() => [r2, r4, w].forEach((s) => s.close()));
  const got2 = oneOf(r2, 1000);
  const got4 = oneOf(r4, 400);
  const res = w.send(message(3), { groups: 0b1010 });
  assert.deepEqual(res, { broadcastGroup: 2, unicast: 'no-kernel-endpoint' });
  const [d2] = await got2;
  assert.equal(d2.group, 2);
  assert.equal(d2.portId, w.portId);
  assert.deepEqual(await got4, [], 'group 4 must not see a send to mask 0b1010');
});

test('a reader bound to several groups gets one copy per group broadcast, tagged with its group', async (t) => {
  const r = open({ groups: bit(G.a) | bit(G.b) | bit(G.c) });
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  const got = collect(r, (all) => all.filter(isOurs).length >= 4, 1500);
  for (const g of [G.a, G.b, G.c]) w.send(message(g), { groups: bit(g) });
  // A mask covering two of its groups still delivers once, to the lowest.
  const res = w.send(message(100), { groups: bit(G.b) | bit(G.c) });
  assert.equal(res.broadcastGroup, G.b);
  const ours = (await got).filter(isOurs);
  assert.deepEqual(
    ours.map((d) => [d.data.readUInt32LE(8), d.group]),
    [
      [G.a, G.a],
      [G.b, G.b],
      [G.c, G.c],
      [100, G.b],
    ],
  );
  // Nothing more arrives.
  assert.deepEqual((await collect(r, () => false, 300)).filter(isOurs), []);
});

test('join, leave and memberships(); groups 32 and 33 on USERSOCK', async (t) => {
  const r = open({ groups: bit(G.a) });
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  assert.deepEqual(r.memberships(), [G.a]);
  r.join(G.d);
  assert.deepEqual(r.memberships(), [G.a, G.d]);
  let got = oneOf(r);
  w.send(message(7), { groups: bit(G.d) });
  const [d] = await got;
  assert.equal(d.group, G.d);

  r.leave(G.d);
  assert.deepEqual(r.memberships(), [G.a]);
  got = oneOf(r, 300);
  w.send(message(8), { groups: bit(G.d) });
  assert.deepEqual(await got, []);

  r.join(32);
  assert.deepEqual(r.memberships(), [G.a, 32]);
  got = oneOf(r);
  w.send(message(9), { groups: 0x80000000 });
  assert.equal((await got)[0].group, 32);
  r.leave(32);

  // NETLINK_USERSOCK has 32 groups: the kernel refuses 33 with EINVAL.
  const e = throwsNetlink(() => r.join(33), 'EINVAL', 'setsockopt');
  assert.match(e.message, /NETLINK_ADD_MEMBERSHIP group 33 on protocol 2: invalid argument/);
  assert.throws(() => r.join(0), TypeError);
  assert.throws(() => r.join(1.5), TypeError);
  assert.deepEqual(r.memberships(), [G.a]);
});

test('a datagram longer than maxDatagramBytes is reported truncated with its real length', async (t) => {
  const r = open({ maxDatagramBytes: 32 });
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  const long = message(1, Buffer.alloc(84, 0x61)); // 100 bytes
  const exact = message(2, Buffer.alloc(16, 0x62)); // 32 bytes
  const got = collect(r, (all) => all.length >= 2);
  w.send(long, { portId: r.portId });
  w.send(exact, { portId: r.portId });
  const [d1, d2] = await got;
  assert.equal(d1.truncated, true);
  assert.equal(d1.length, 100);
  assert.equal(d1.data.length, 32);
  assert.deepEqual(d1.data, long.subarray(0, 32));
  assert.equal(d2.truncated, false);
  assert.equal(d2.length, 32);
  assert.deepEqual(d2.data, exact);
});

test('passCredentials reports the sender uid', async (t) => {
  const r = open({ passCredentials: true });
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  const got = oneOf(r);
  w.send(message(1), { portId: r.portId });
  const [d] = await got;
  assert.equal(d.uid, process.getuid?.());
});

test('setReceiveBuffer returns the size the kernel accounts (twice the request)', (t) => {
  const s = open();
  t.after(() => s.close());
  assert.equal(s.setReceiveBuffer(64 * 1024), 128 * 1024);
  // SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN in the initial user
  // namespace (real root); a non-root run's user namespace gets SO_RCVBUF's cap.
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const asked = 64 * 1024 * 1024;
  assert.equal(s.setReceiveBuffer(asked), 2 * (isRealRoot() ? asked : Math.min(asked, rmemMax)));
});

test('error codes: bad protocol, missing port, port 0 alone, groups with a missing port', async (t) => {
  const e = throwsNetlink(() => NetlinkSocket.open({ protocol: 99 }), 'EPROTONOSUPPORT', 'socket');
  assert.equal(e.errno, -93);
  assert.match(e.message, /socket protocol 99: protocol not supported/);

  const w = open();
  const gone = open();
  const missing = gone.portId;
  gone.close();
  const r = open({ groups: bit(G.a) });
  t.after(() => {
    w.close();
    r.close();
  });
  const e1 = throwsNetlink(() => w.send(message(1), { portId: missing }), 'ECONNREFUSED', 'sendto');
  assert.equal(e1.errno, -111);
  assert.equal(e1.message, `sendto port ${missing} groups 0x0: connection refused`);
  assert.equal(e1.broadcastGroup, undefined);

  // Port 0 without groups is a send to the kernel, which USERSOCK lacks.
  throwsNetlink(() => w.send(message(2)), 'ECONNREFUSED', 'sendto');

  // Groups and a missing port: the broadcast goes out, then the unicast fails.
  const got = oneOf(r);
  const e2 = throwsNetlink(() => w.send(message(3), { portId: missing, groups: bit(G.a) }), 'ECONNREFUSED', 'sendto');
  assert.equal(e2.broadcastGroup, G.a);
  const [d] = await got;
  assert.equal(d.data.readUInt32LE(8), 3);
});

test('a unicast to a full peer fails with EAGAIN and the peer counts no drop', (t) => {
  const r = open({ receiveBufferBytes: 4096 });
  const w = open();
  t.after(() => {
    r.close();
    w.close();
  });
  let sent = 0;
  let err: unknown;
  for (; sent < 10_000; sent++) {
    try {
      w.send(message(sent, Buffer.alloc(200)), { portId: r.portId });
    } catch (e) {
      err = e;
      break;
    }
  }
  assert.ok(err instanceof NetlinkError);
  assert.equal(err.code, 'EAGAIN');
  assert.ok(sent > 0 && sent < 10_000);
  assert.equal(r.drops(), 0);
});

test('argument checks throw TypeError naming the argument', (t) => {
  const s = open();
  t.after(() => s.close());
  assert.throws(() => s.send('text' as unknown as Buffer), { name: 'TypeError', message: /"data"/ });
  assert.throws(() => s.send(Buffer.alloc(1), { portId: -1 }), { name: 'TypeError', message: /"dest.portId"/ });
  assert.throws(() => s.send(Buffer.alloc(1), { groups: 2 ** 32 }), { name: 'TypeError', message: /"dest.groups"/ });
  assert.throws(() => NetlinkSocket.open({ protocol: 'x' as unknown as number }), { name: 'TypeError', message: /"protocol"/ });
  assert.throws(() => open({ maxDatagramBytes: 0 }), { name: 'TypeError', message: /"maxDatagramBytes"/ });
  assert.throws(() => s.setReceiveBuffer(-5), { name: 'TypeError', message: /"bytes"/ });
  assert.throws(() => s.setNoEnobufs(1 as unknown as boolean), { name: 'TypeError', message: /"on"/ });
});

test('every operation on a closed socket throws EBADF; close() is idempotent', (t) => {
  const s = open();
  s.close();
  s.close();
  assert.equal(s.isClosed, true);
  throwsNetlink(() => s.send(Buffer.alloc(16), { portId: 1 }), 'EBADF', 'sendto');
  throwsNetlink(() => s.join(1), 'EBADF', 'setsockopt');
  throwsNetlink(() => s.memberships(), 'EBADF', 'getsockopt');
  throwsNetlink(() => s.drops(), 'EBADF', 'getsockopt');
  // A listener on a closed socket does not restart anything.
  s.on('datagrams', () => assert.fail('closed socket delivered'));
  t.after(() => s.removeAllListeners());
});

test('NetworkNamespace.open refuses what is not a network namespace, with code and syscall', () => {
  throwsNetlink(() => NetworkNamespace.open('/nonexistent/netns'), 'ENOENT', 'open');
  const notNs = throwsNetlink(() => NetworkNamespace.open('/etc/passwd'), 'EINVAL', 'ioctl');
  assert.match(notNs.message, /\/etc\/passwd is not a namespace file/);
  const uts = throwsNetlink(() => NetworkNamespace.open('/proc/self/ns/uts'), 'EINVAL', 'ioctl');
  assert.match(uts.message, /not a network namespace/);
  assert.throws(() => NetworkNamespace.open(''), { name: 'TypeError', message: /"path"/ });
  assert.throws(() => NetlinkSocket.open({ protocol: NETLINK_USERSOCK, netns: { path: '/x', close() {} } }), {
    name: 'TypeError',
    message: /"netns"/,
  });
});

test('a socket opened with netns lives in that namespace: its peers there reach it, a broadcast at home does not; the thread stays home', (t) => {
  if (!isRealRoot()) return t.skip('needs root (ip netns add, setns)');
  const name = `nlb-${process.pid}-sock`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'delete', name]));
  const home = readlinkSync('/proc/thread-self/ns/net');
  const ns = NetworkNamespace.open(`/run/netns/${name}`);
  // Port ids are per namespace: one bound in there is unknown at home, and can be bound at home too.
  const portId = (0x7e000000 | (process.pid & 0xffffff)) >>> 0;
  const inNs = open({ portId, groups: bit(G.a), netns: ns });
  const peerInNs = open({ netns: ns });
  const atHome = open({ groups: bit(G.a) });
  t.after(() => [inNs, peerInNs, atHome].forEach((s) => s.close()));
  assert.equal(readlinkSync('/proc/thread-self/ns/net'), home, 'the thread went home');
  assert.equal(ns.path, `/run/netns/${name}`);
  assert.equal(inNs.portId, portId);
  assert.throws(() => atHome.send(message(1), { portId }), { code: 'ECONNREFUSED' });
  open({ portId }).close();
  peerInNs.send(message(2), { portId: inNs.portId });
  const seen: Datagram[] = [];
  inNs.on('datagrams', (b) => seen.push(...b));
  const homeSeen: Datagram[] = [];
  atHome.on('datagrams', (b) => homeSeen.push(...b));
  peerInNs.send(message(3), { groups: bit(G.a) });
  return new Promise<void>((resolve) => setTimeout(resolve, 300)).then(() => {
    assert.deepEqual(
      seen.filter(isOurs).map((d) => d.data.readUInt32LE(8)),
      [2, 3],
    );
    assert.equal(homeSeen.filter(isOurs).length, 0, 'the broadcast in the namespace stayed there');
    ns.close();
    throwsNetlink(() => open({ netns: ns }), 'EBADF', 'setns');
  });
});

// Group membership of the shared receive socket (daemon/netlink/membership.ts):
// refcounted joins, the linger after the last subscriber, all-or-nothing joins.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { NetlinkError } from '../../addon/socket';
import { Memberships } from '../../daemon/netlink/membership';

class FakeRx {
  readonly calls: string[] = [];
  refuse = new Set<number>();
  join(g: number): void {
    if (this.refuse.has(g)) throw NetlinkError.fromErrno(-1, 'setsockopt', `join ${g}`);
    this.calls.push(`join ${g}`);
  }
  leave(g: number): void {
    this.calls.push(`leave ${g}`);
  }
}

const log = pino({ level: 'silent' });

test('joined once per group, left with the last subscriber when there is no linger', () => {
  const rx = new FakeRx();
  const m = new Memberships(rx, 0, log);
  m.take([2, 4]);
  m.take([4]);
  assert.deepEqual(rx.calls, ['join 2', 'join 4']);
  assert.deepEqual(m.counts(), { '2': 1, '4': 2 });
  m.give([2, 4]);
  assert.deepEqual(rx.calls.slice(2), ['leave 2']);
  m.give([4]);
  assert.deepEqual(rx.calls.slice(3), ['leave 4']);
  assert.deepEqual(m.groups(), []);
});

test('a group lingers after its last subscriber (count 0), a new one takes it back, then it is left after the linger', async () => {
  const rx = new FakeRx();
  const m = new Memberships(rx, 40, log);
  m.take([3]);
  m.give([3]);
  assert.deepEqual(m.counts(), { '3': 0 });
  m.take([3]);
  assert.deepEqual(rx.calls, ['join 3'], 'taken back without a second join');
  m.give([3]);
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(rx.calls, ['join 3', 'leave 3']);
  assert.deepEqual(m.groups(), []);
  m.take([5]);
  m.give([5]);
  m.close();
  assert.deepEqual(m.groups(), [], 'close ends the lingering');
  assert.deepEqual(rx.calls, ['join 3', 'leave 3', 'join 5'], 'and leaves nothing on a socket about to close');
});

test('a failed join gives back what the same call took and throws its error', () => {
  const rx = new FakeRx();
  const m = new Memberships(rx, 0, log);
  m.take([2]);
  rx.refuse.add(7);
  assert.throws(
    () => m.take([2, 6, 7, 9]),
    (e: unknown) => e instanceof NetlinkError && e.code === 'EPERM',
  );
  assert.deepEqual(m.counts(), { '2': 1 });
  assert.deepEqual(rx.calls, ['join 2', 'join 6', 'leave 6']);
});

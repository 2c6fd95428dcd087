import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DedupeWindow, copyKey } from '../../daemon/netlink/dedupe';

test('the key is sender port, nlmsg_pid, seq and type', () => {
  const keys = new Set([copyKey(1, 2, 3, 4), copyKey(9, 2, 3, 4), copyKey(1, 9, 3, 4), copyKey(1, 2, 9, 4), copyKey(1, 2, 3, 9)]);
  assert.equal(keys.size, 5);
  assert.equal(copyKey(1, 2, 3, 4), copyKey(1, 2, 3, 4));
  // No ambiguity from concatenation.
  assert.notEqual(copyKey(1, 23, 4, 5), copyKey(12, 3, 4, 5));
});

test('a second copy shares the served set of the first', () => {
  const w = new DedupeWindow<string>(1000);
  const first = w.served('k', 0);
  assert.equal(first.repeat, false);
  first.served.add('client-a');
  const second = w.served('k', 5);
  assert.equal(second.repeat, true);
  assert.ok(second.served.has('client-a'));
  assert.ok(!second.served.has('client-b'), 'a subscriber of only the second group still gets it');
});

test('after the window a key starts over (senders reuse seqs)', () => {
  const w = new DedupeWindow<string>(1000);
  w.served('k', 0).served.add('a');
  const later = w.served('k', 1001);
  assert.equal(later.repeat, false);
  assert.equal(later.served.size, 0);
});

test('the window is bounded in size and time', () => {
  const w = new DedupeWindow<number>(1000, 100);
  for (let i = 0; i < 1000; i++) w.served(`k${i}`, 0);
  assert.equal(w.size, 100);
  assert.equal(w.served('k999', 1).repeat, true, 'the newest stay');
  assert.equal(w.served('k0', 1).repeat, false, 'the oldest went');
  w.served('fresh', 5000);
  assert.equal(w.size, 1, 'expired entries are dropped on the next lookup');
});

test('forget removes a consumer from every entry', () => {
  const w = new DedupeWindow<string>(1000);
  w.served('a', 0).served.add('x');
  w.served('b', 0).served.add('x');
  w.forget('x');
  assert.ok(!w.served('a', 1).served.has('x'));
  assert.ok(!w.served('b', 1).served.has('x'));
});

test('the same key again on the same group is a new message, not a copy (senders that keep seq at 0)', () => {
  const w = new DedupeWindow<string>(1000);
  w.served('k', 0, 2).served.add('a');
  const copy = w.served('k', 1, 4);
  assert.equal(copy.repeat, true, 'a copy arrives on another group');
  assert.ok(copy.served.has('a'));
  const next = w.served('k', 2, 2);
  assert.equal(next.repeat, false, 'a second message on group 2 with the same seq');
  assert.equal(next.served.size, 0);
});

// daemon/fleet/host_sequences.ts: a host's runs counted apart (a restart's
// loss told from 1, two daemons as one host each on its own count), a drop
// notice told once whether it comes before its jump (live) or ahead of a
// reading behind it (the stream), its memory bounded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostSequences, MAX_KEPT_NOTICES, MAX_TRACKED_HOSTS, type SequenceGap } from '../../daemon/fleet/host_sequences';

function counter(): { s: HostSequences; told: string[] } {
  const told: string[] = [];
  const s = new HostSequences((g: SequenceGap) => told.push(`${g.host} ${g.reason} ${g.lost} ${g.from}..${g.to}`));
  return { s, told };
}

test('a jump is told with its range; a repeat is seen; a message overlapping what was seen gives only what is new', () => {
  const { s, told } = counter();
  assert.equal(s.message('A', 'r1', 1, 1), 0, 'the baseline');
  assert.equal(s.message('A', 'r1', 4, 2), 0);
  assert.equal(s.message('A', 'r1', 5, 1), 1, 'a resend');
  assert.equal(s.message('A', 'r1', 4, 4), 2, '4 and 5 seen, 6 and 7 new');
  assert.deepEqual(told, ['A sequence 2 2..3']);
});

test('a new run: its messages before the first seen are told from 1; the first run again (two daemons as one host) goes on from its own count; a third run forgets the oldest', () => {
  const { s, told } = counter();
  s.message('A', 'r1', 1, 1);
  s.message('A', 'r2', 1, 1); // a restart seen from its first message: nothing lost
  s.message('A', 'r3', 5, 1); // 1..4 of r3 lost
  s.message('A', 'r2', 2, 1); // r2 again: follows its own 1
  s.message('A', 'r3', 6, 1);
  s.message('A', 'r1', 2, 1); // r1 was forgotten when r3 came (two runs kept): a new run from 0, so 2 is 1 past it
  assert.deepEqual(told, ['A sequence 4 1..4', 'A sequence 1 1..1']);
});

test('live: a notice before its jump is told once as the publisher; one of a new run counts that run from its start', () => {
  const { s, told } = counter();
  s.message('A', 'r1', 1, 1);
  s.dropped({ host: 'A', run: 'r1', count: 3, from: 4, to: 6 });
  assert.equal(s.message('A', 'r1', 7, 1), 0);
  s.dropped({ host: 'A', run: 'r2', count: 2, from: 3, to: 4 }); // a new run: 1..2 never came, 3..4 dropped
  s.message('A', 'r2', 5, 1);
  s.dropped({ host: 'B', run: null, count: 1, from: 9, to: 9 }); // an unknown host, no run said: no jump to explain
  s.message('B', 'x', 20, 1);
  s.dropped({ host: 'A', run: 'r2', count: 1, from: 6, to: 9007199254740991 }); // forged: a far `to` moves nothing
  assert.equal(s.message('A', 'r2', 6, 1), 0, 'the next real message is delivered');
  assert.deepEqual(told, ['A sequence 2 2..3', 'A publisher 3 4..6', 'A sequence 2 1..2', 'A publisher 2 3..4']);
});

test('from the stream: a notice ahead of the reading is told when the reading reaches its jump, once; one the reading passed is not told again', () => {
  const { s, told } = counter();
  s.message('A', 'r1', 1, 1);
  s.dropped({ host: 'A', run: 'r1', count: 1, from: 1001, to: 1001 });
  assert.deepEqual(told, [], 'not yet: the reading is at 1');
  for (let n = 2; n <= 1000; n++) assert.equal(s.message('A', 'r1', n, 1), 0, `message ${n} is new`);
  s.message('A', 'r1', 1002, 1);
  assert.deepEqual(told, ['A publisher 1 1001..1001']);
  // The stored message came before its notice (the two travel apart): the jump was told, the notice is not told again.
  s.message('A', 'r1', 1005, 1);
  s.dropped({ host: 'A', run: 'r1', count: 2, from: 1003, to: 1004 });
  s.message('A', 'r1', 1006, 1);
  assert.deepEqual(told, ['A publisher 1 1001..1001', 'A sequence 2 1003..1004']);
});

test('from the stream: a jump wider than its notice is told in parts; a notice of a run not reached yet waits for it', () => {
  const { s, told } = counter();
  s.message('A', 'r1', 1, 1);
  s.dropped({ host: 'A', run: 'r1', count: 2, from: 5, to: 6 });
  s.dropped({ host: 'A', run: 'r2', count: 3, from: 1, to: 3 });
  s.message('A', 'r1', 9, 1); // 2..4 lost in transit, 5..6 dropped, 7..8 lost
  s.message('A', 'r2', 4, 1);
  assert.deepEqual(told, ['A sequence 3 2..4', 'A publisher 2 5..6', 'A sequence 2 7..8', 'A publisher 3 1..3']);
});

test('bounds: hosts remembered, and notices kept for a reading behind them', () => {
  const { s, told } = counter();
  for (let i = 0; i <= MAX_TRACKED_HOSTS; i++) s.message(`h${i}`, 'r', 10, 1);
  s.message('h0', 'r', 20, 1); // forgotten (the oldest): a new baseline, no gap
  s.message(`h${MAX_TRACKED_HOSTS}`, 'r', 12, 1); // remembered
  assert.deepEqual(told, [`h${MAX_TRACKED_HOSTS} sequence 1 11..11`]);

  const t = counter();
  t.s.message('A', 'r', 1, 1);
  for (let i = 0; i <= MAX_KEPT_NOTICES; i++) t.s.dropped({ host: 'A', run: 'r', count: 1, from: 10 + 2 * i, to: 10 + 2 * i });
  t.s.message('A', 'r', 10 + 2 * MAX_KEPT_NOTICES + 1, 1);
  // The oldest notice (at 10) was forgotten: its message is told as a sequence gap, the count the same.
  assert.equal(t.told.filter((x) => x.includes('publisher')).length, MAX_KEPT_NOTICES);
  assert.equal(t.told[0], 'A sequence 10 2..11');
  const lost = t.told.reduce((sum, x) => sum + Number(x.split(' ')[2]), 0);
  assert.equal(lost, 10 + 2 * MAX_KEPT_NOTICES - 1, 'every number between 1 and the last told once');
});

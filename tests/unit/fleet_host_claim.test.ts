// daemon/fleet/host_claim.ts's pure parts: which of two claimants holds a
// host id, and what a claim message must be (the claim subject is open to
// whoever may publish as the host, so anything else is ignored, not thrown).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isOlder, parseClaimant, type Claimant } from '../../daemon/fleet/host_claim';

const c = (startedAt: number, run: string): Claimant => ({ run, startedAt, hostname: 'h', pid: 1 });

test('the one started earlier holds the host id; at the same ms, the smaller run', () => {
  assert.equal(isOlder(c(1, 'b'), c(2, 'a')), true);
  assert.equal(isOlder(c(2, 'a'), c(1, 'b')), false);
  assert.equal(isOlder(c(5, 'a'), c(5, 'b')), true);
  assert.equal(isOlder(c(5, 'b'), c(5, 'a')), false);
  assert.equal(isOlder(c(5, 'a'), c(5, 'a')), false, 'never older than itself');
});

test('a claim message: its four fields, or null for anything else', () => {
  const enc = (v: unknown): Uint8Array => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
  assert.deepEqual(parseClaimant(enc({ run: 'ab12', startedAt: 1700000000000, hostname: 'web1', pid: 42, extra: 1 })), {
    run: 'ab12',
    startedAt: 1700000000000,
    hostname: 'web1',
    pid: 42,
  });
  for (const bad of [
    '',
    'not json',
    '[]',
    'null',
    { run: 1, startedAt: 1, hostname: 'h', pid: 1 },
    { run: 'a', startedAt: 1.5, hostname: 'h', pid: 1 },
    { run: 'a', startedAt: 1, hostname: 'h' },
    { run: 'a', startedAt: '1', hostname: 'h', pid: 1 },
  ])
    assert.equal(parseClaimant(enc(bad)), null, JSON.stringify(bad));
  assert.equal(parseClaimant(Buffer.from([0xff, 0xfe])), null);
});

// daemon/fleet/dial_pacing.ts in the loop nats.js runs it in: the handler is
// asked at every turn of dodialLoop (@nats-io/nats-core/lib/protocol.js), a
// dial or a wake-up while waiting, and a dial goes once lastConnect + wait <= now.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, DialPacing, firstDialWait } from '../../daemon/fleet/dial_pacing';

/** The times (ms after the loss) at which nats.js's loop dials, every dial failing, for `untilMs`. */
function dials(pacing: { wait(): number }, clock: { t: number }, untilMs: number): number[] {
  const out: number[] = [];
  let lastConnect = -Infinity; // the last successful connection, long ago
  while (clock.t < untilMs) {
    const wait = pacing.wait();
    if (lastConnect + wait <= clock.t) {
      lastConnect = clock.t;
      out.push(clock.t);
      clock.t += 1; // the refused dial itself
    } else clock.t += Math.min(wait, lastConnect + wait - clock.t); // the loop's delay, then the next turn
  }
  return out;
}

test('reconnect dials at 0, 0.25, 0.5, 1, 2, 4 and 8 s after the loss, then every 5 s (no jitter)', () => {
  const clock = { t: 0 };
  const at = dials(new DialPacing(1, () => clock.t), clock, 30_000);
  const want = [0, 250, 500, 1000, 2000, 4000, 8000, 13000, 18000, 23000, 28000];
  assert.equal(at.length, want.length, `dials ${at.join(', ')}`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(at[i] - want[i]) <= 2 * i + 1, `dial ${i} at ${at[i]}, not about ${want[i]}`);
  const gaps = at.slice(1).map((t, i) => t - at[i]);
  assert.ok(Math.min(...gaps) >= BACKOFF_MIN_MS - 1 && Math.max(...gaps) <= BACKOFF_MAX_MS + 1, `gaps ${gaps.join(', ')}`);
});

test('a jitter below 1 stretches every wait; connected() starts the clock again', () => {
  const clock = { t: 0 };
  const p = new DialPacing(0.8, () => clock.t);
  assert.equal(p.wait(), 0.8 * BACKOFF_MIN_MS);
  clock.t = 60_000;
  assert.equal(p.wait(), 0.8 * BACKOFF_MAX_MS);
  p.connected();
  clock.t = 61_000;
  assert.equal(p.wait(), 0.8 * BACKOFF_MIN_MS, 'a new loss waits from the start');
});

test('first-connection waits: 0.25, 0.5, 1, 2, 4, then 5 s', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 20].map((n) => firstDialWait(n, 1)),
    [250, 500, 1000, 2000, 4000, 5000, 5000, 5000],
  );
  assert.equal(firstDialWait(1, 0.8), 200);
});

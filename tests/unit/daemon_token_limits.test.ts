// Per-credential limits: streams and unicast sockets held, sends per minute.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Problem } from '../../daemon/errors';
import { Metrics } from '../../daemon/metrics';
import { TokenLimits } from '../../daemon/token_limits';

const code = (fn: () => unknown): string | null => {
  try {
    fn();
    return null;
  } catch (err) {
    assert.ok(err instanceof Problem);
    return err.code;
  }
};

test('streams and unicast sockets: held up to the cap per credential, given back once, other credentials unaffected', () => {
  const m = new Metrics();
  const l = new TokenLimits({ rateLimit: 0, maxStreamsPerToken: 2, maxUnicastPerToken: 1 }, m);
  const a = l.holdStream('scoped:a', true);
  assert.equal(
    code(() => l.holdStream('scoped:a', true)),
    'LIMIT_REACHED',
  );
  const b = l.holdStream('scoped:a', false);
  assert.equal(
    code(() => l.holdStream('scoped:a', false)),
    'LIMIT_REACHED',
  );
  assert.equal(
    code(() => l.holdStream('token:main', true)),
    null,
  );
  a();
  a(); // a second release gives nothing back twice
  b();
  assert.equal(
    code(() => l.checkStream('scoped:a', true)),
    null,
  );
  assert.equal(m.limitRefusals.get({ limit: 'unicast' }), 1);
  assert.equal(m.limitRefusals.get({ limit: 'streams' }), 1);
});

test('--max-unicast-per-token 0 refuses the first unicast stream too', () => {
  const l = new TokenLimits({ rateLimit: 0, maxStreamsPerToken: 5, maxUnicastPerToken: 0 }, new Metrics());
  assert.equal(
    code(() => l.checkStream('unix', true)),
    'LIMIT_REACHED',
  );
  assert.equal(
    code(() => l.holdStream('unix', true)),
    'LIMIT_REACHED',
  );
  assert.equal(
    code(() => l.holdStream('unix', false)),
    null,
  );
});

test('sends per minute: a fixed window per credential, 429 with the seconds to wait', () => {
  const l = new TokenLimits({ rateLimit: 2, maxStreamsPerToken: 1, maxUnicastPerToken: 1 }, new Metrics());
  const t0 = 1_000_000;
  l.spendSend('a', t0);
  l.spendSend('a', t0 + 1);
  let err: unknown;
  try {
    l.spendSend('a', t0 + 30_000);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Problem && err.code === 'RATE_LIMITED');
  assert.equal(err.extra?.retryAfter, 30);
  l.spendSend('b', t0 + 30_000);
  l.spendSend('a', t0 + 60_000); // a new window
});

// The allocation-free delivery histogram must render exactly as prom-client's
// own Histogram does for the same observations: dashboards, promtool and
// daemon_metrics.test.ts read the same text either way.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { HotHistogram } from '../../daemon/hot_histogram';

const BOUNDS = [0.00005, 0.0001, 0.00025, 0.001, 0.25];
const NAME = 'x_latency_seconds';
const HELP = 'a latency';

async function both(observations: number[]): Promise<[string, string]> {
  const ours = new Registry();
  const theirs = new Registry();
  const h = new HotHistogram(NAME, HELP, BOUNDS, ours);
  const p = new Histogram({ name: NAME, help: HELP, buckets: BOUNDS, registers: [theirs] });
  for (const v of observations) {
    h.observe(v);
    p.observe(v);
  }
  return [await ours.metrics(), await theirs.metrics()];
}

test('renders as prom-client renders the same observations: below, on and between bounds, above the last', async () => {
  const [ours, theirs] = await both([0, 0.00005, 0.00007, 0.0001, 0.0003, 0.001, 0.1, 0.25, 0.3, 7]);
  assert.equal(ours, theirs);
  assert.match(ours, /^x_latency_seconds_bucket\{le="0.0001"\} 4$/m);
  assert.match(ours, /^x_latency_seconds_bucket\{le="\+Inf"\} 10$/m);
  assert.match(ours, /^x_latency_seconds_count 10$/m);
});

test('with no observation, every bucket is exposed at 0', async () => {
  const [ours, theirs] = await both([]);
  assert.equal(ours, theirs);
  assert.match(ours, /^x_latency_seconds_bucket\{le="0.00005"\} 0$/m);
  assert.match(ours, /^x_latency_seconds_count 0$/m);
});

test('reset() empties it, as the registry resets its metrics', async () => {
  const reg = new Registry();
  const h = new HotHistogram(NAME, HELP, BOUNDS, reg);
  h.observe(0.5);
  reg.resetMetrics();
  assert.match(await reg.metrics(), /^x_latency_seconds_count 0$/m);
  assert.match(await reg.metrics(), /^x_latency_seconds_sum 0$/m);
});

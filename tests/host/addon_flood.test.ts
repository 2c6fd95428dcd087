// Floods from the C sender into small receive buffers: the process survives
// and every message is either received or counted lost, exactly. Each
// scenario runs in a child process in its own network namespace, so other
// programs on this host (netlink groups are per namespace) cannot skew it.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import * as path from 'node:path';
import { buildFlood } from './support/netlink';
import type { ScenarioResult } from './support/flood_scenarios';

before(() => {
  buildFlood();
});

function inOwnNetns(scenario: string): Promise<ScenarioResult> {
  const script = path.join(__dirname, 'support/flood_scenarios.js');
  return new Promise((resolve, reject) => {
    execFile('unshare', ['--net', '--', process.execPath, script, scenario], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${scenario}: ${err.message}\n${stderr}`));
        return;
      }
      const res = JSON.parse(stdout) as ScenarioResult;
      assert.notEqual(res.netns, readlinkSync('/proc/self/ns/net'), 'scenario ran in its own namespace');
      resolve(res);
    });
  });
}

test('1,000,000 broadcasts at full speed into a 64 KiB buffer: received + lost == sent, exactly', async (t) => {
  const r = await inOwnNetns('million');
  const { tally: tl } = r;
  t.diagnostic(
    `flood: sent=${r.flood.sent} in ${r.flood.seconds.toFixed(3)}s received=${tl.received} lost=${tl.lost} ` +
      `drops()=${r.drops} overrunEvents=${tl.overruns.length} batches=${tl.batches} largestBatch=${tl.largestBatch} ` +
      `maxTimerLag=${r.maxLagMs?.toFixed(1)}ms`,
  );
  assert.equal(r.flood.failed, 0);
  assert.equal(r.flood.sent, 1_000_000);
  assert.equal(tl.foreign, 0);
  assert.equal(tl.received + tl.lost, r.flood.sent);
  assert.equal(tl.lost, r.drops, 'overrun events add up to the socket drop counter');
  assert.ok(tl.lost > 0, 'a 64 KiB buffer cannot hold a 1M flood');
  assert.ok(tl.received > 0);
  assert.ok(tl.overruns.every((o) => o.lost > 0));
  assert.equal(tl.truncated, 0);
  assert.deepEqual(r.afterFlood, { text: 'after the flood', fromWriter: true });
});

test('ENOBUFS from a flooded small buffer is reported as an overrun with the exact count', async (t) => {
  const r = await inOwnNetns('enobufs');
  const { tally: tl } = r;
  t.diagnostic(`100k into 64 KiB with no reader: received=${tl.received} lost=${tl.lost} (FACTS: 157 + 99,843)`);
  assert.equal(r.flood.sent, 100_000);
  assert.ok((r.dropsBeforeListening ?? 0) > 0);
  // One overrun, before any datagram, with everything the counter holds.
  assert.equal(tl.overruns.length, 1);
  assert.deepEqual(tl.overruns[0], { lost: r.dropsBeforeListening, totalDrops: r.dropsBeforeListening });
  assert.equal(tl.received + tl.lost, 100_000);
  assert.equal(r.drops, r.dropsBeforeListening);
});

test('with noEnobufs the loss is still counted from SO_MEMINFO', async (t) => {
  const r = await inOwnNetns('noEnobufs');
  const { tally: tl } = r;
  t.diagnostic(`noEnobufs: sent=${r.flood.sent} received=${tl.received} lost=${tl.lost}`);
  assert.equal(r.flood.sent, 200_000);
  assert.equal(tl.received + tl.lost, r.flood.sent);
  assert.equal(tl.lost, r.drops);
});

test('the event loop stays responsive while a large buffer is flooded', async (t) => {
  const r = await inOwnNetns('bigBuffer');
  const { tally: tl } = r;
  t.diagnostic(
    `32 MiB buffer: sent=${r.flood.sent} received=${tl.received} lost=${tl.lost} largestBatch=${tl.largestBatch} ` +
      `maxTimerLag=${r.maxLagMs?.toFixed(1)}ms timerTicks=${r.ticks} in ${r.flood.seconds.toFixed(3)}s`,
  );
  assert.equal(tl.received + tl.lost, r.flood.sent);
  assert.ok(tl.largestBatch <= 8192, `batch of ${tl.largestBatch} exceeds the per-wake bound`);
  // Timers ran during the flood, between batches. (The lag itself is only
  // reported: on a loaded machine the scheduler dominates it.)
  assert.ok((r.ticks ?? 0) >= 3, `only ${r.ticks} timer ticks during a ${r.flood.seconds}s flood`);
});

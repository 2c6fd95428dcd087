// The shared Subscription policy carried by Server-Sent Events, over a fake
// response whose backlog the test sets: the same drop, tell-on-drain and
// stall rules as a WebSocket, counted under transport="sse".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../daemon/metrics';
import { toGroupList } from '../../daemon/netlink/groups';
import { fakeBus, msg, silentLog } from './support/stream_fakes';
import { sseSubscription } from '../../daemon/streams/sse_writer';

class FakeResponse {
  writableLength = 0;
  destroyed = false;
  writableEnded = false;
  written: string[] = [];
  write(text: string): boolean {
    this.written.push(text);
    return true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  end(): void {
    this.writableEnded = true;
  }
  once(): this {
    return this;
  }
}

const SSE = { transport: 'sse' };

function make(stallMs: number): { res: FakeResponse; sub: ReturnType<typeof sseSubscription>; metrics: Metrics } {
  const res = new FakeResponse();
  const metrics = new Metrics();
  const sub = sseSubscription(
    res as never,
    { groups: toGroupList([2]), format: 'json', batch: false, unicast: false, bufferBytes: 1000, stallMs, maxPayload: 65536 },
    fakeBus,
    metrics,
    silentLog,
  );
  return { res, sub, metrics };
}

/** The SSE events written: [event name, data JSON, id line or null]. */
function events(res: FakeResponse): [string, Record<string, unknown>, string | null][] {
  return res.written
    .filter((t) => t.includes('event: '))
    .map((t) => {
      const id = /^id: (.*)$/m.exec(t)?.[1] ?? null;
      const name = /^event: (.*)$/m.exec(t)![1];
      return [name, JSON.parse(/^data: (.*)$/m.exec(t)![1]) as Record<string, unknown>, id];
    });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('SSE: retry line, hello as n 0, messages with their cursor as id', () => {
  const { res, sub, metrics } = make(60000);
  sub.hello();
  sub.deliver(msg(1, 'abc-1'));
  assert.equal(res.written[0], 'retry: 1000\n\n');
  const e = events(res);
  assert.deepEqual([e[0][0], e[0][1].n, e[0][1].format, e[0][1].batch], ['hello', 0, 'json', false]);
  assert.deepEqual([e[1][0], e[1][1].n, e[1][1].cursor, e[1][2]], ['message', 1, 'abc-1', 'abc-1']);
  assert.equal(metrics.wsFrames.get(SSE), 2);
  assert.equal(metrics.wsFrames.get(), 0, 'nothing counted as a WebSocket frame');
  sub.close();
});

test('SSE: over the backlog messages are dropped (using up their n), counted as SSE; on drain one dropped event tells the count', async () => {
  const { res, sub, metrics } = make(60000);
  sub.deliver(msg(1));
  res.writableLength = 5000;
  sub.deliver(msg(2));
  sub.deliver(msg(3));
  assert.equal(events(res).length, 1);
  assert.equal(metrics.wsDropped.get(SSE), 2);
  assert.equal(metrics.wsDropped.get(), 0);
  res.writableLength = 0;
  await sleep(80);
  assert.deepEqual(events(res)[1], ['dropped', { type: 'dropped', n: 4, count: 2 }, null]);
  sub.close();
});

test('SSE: a client over its backlog longer than stallMs is cut, even with nothing more to send', async () => {
  const { res, sub, metrics } = make(50);
  res.writableLength = 5000;
  sub.deliver(msg(1));
  await sleep(150);
  assert.equal(res.destroyed, true);
  assert.equal(metrics.wsClosedSlow.get(SSE), 1);
  assert.equal(metrics.wsClosedSlow.get(), 0);
  sub.close();
});

// The per-client policy of a stream (streams/subscription.ts) carried by a WebSocket, over a fake socket whose
// backlog the test sets: drop above the limit, tell the count on drain,
// close 1013 when stalled, cut a client that stops answering pings.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Metrics } from '../../daemon/metrics';
import type { SubscriptionOptions } from '../../daemon/streams/subscription';
import { wsSubscription, type WsSubscription } from '../../daemon/streams/ws_writer';
import { toGroupList } from '../../daemon/netlink/groups';
import { fakeBus, msg, silentLog } from './support/stream_fakes';
import { waitFor } from '../support/wait';

class FakeWs {
  readonly OPEN = 1;
  readyState = 1;
  bufferedAmount = 0;
  sent: (string | Buffer)[] = [];
  closedWith: [number, string] | null = null;
  terminated = false;
  pings = 0;
  send(d: string | Buffer): void {
    this.sent.push(d);
  }
  close(code: number, reason: string): void {
    this.closedWith = [code, reason];
  }
  terminate(): void {
    this.terminated = true;
  }
  ping(): void {
    this.pings++;
  }
}

function make(opts: Partial<SubscriptionOptions> = {}): { ws: FakeWs; stream: WsSubscription; metrics: Metrics } {
  const ws = new FakeWs();
  const metrics = new Metrics();
  const stream = wsSubscription(
    ws as never,
    { groups: toGroupList([2]), format: 'json', batch: false, unicast: false, bufferBytes: 1000, stallMs: 100, maxPayload: 65536, ...opts },
    fakeBus,
    metrics,
    silentLog,
  );
  return { ws, stream, metrics };
}

const frames = (ws: FakeWs): Record<string, unknown>[] => ws.sent.map((s) => JSON.parse(String(s)) as Record<string, unknown>);

test('over the backlog frames are dropped (using up their n); on drain one dropped event tells the count', async () => {
  const { ws, stream, metrics } = make({ stallMs: 60000 });
  stream.deliver(msg(1));
  ws.bufferedAmount = 5000;
  stream.deliver(msg(2));
  stream.deliver(msg(3));
  assert.equal(ws.sent.length, 1);
  assert.equal(metrics.wsDropped.total(), 2);
  ws.bufferedAmount = 0;
  await waitFor('the dropped event once the backlog drained', () => frames(ws).length, { timeoutMs: 5000, until: (n) => n >= 2 });
  const f = frames(ws);
  assert.deepEqual(f[1], { type: 'dropped', n: 4, count: 2 });
  stream.deliver(msg(4));
  assert.equal(frames(ws)[2].n, 5);
  stream.close();
});

test('batch mode: a large receive batch leaves in frames of about 64 KiB, every message once and in order', () => {
  const { ws, stream } = make({ batch: true, bufferBytes: 1e9 });
  for (let i = 1; i <= 3000; i++) stream.deliver(msg(i));
  stream.flush();
  const sizes = ws.sent.map((f) => String(f).length);
  assert.ok(ws.sent.length > 1, `one batch of 3000 messages in ${ws.sent.length} frame(s)`);
  for (const size of sizes.slice(0, -1)) assert.ok(size >= 64 * 1024 && size < 65 * 1024, `frame of ${size} bytes`);
  const ns = ws.sent.flatMap((f) =>
    String(f)
      .split('\n')
      .map((l) => (JSON.parse(l) as { n: number }).n),
  );
  assert.deepEqual(
    ns,
    Array.from({ length: 3000 }, (_, i) => i + 1),
  );
  stream.close();
});

test('a client over its backlog longer than stallMs is closed with 1013', async () => {
  const { ws, stream, metrics } = make({ stallMs: 50 });
  ws.bufferedAmount = 5000;
  stream.deliver(msg(1));
  await waitFor('the close of the stalled client', () => ws.closedWith, { timeoutMs: 5000 });
  assert.deepEqual(ws.closedWith, [1013, 'too slow: backlog over limit']);
  assert.equal(metrics.wsClosedSlow.total(), 1);
  stream.close();
});

test('events are not dropped and batch mode packs lines', () => {
  const { ws, stream } = make({ batch: true });
  stream.deliver(msg(1));
  stream.deliver(msg(2));
  stream.overrun(5);
  stream.flush();
  assert.equal(ws.sent.length, 1);
  const lines = String(ws.sent[0])
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(
    lines.map((l) => [l.type, l.n]),
    [
      ['message', 1],
      ['message', 2],
      ['overrun', 3],
    ],
  );
  const slow = make();
  slow.ws.bufferedAmount = 1e9;
  slow.stream.overrun(3);
  assert.equal(frames(slow.ws)[0].type, 'overrun', 'an overrun is told even to a client over its backlog');
  stream.close();
  slow.stream.close();
});

test('a client that does not answer a ping is cut at the next one', () => {
  const { ws, stream } = make();
  stream.writer.ping();
  assert.equal(ws.pings, 1);
  stream.writer.pong();
  stream.writer.ping();
  assert.equal(ws.pings, 2);
  assert.equal(ws.terminated, false);
  stream.writer.ping();
  assert.equal(ws.terminated, true);
  stream.close();
});

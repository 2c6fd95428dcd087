// The fastify shape of daemon/http/ (issues 16 and 17), against a real daemon:
// @fastify/websocket lives only in the stream routes' context, yet an upgrade
// answered with HTTP anywhere still has its socket closed; SSE streams go
// through the shared Subscription and count under their own label.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { bit, call, connect, sleep, startDaemon, type Daemon } from './support/daemon_harness';
import { SseClient } from './support/sse_client';

const G = 27;

/** Sends one upgrade request; resolves with the answer's status line and whether the server closed the socket within `ms`. */
function upgradeAndWait(port: number, path: string, ms: number): Promise<{ statusLine: string; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ statusLine: data.split('\r\n')[0], closedByServer: false });
    }, ms);
    s.on('data', (c: Buffer) => (data += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ statusLine: data.split('\r\n')[0], closedByServer: true });
    });
    s.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        '',
        '',
      ].join('\r\n'),
    );
  });
}

describe('http plugins', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon();
  });
  after(async () => {
    await d.close();
  });

  test("@fastify/websocket is registered in the stream routes' context only, not on the root", async () => {
    assert.equal(d.app.hasPlugin('nlbridge-streams'), true);
    assert.equal(d.app.hasPlugin('@fastify/websocket'), false, 'registered globally: its hooks would run on every POST /send');
    assert.equal((d.app as unknown as { websocketServer?: unknown }).websocketServer, undefined);
    for (const name of [
      'nlbridge-state',
      'nlbridge-errors',
      'nlbridge-admission',
      'nlbridge-observe',
      'nlbridge-send',
      'nlbridge-events',
      'nlbridge-status',
    ]) {
      assert.equal(d.app.hasPlugin(name), true, name);
    }
    // ...and the stream routes still upgrade.
    const { client, hello } = await connect(d, `/groups/${bit(G)}`);
    assert.equal(hello.type, 'hello');
    client.close();
  });

  test('an upgrade answered with HTTP outside the stream routes (404, 405, a plain route) has its socket closed', async () => {
    for (const [path, status] of [
      ['/no-such-route', '404'],
      ['/send', '405'],
      ['/healthz', '200'],
    ] as const) {
      const r = await upgradeAndWait(d.port, path, 3000);
      assert.match(r.statusLine, new RegExp(`^HTTP/1.1 ${status} `), `${path}: ${r.statusLine}`);
      assert.equal(r.closedByServer, true, `${path}: the socket stayed open after the answer`);
    }
    // Inside the stream routes: a refused upgrade (bad mask) is closed too.
    const bad = await upgradeAndWait(d.port, '/groups/0', 3000);
    assert.match(bad.statusLine, /^HTTP\/1.1 400 /);
    assert.equal(bad.closedByServer, true);
  });

  test('SSE frames are counted under transport="sse", WebSocket ones unlabelled', async () => {
    const sse = await new SseClient().open(`${d.base}/groups/${bit(G)}/events`);
    const { client } = await connect(d, `/groups/${bit(G)}`);
    try {
      const deadline = Date.now() + 5000;
      let text = '';
      while (Date.now() < deadline) {
        text = (await call(d, 'GET', '/metrics')).text;
        if (
          /^nlbridge_websocket_frames_sent_total\{transport="sse"\} [1-9]/m.test(text) &&
          /^nlbridge_websocket_frames_sent_total [1-9]/m.test(text)
        )
          break;
        await sleep(50);
      }
      assert.match(text, /^nlbridge_websocket_frames_sent_total\{transport="sse"\} [1-9]\d*$/m, 'the SSE hello is counted as an SSE frame');
      assert.match(text, /^nlbridge_websocket_frames_sent_total [1-9]\d*$/m, 'the WebSocket hello is counted unlabelled');
      assert.equal(sse.events[0]?.event, 'hello');
    } finally {
      client.close();
      sse.kill();
    }
  });
});

// A body over --body-limit gets its 413, even while the client is still
// writing it, and a client that never stops writing is cut after the linger.
//
// The daemon answers 413 from the Content-Length before reading the body and
// closes the connection. Closing with the client's bytes unread makes the
// kernel send a RST, and a client still writing lost the answer (EPIPE /
// ECONNRESET): 299 of 300 requests of 8 MB did on the build before the
// lingering close (daemon/http_server.ts).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import { LINGER_MS } from '../../daemon/http_server';
import { startDaemon, type Daemon } from './support/daemon_harness';

const TOKEN = 'b'.repeat(64);

interface Answer {
  status: number;
  body: string;
}

/**
 * POST `size` bytes to /send with Node's client, which goes on writing the
 * body while it reads the answer. Settles when the request is closed, so a
 * write error after the answer arrived (the symptom under test) is seen too.
 */
function postBody(d: Daemon, size: number): Promise<Answer> {
  const body = Buffer.alloc(size, 'o');
  return new Promise((resolve, reject) => {
    let answer: Answer | null = null;
    let failure: Error | null = null;
    const req = http.request(
      {
        host: '127.0.0.1',
        port: d.port,
        method: 'POST',
        path: '/send',
        agent: false,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, 'content-length': String(size) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (answer = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', (err) => (failure = err));
    req.on('close', () => (failure ? reject(failure) : answer ? resolve(answer) : reject(new Error('closed without an answer'))));
    req.end(body);
  });
}

describe('bodies over --body-limit', () => {
  let d: Daemon;
  before(async () => {
    d = await startDaemon({ token: TOKEN });
  });
  after(() => d.close());

  test('30 POSTs of 8 MB, each still being written when the 413 comes: every one reads its 413 problem, none a reset', async () => {
    const failures: string[] = [];
    for (let i = 0; i < 30; i++) {
      try {
        const a = await postBody(d, 8_000_000);
        const problem = JSON.parse(a.body) as { code: string; field: string };
        if (a.status !== 413 || problem.code !== 'PAYLOAD_TOO_LARGE' || problem.field !== 'body')
          failures.push(`#${i}: ${a.status} ${a.body}`);
      } catch (err) {
        failures.push(`#${i}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test(`a client that keeps writing after its 413 is cut within LINGER_MS (${LINGER_MS} ms)`, async () => {
    // allowHalfOpen: the daemon's FIN must not end our writing (a client
    // that ignores it is the case under test).
    const s = net.connect({ port: d.port, host: '127.0.0.1', allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    s.on('error', () => undefined); // the cut may come as a reset to our writes
    s.write(
      `POST /send HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n`,
    );
    const chunk = Buffer.alloc(64 * 1024, 'o');
    let answeredAt = 0;
    let text = '';
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!answeredAt && text.includes('\r\n\r\n')) answeredAt = Date.now();
    });
    const closed = new Promise<number>((resolve) => s.once('close', () => resolve(Date.now())));
    // Keep writing until the daemon closes the connection.
    const writer = setInterval(() => {
      if (!s.destroyed) s.write(chunk);
    }, 5);
    const closedAt = await closed;
    clearInterval(writer);
    assert.match(text, /^HTTP\/1\.1 413 /, 'the 413 arrives before the cut');
    assert.ok(answeredAt > 0);
    const held = closedAt - answeredAt;
    assert.ok(held >= LINGER_MS - 200, `the connection was cut after ${held} ms, before the client could read its answer in peace`);
    assert.ok(held <= LINGER_MS + 1500, `the connection was held ${held} ms after the answer (bound ${LINGER_MS} ms)`);
  });
});

// Bulk WebSocket frames: what encodeFrames writes is what a WebSocket client
// (ws's own Receiver) reads, at every length boundary of RFC 6455's header;
// FrameWriter writes one turn's frames in one socket write, in order, and
// never after the close frame.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrames, FrameWriter } from '../../daemon/streams/ws_frame_writer';
import * as wsModule from 'ws';

// ws's receiver is the parser every ws client runs; @types/ws does not declare it.
const Receiver = (wsModule as unknown as { Receiver: unknown }).Receiver as new (o: {
  isServer: boolean;
  maxPayload: number;
}) => NodeJS.WritableStream & {
  on(ev: 'message', f: (data: Buffer, isBinary: boolean) => void): void;
  on(ev: 'error', f: (e: Error) => void): void;
};

function decode(bytes: Buffer): Promise<{ text: string | null; bin: Buffer | null }[]> {
  return new Promise((resolve, reject) => {
    const out: { text: string | null; bin: Buffer | null }[] = [];
    const r = new Receiver({ isServer: false, maxPayload: 0 });
    r.on('message', (data, isBinary) =>
      out.push(isBinary ? { text: null, bin: Buffer.from(data) } : { text: data.toString('utf8'), bin: null }),
    );
    r.on('error', reject);
    r.write(bytes, () => resolve(out));
  });
}

test('encodeFrames: text and binary frames at every header-length boundary decode to what went in', async () => {
  const frames: (string | Buffer)[] = [];
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    frames.push('a'.repeat(len));
    frames.push(Buffer.alloc(len, len & 0xff));
  }
  // Multi-byte UTF-8: the header carries bytes, not characters (41 chars, 123/126/127 bytes).
  frames.push('é'.repeat(61) + 'x', 'é'.repeat(63), '€'.repeat(42) + 'x');
  // Lines of a batched frame: one text frame, joined by "\n".
  const batches: string[][] = [['{"n":1}'], ['a', 'é€', ''], Array.from({ length: 300 }, (_, i) => `{"n":${i},"data":"${'z'.repeat(i)}"}`)];
  const got = await decode(encodeFrames([...frames, ...batches]));
  assert.equal(got.length, frames.length + batches.length);
  got.forEach((g, i) => {
    const f = i < frames.length ? frames[i] : batches[i - frames.length].join('\n');
    if (typeof f === 'string') assert.equal(g.text, f, `frame ${i}`);
    else assert.deepEqual(g.bin, f, `frame ${i}`);
  });
});

class FakeSocket {
  writes: Buffer[] = [];
  write(b: Buffer): boolean {
    this.writes.push(b);
    return true;
  }
}

function fakeWs(extensions: Record<string, unknown> = {}) {
  const socket = new FakeSocket();
  const ws = {
    OPEN: 1,
    readyState: 1,
    _socket: socket,
    _extensions: extensions,
    sent: [] as unknown[],
    send(d: unknown) {
      this.sent.push(d);
    },
  };
  return { ws, socket };
}

test('FrameWriter: the frames of one turn leave in one write, in order; counted', async () => {
  const { ws, socket } = fakeWs();
  let counted = 0;
  const w = new FrameWriter(ws as never, (n) => (counted += n));
  w.push('one');
  w.push(Buffer.from([1, 2, 3]));
  w.push('three');
  w.push(['four', 'five']);
  assert.equal(socket.writes.length, 0, 'nothing written inside the turn');
  await Promise.resolve();
  assert.equal(socket.writes.length, 1);
  assert.equal(counted, 4);
  const got = await decode(socket.writes[0]);
  assert.deepEqual(got, [
    { text: 'one', bin: null },
    { text: null, bin: Buffer.from([1, 2, 3]) },
    { text: 'three', bin: null },
    { text: 'four\nfive', bin: null },
  ]);
});

test('FrameWriter: 64 KiB queued goes out mid-turn; flush() writes at once; a closing socket gets nothing', async () => {
  const { ws, socket } = fakeWs();
  const w = new FrameWriter(ws as never, () => undefined);
  const big = 'x'.repeat(40 * 1024);
  w.push(big);
  assert.equal(socket.writes.length, 0);
  w.push(big);
  assert.equal(socket.writes.length, 1, 'over 64 KiB: written without waiting for the turn to end');
  w.push('tail');
  w.flush();
  assert.equal(socket.writes.length, 2);
  w.push('late');
  ws.readyState = 2; // CLOSING: ws refuses data frames after its close frame
  await Promise.resolve();
  assert.equal(socket.writes.length, 2, 'nothing after the close');
  w.push('later');
  await Promise.resolve();
  assert.equal(socket.writes.length, 2);
});

test('FrameWriter: with permessage-deflate negotiated every frame goes through ws.send', async () => {
  const { ws, socket } = fakeWs({ 'permessage-deflate': {} });
  let counted = 0;
  const w = new FrameWriter(ws as never, (n) => (counted += n));
  w.push('a');
  w.push(Buffer.from('b'));
  await Promise.resolve();
  assert.equal(socket.writes.length, 0);
  assert.deepEqual(ws.sent, ['a', Buffer.from('b')]);
  assert.equal(counted, 2);
});

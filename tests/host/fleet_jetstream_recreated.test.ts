// A fleet cursor of a stream that is gone (--nats-jetstream on): the stream
// deleted under a running daemon and created again by it, then a client
// resuming with a cursor it took before. A cursor that was only a sequence
// number resumed at that number in the new stream, silently: the new
// stream's first messages were skipped with no gap told. A cursor carries
// the stream's id (its name and creation time, daemon/fleet/cursor.ts): one
// of another stream is a `stream` gap, then the new stream from its first
// message. Against the real nats-server 2.9 with `jetstream { store_dir }`;
// host A is a spawned daemon publishing group 2 and serving /fleet.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import type { DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, connect, sleep, type Frame } from './support/daemon_harness';
import { fleetStreamId as streamId, spawnJetStreamHost, streamReady } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';
import { SseClient } from './support/sse_client';

const STREAM = 'NLBAGAIN';
/** The daemon's periodic check of the stream (daemon/fleet/stream_keeper.ts), with room for a loaded host. */
const CHECK_WAIT_MS = 10_000 + 8_000;

/** A frame as the assertions compare it: a message's text and cursor, a gap's fields. */
function shape(f: Frame): unknown {
  if (f.type === 'message') return [f.data, f.cursor];
  const fields: Record<string, unknown> = { ...f };
  delete fields.n;
  return fields;
}

describe('fleet: a cursor of a stream deleted and created again', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let a: DaemonProc;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let sender: NetlinkSocket;
  let k = 0;
  const lastSeq = async (): Promise<number> => (await jsm.streams.info(STREAM)).state.last_seq;
  /** Sends one message and waits until it is stored: one stream message each, no run. */
  const publish = async (text: string): Promise<void> => {
    const before = await lastSeq();
    sender.send(encodeMessage({ type: 16, seq: ++k, payload: Buffer.from(text) }), { portId: 0, groups: bit(2) });
    await waitFor(`${text} stored`, lastSeq, { timeoutMs: 5000, until: (s) => s > before });
  };

  before(async () => {
    await server.start(`jetstream { store_dir: "${path.join(server.dir, 'js')}" }`);
    nc = await natsConnect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    a = await spawnJetStreamHost(server.url, STREAM);
    await streamReady(a, 'A');
    sender = NetlinkSocket.open({ protocol: USERSOCK });
  });

  after(async () => {
    sender?.close();
    await a?.stop();
    await nc?.close();
    await server.stop();
  });

  test('resumed with a cursor of the deleted stream: a `stream` gap saying so, then every message of the new stream from its first, with cursors of the new id', async () => {
    await sleep(300);
    // The old stream: two messages; the client's cursor is the second's.
    const reader = (await connect(a, `/fleet/groups/${bit(2)}?since=0`)).client;
    for (const text of ['old-1', 'old-2']) await publish(text);
    const old = await reader.next((f) => f.type === 'message' && f.data === 'old-2', 5000, 'old-2');
    await reader.close();
    const oldCursor = String(old.cursor);
    const oldInfo = await jsm.streams.info(STREAM);

    await jsm.streams.delete(STREAM);
    const newInfo = await waitFor('the stream created again', () => jsm.streams.info(STREAM).catch(() => null), {
      timeoutMs: CHECK_WAIT_MS,
    });
    // What the id rests on: nats-server gives the new stream another creation time.
    assert.notEqual(newInfo!.created, oldInfo.created, 'a stream created again has another creation time');
    const oldId = streamId(STREAM, oldInfo.created);
    const newId = streamId(STREAM, newInfo!.created);
    assert.notEqual(newId, oldId);

    // The new stream holds more than the old one did: the old cursor's number (2) lies inside it.
    await sleep(300);
    const fresh = ['new-1', 'new-2', 'new-3', 'new-4'];
    for (const text of fresh) await publish(text);
    const held = fresh.map((text, i) => [text, `${newId}-${i + 1}`]);
    const gap = {
      type: 'gap',
      reason: 'stream',
      host: null,
      lost: null,
      since: 2,
      resumeFrom: 1,
      detail: `the cursor names another stream (${oldId}; this one is ${newId}): deleted and created again, or another fleet's; read from its first message`,
    };

    const ws = (await connect(a, `/fleet/groups/${bit(2)}?since=${oldCursor}`)).client;
    const sse = await new SseClient().open(`${a.base}/fleet/groups/${bit(2)}/events`, {
      'last-event-id': oldCursor,
      ...(a.token ? { authorization: `Bearer ${a.token}` } : {}),
    });
    try {
      assert.equal(sse.status, 200, sse.body);
      await waitFor('the WebSocket and SSE clients have the new stream', () => ws.all.length + sse.events.length, {
        timeoutMs: 5000,
        until: () => ws.all.some((f) => !Buffer.isBuffer(f) && f.data === 'new-4') && sse.events.some((e) => e.data.data === 'new-4'),
      });
      await sleep(300);
      const wsFrames = ws.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type !== 'hello');
      assert.deepEqual(wsFrames.map(shape), [gap, ...held]);
      assert.equal(oldCursor, `${oldId}-2`, "the old cursor names the old stream's id");
      const sseFrames = sse.events.filter((e) => e.event !== 'hello');
      assert.deepEqual(
        sseFrames.map((e) => shape(e.data)),
        [gap, ...held],
      );
      assert.deepEqual(
        sseFrames.map((e) => e.id),
        [null, ...held.map(([, cursor]) => cursor)],
        'SSE ids are the new cursors',
      );
      // The reading goes on live, with cursors of the new stream.
      await publish('new-5');
      const live = await ws.next((f) => f.type === 'message' && f.data === 'new-5', 5000, 'new-5');
      assert.equal(live.cursor, `${newId}-5`);
      assert.deepEqual([...ws.specErrors, ...sse.specErrors], []);
    } finally {
      await ws.close();
      sse.kill();
    }
  });

  test('a cursor of the current stream resumes after it (no gap); a bare sequence of earlier versions too; a cursor of another id reads from the first message', async () => {
    const id = streamId(STREAM, (await jsm.streams.info(STREAM)).created);
    const last = await lastSeq();
    await publish('tail');
    const frames = async (since: string): Promise<unknown[]> => {
      const c = (await connect(a, `/fleet/groups/${bit(2)}?since=${since}`)).client;
      try {
        await c.next((f) => f.type === 'message' && f.data === 'tail', 5000, 'tail');
        return c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type !== 'hello').map(shape);
      } finally {
        await c.close();
      }
    };
    assert.deepEqual(await frames(`${id}-${last}`), [['tail', `${id}-${last + 1}`]]);
    assert.deepEqual(await frames(String(last)), [['tail', `${id}-${last + 1}`]]);
    const other = id === '0badf00d' ? 'f00dbad0' : '0badf00d';
    const got = await frames(`${other}-${last}`);
    assert.equal(got.length, last + 2, 'the gap, then every message held');
    assert.deepEqual(
      { ...(got[0] as object), detail: undefined },
      { type: 'gap', reason: 'stream', host: null, lost: null, since: last, resumeFrom: 1, detail: undefined },
    );
    assert.deepEqual(got[1], ['new-1', `${id}-1`]);
  });
});

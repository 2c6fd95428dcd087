// A JetStream stream that exists before the daemon with settings of its own
// (--nats-jetstream on): it is left as it is, and every setting that changes
// what it keeps or whether a resume works is told. An outside audit found a
// stream with max_msg_size 64 (it kept nothing), a work queue (every resume
// broke), memory storage, max_msgs_per_subject 1, … all said "ready" with no
// warning. Against the real nats-server 2.9; host A is a spawned daemon.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import type { DaemonProc } from '../reliability/support/daemon_proc';
import { fleetStatus, spawnJetStreamHost } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

const STREAM = 'NLBCONF';
/** What the daemon would create with its default flags (the settings not under test). */
const BASE: Partial<StreamConfig> = {
  subjects: ['nlbridge.*.g.*'],
  discard: 'old' as StreamConfig['discard'],
  storage: 'file' as StreamConfig['storage'],
  max_bytes: 256 * 1024 * 1024,
  max_age: 86400 * 1e9,
  duplicate_window: 120 * 1e9,
};
/** The daemon's periodic check of the stream (daemon/fleet/stream_keeper.ts), with room for a loaded host. */
const CHECK_WAIT_MS = 10_000 + 8_000;

describe('fleet: a pre-existing JetStream stream with settings of its own', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let a: DaemonProc | null = null;

  /** The stream made with `settings` over BASE, then host A started on it: its fleet.jetstream once checked. */
  const startOn = async (settings: Record<string, unknown>): Promise<{ state?: string; error: string | null; warning: string | null }> => {
    await a?.stop();
    await jsm.streams.delete(STREAM).catch(() => undefined);
    await jsm.streams.add({ name: STREAM, ...BASE, ...settings });
    a = await spawnJetStreamHost(server.url, STREAM);
    const s = await waitFor('the stream checked', () => fleetStatus(a!), {
      timeoutMs: 10000,
      until: (s) => s.jetstream !== null && s.jetstream.state !== 'pending',
    });
    return s.jetstream!;
  };

  before(async () => {
    await server.start(`jetstream { store_dir: "${path.join(server.dir, 'js')}" }`);
    nc = await natsConnect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  });

  after(async () => {
    await a?.stop();
    await nc?.close();
    await server.stop();
  });

  test('max_msg_size under the server\'s max_payload is an error naming it, not "ready"; fixed with nats stream edit, it is ready at the next check', async () => {
    const js = await startOn({ max_msg_size: 64 });
    assert.equal(js.state, 'error');
    assert.match(String(js.error), /max_msg_size 64 \(under the server's max_payload 1048576/);
    assert.ok(
      a!.logs.some((l) => l.level === 50 && /max_msg_size 64/.test(String(l.msg))),
      'logged as an error',
    );
    // An operator raises it (as `nats stream edit` would): the periodic check sees it.
    const cfg = (await jsm.streams.info(STREAM)).config;
    await jsm.streams.update(STREAM, { ...cfg, max_msg_size: -1 });
    const after = await waitFor('ready at the next check', () => fleetStatus(a!), {
      timeoutMs: CHECK_WAIT_MS,
      until: (s) => s.jetstream?.state === 'ready',
    });
    assert.deepEqual([after.jetstream!.error, after.jetstream!.warning], [null, null]);
  });

  test('retention workqueue or interest: an error naming the retention (a resume cannot work)', async () => {
    for (const retention of ['workqueue', 'interest']) {
      const js = await startOn({ retention });
      assert.equal(js.state, 'error', retention);
      assert.match(String(js.error), new RegExp(`retention "${retention}"`));
    }
  });

  test('memory storage, discard new, max_msgs, max_msgs_per_subject, max_consumers, other limits: ready, with a warning naming each and its value', async () => {
    const js = await startOn({
      storage: 'memory',
      discard: 'new',
      max_msgs: 4,
      max_msgs_per_subject: 1,
      max_consumers: 2,
      max_age: 600 * 1e9,
    });
    assert.equal(js.state, 'ready');
    assert.equal(js.error, null);
    for (const part of [
      'storage "memory"',
      'discard "new"',
      'max_msgs 4',
      'max_msgs_per_subject 1',
      'max_consumers 2',
      'max_age 600000000000 (flags: 86400000000000)',
    ])
      assert.ok(String(js.warning).includes(part), `${part} in ${js.warning}`);
    assert.ok(
      a!.logs.some((l) => l.level === 40 && String(l.msg).includes('max_msgs_per_subject 1')),
      'logged as a warning',
    );
  });

  test('subjects that do not capture nlbridge.*.g.*: an error; subjects that capture more: a warning', async () => {
    const narrow = await startOn({ subjects: ['nlbridge.A.g.*'] });
    assert.equal(narrow.state, 'error');
    assert.match(String(narrow.error), /subjects \["nlbridge\.A\.g\.\*"\] \(they do not capture nlbridge\.\*\.g\.\*/);
    const wide = await startOn({ subjects: ['nlbridge.*.g.>'] });
    assert.equal(wide.state, 'ready');
    assert.match(String(wide.warning), /subjects \["nlbridge\.\*\.g\.>"\]/);
  });
});

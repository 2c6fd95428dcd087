// Issue 18's trust boundary with durable replay: nats-server 2.9 with
// JetStream and exactly the JetStream permissions block of systemd/README.md
// (read from it), users by nkey. Host A's daemon (--nats-jetstream on) makes
// its stream, stores its group's messages and serves a /fleet stream resumed
// from the stream, with no permission error; its inboxes carry the prefix
// _INBOX_A, and A's user cannot read another host's inboxes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as natsConnect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { REPO_ROOT } from '../reliability/support/report';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, connect, type Frame } from './support/daemon_harness';
import { fleetStatus } from './support/fleet_hosts';
import { NatsServer, nkeyUser, type NkeyUser } from './support/nats_server';

/** The JetStream permissions block of systemd/README.md, between its markers. */
function readmeJetStreamPermissions(): string {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'systemd', 'README.md'), 'utf8');
  const m = /<!-- nats-jetstream-permissions:begin -->\n```\n([\s\S]*?)```\n<!-- nats-jetstream-permissions:end -->/.exec(text);
  assert.ok(m, 'systemd/README.md has the nats-jetstream-permissions block');
  return m[1];
}

describe('fleet: the JetStream permissions of systemd/README.md', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let a: NkeyUser;
  let daemon: DaemonProc;

  before(async () => {
    a = nkeyUser(server.dir, 'A');
    await server.start(
      [`jetstream { store_dir: "${path.join(server.dir, 'js')}" }`, `NLBRIDGE_HOST_A: "${a.pub}"`, readmeJetStreamPermissions()].join('\n'),
    );
    daemon = await spawnDaemon([
      '--nats',
      server.url,
      '--nats-nkey',
      a.file,
      '--host-id',
      'A',
      '--nats-publish',
      '2',
      '--nats-jetstream',
      'on',
    ]);
  });

  after(async () => {
    await daemon?.stop();
    await server.stop();
  });

  test("A's daemon creates its stream, stores its group and serves ?since= from it, with no permission error", async () => {
    const s = await waitFor('the stream ready', () => fleetStatus(daemon), {
      timeoutMs: 15_000,
      until: (x) => x.jetstream?.state !== 'pending',
    });
    assert.equal(s.jetstream?.state, 'ready', `stream: ${JSON.stringify(s.jetstream)}; server: ${server.log.slice(-1500)}`);
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      sender.send(encodeMessage({ type: 16, seq: 7, payload: Buffer.from('kept-by-A') }), { portId: 0, groups: bit(2) });
    } finally {
      sender.close();
    }
    // Read back from the stream (sequence 1 on): an ordered consumer made with A's rights, its messages on A's inbox.
    const messageOf = async (): Promise<Frame | undefined> => {
      const { client } = await connect(daemon, `/fleet/groups/${bit(2)}?since=0`);
      try {
        return await client.next((f) => f.type === 'message', 3000, 'the stored message').catch(() => undefined);
      } finally {
        client.close();
      }
    };
    const m = await waitFor('the stored message replayed', messageOf, { timeoutMs: 15_000 });
    assert.equal(m!.host, 'A');
    assert.equal(m!.data, 'kept-by-A');
    assert.match(String(m!.cursor), /^[0-9a-f]{8}-1$/, "the stream's id and sequence are the cursor");
    // A second stream, after the first one's subscriptions: any refusal of
    // those reached the daemon (one connection, in order) before this answer.
    assert.equal((await messageOf())?.data, 'kept-by-A');
    assert.doesNotMatch(server.log, /Permissions Violation/, 'no permission error for the daemon of A');
    assert.doesNotMatch(daemon.logs.map((l) => JSON.stringify(l)).join('\n'), /Permissions Violation|permission/i);
  });

  test("A's user may read its own inboxes (_INBOX_A.>) and no one else's", async () => {
    const nc: NatsConnection = await natsConnect({
      servers: server.url,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(a.seed)),
      inboxPrefix: '_INBOX_A',
    });
    try {
      const errors: string[] = [];
      nc.subscribe('_INBOX_B.>', { callback: (err) => void (err && errors.push(String(err.message))) });
      nc.subscribe('_INBOX.>', { callback: (err) => void (err && errors.push(String(err.message))) });
      const own = nc.subscribe('_INBOX_A.x', { callback: (err) => void (err && errors.push(`own: ${err.message}`)) });
      await nc.flush();
      await waitFor('both refusals', () => errors, { timeoutMs: 5000, until: (e) => e.length >= 2 });
      assert.equal(errors.filter((e) => /permissions violation/i.test(e)).length, 2, errors.join('; '));
      assert.ok(!errors.some((e) => e.startsWith('own:')), errors.join('; '));
      assert.equal(own.isClosed(), false, 'its own inbox subscription stands');
    } finally {
      await nc.close();
    }
  });
});

// Issue 18 under issue 13's rule: a send arriving over NATS (--nats-send on)
// is checked by the same scope code as POST /send. Without a "natsSendScope"
// in the config file every NATS send is refused; with one, what it allows
// goes through and the rest is answered 403 PERMISSION_DENIED naming the
// field, counted, and never reaches netlink.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as natsConnect, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import { MAIN, spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, sleep } from './support/daemon_harness';
import { NatsServer } from './support/nats_server';

const auth = (d: DaemonProc, token = d.token): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

async function connected(d: DaemonProc): Promise<void> {
  await waitFor(
    'the daemon connected to NATS',
    async () => {
      const res = await fetch(`${d.base}/status`, { headers: auth(d) });
      return ((await res.json()) as { fleet: { connected: boolean } }).fleet.connected;
    },
    { timeoutMs: 10000 },
  );
}

/** Collects what a raw netlink reader of `group` receives. */
function reader(group: number): { got: Buffer[]; close(): void } {
  const s = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(group) });
  const got: Buffer[] = [];
  s.on('datagrams', (batch: { data: Buffer }[]) => {
    for (const d of batch) got.push(d.data);
  });
  return { got, close: () => s.close() };
}

function configFile(dir: string, body: unknown): string {
  const f = path.join(dir, 'nlbridge.json');
  fs.writeFileSync(f, JSON.stringify(body), { mode: 0o600 });
  return f;
}

describe('fleet: the scope of NATS sends', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let nc: NatsConnection;
  let open: DaemonProc;
  let scoped: DaemonProc;
  const pusherToken = 'pusher-token-0123456789';

  before(async () => {
    await server.start();
    nc = await natsConnect({ servers: server.url });
    // No "natsSendScope": every NATS send is refused.
    open = await spawnDaemon(['--nats', server.url, '--host-id', 'hostO', '--nats-send', 'on']);
    // The same limits for NATS and for a scoped HTTP token, to compare their answers.
    const limits = { sendGroups: [5], sendPorts: [4242], kernel: false };
    const conf = configFile(server.dir, {
      natsSendScope: limits,
      tokens: [{ name: 'pusher', tokenFile: path.join(server.dir, 'pusher'), ...limits }],
    });
    fs.writeFileSync(path.join(server.dir, 'pusher'), pusherToken, { mode: 0o600 });
    scoped = await spawnDaemon(['--config', conf, '--nats', server.url, '--host-id', 'hostS', '--nats-send', 'on']);
    await connected(open);
    await connected(scoped);
    // The subscription may lag the connection by a moment.
    for (const h of ['hostO', 'hostS'])
      await waitFor('the send subject answered', () => request(`nlbridge.${h}.send`, '{nope').then((r) => r.status), {
        timeoutMs: 5000,
        until: (s) => s === '400',
      });
  });

  after(async () => {
    await open?.stop();
    await scoped?.stop();
    await nc?.close();
    await server.stop();
  });

  const request = async (subject: string, body: string): Promise<{ status: string; json: Record<string, unknown> }> => {
    const m = await nc.request(subject, body, { timeout: 5000 });
    return { status: m.headers!.get('status'), json: m.json<Record<string, unknown>>() };
  };

  test('without "natsSendScope" a NATS send is refused 403 naming the field, delivers nothing, is counted, and the start says so', async () => {
    const r5 = reader(5);
    try {
      const r = await request('nlbridge.hostO.send', JSON.stringify({ groups: [5], data: 'not-allowed' }));
      assert.equal(r.status, '403');
      assert.equal(r.json.code, 'PERMISSION_DENIED');
      assert.equal(r.json.field, 'groups');
      assert.deepEqual(r.json.refused, { groups: [5] });
      assert.match(String(r.json.detail), /natsSendScope/);
      const k = await request('nlbridge.hostO.send', JSON.stringify({ pid: 0, data: 'kernel' }));
      assert.equal(k.status, '403');
      assert.equal(k.json.field, 'pid');
      await sleep(300);
      assert.equal(r5.got.length, 0, 'nothing reached group 5');
    } finally {
      r5.close();
    }
    const metrics = await (await fetch(`${open.base}/metrics`, { headers: auth(open) })).text();
    assert.equal(metricValue(metrics, 'nlbridge_nats_send_requests_total', '{status="403"}'), 2);
    assert.ok(
      open.logs.some((l) => /NATS sends .* refused/.test(String(l.msg)) && /natsSendScope/.test(String(l.msg))),
      'the start log says NATS sends are refused',
    );
    assert.ok(open.alive());
  });

  test('with "natsSendScope" what it allows is delivered; the rest is refused like a scoped token on POST /send', async () => {
    const r5 = reader(5);
    const r6 = reader(6);
    try {
      const ok = await request('nlbridge.hostS.send', JSON.stringify({ groups: [5], data: 'allowed' }));
      assert.equal(ok.status, '200', JSON.stringify(ok.json));
      await waitFor('group 5 got it', () => r5.got.length, { timeoutMs: 3000, until: (n) => n === 1 });
      const refused: [object, string][] = [
        [{ groups: [6], data: 'x' }, 'groups'],
        [{ groups: [5], data: 'x', type: 17 }, 'type'],
        [{ pid: 0, data: 'x' }, 'pid'],
        [{ pid: 999, data: 'x' }, 'pid'],
        [{ relay: 4242, data: 'x' }, 'relay'],
      ];
      for (const [body, field] of refused) {
        const viaNats = await request('nlbridge.hostS.send', JSON.stringify(body));
        const res = await fetch(`${scoped.base}/send`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth(scoped, pusherToken) },
          body: JSON.stringify(body),
        });
        assert.equal(res.status, 403, JSON.stringify(body));
        assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const viaHttp = (await res.json()) as Record<string, unknown>;
        assert.equal(viaNats.status, '403', JSON.stringify(body));
        assert.equal(viaNats.json.field, field, JSON.stringify(body));
        const shape = (j: Record<string, unknown>) => ({
          status: j.status,
          code: j.code,
          field: j.field,
          refused: j.refused,
          type: j.type,
        });
        assert.deepEqual(shape(viaNats.json), shape(viaHttp), JSON.stringify(body));
        assert.match(String(viaNats.json.detail), /^[a-z]+: NATS sends \("natsSendScope"\) may not /);
      }
      await sleep(300);
      assert.equal(r5.got.length, 1, 'only the allowed message reached group 5');
      assert.equal(r6.got.length, 0, 'nothing reached group 6');
    } finally {
      r5.close();
      r6.close();
    }
    const metrics = await (await fetch(`${scoped.base}/metrics`, { headers: auth(scoped) })).text();
    assert.equal(metricValue(metrics, 'nlbridge_nats_send_requests_total', '{status="403"}'), 5);
    assert.equal(metricValue(metrics, 'nlbridge_nats_send_requests_total', '{status="200"}'), 1);
  });

  test('the scope is checked before the rate limit is spent, and sends within it are still rate-limited (--rate-limit)', async () => {
    const dir = fs.mkdtempSync('/tmp/nlb-scope-rate-');
    const conf = configFile(dir, { natsSendScope: { sendGroups: [6] } });
    const d = await spawnDaemon(['--config', conf, '--nats', server.url, '--host-id', 'hostR', '--nats-send', 'on', '--rate-limit', '2']);
    try {
      await connected(d);
      await waitFor('the send subject answered', () => request('nlbridge.hostR.send', '{nope').then((r) => r.status), {
        timeoutMs: 5000,
        until: (s) => s === '400',
      });
      const answers = [];
      for (const g of [7, 6, 6, 6]) answers.push(await request('nlbridge.hostR.send', JSON.stringify({ groups: [g], data: 'r' })));
      assert.deepEqual(
        answers.map((a) => a.status),
        ['403', '200', '200', '429'],
      );
      assert.equal(answers[3].json.code, 'RATE_LIMITED');
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleet: bad "natsSendScope"', () => {
  const cases: [string, unknown, string[], RegExp][] = [
    [
      'a list of groups that is not one',
      { sendGroups: 'two' },
      [],
      /"natsSendScope": natsSendScope\.sendGroups: must be "\*" or a list of integers/,
    ],
    ['kernel not a boolean', { kernel: 'no' }, [], /"natsSendScope": natsSendScope\.kernel: must be true or false/],
    ['a key of tokens that means nothing here', { read: [2] }, [], /"natsSendScope": natsSendScope\.read: unknown key/],
    ['not an object', [5], [], /"natsSendScope": natsSendScope: must be an object/],
    ['without --nats', { sendGroups: [5] }, ['--no-nats'], /"natsSendScope": needs --nats/],
  ];
  for (const [name, scope, extra, want] of cases) {
    test(`${name}: exit 2, naming it`, () => {
      const dir = fs.mkdtempSync('/tmp/nlb-scope-bad-');
      try {
        const conf = configFile(dir, { natsSendScope: scope });
        const nats = extra.includes('--no-nats') ? [] : ['--nats', 'nats://127.0.0.1:1', '--nats-send', 'on'];
        const r = spawnSync(process.execPath, [MAIN, '--protocol', 'usersock', '--port', '0', '--config', conf, ...nats], {
          encoding: 'utf8',
          timeout: 15000,
        });
        assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
        assert.match(r.stderr, want);
        assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

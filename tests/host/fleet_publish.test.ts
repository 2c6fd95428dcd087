// Issue 18, publishing: a spawned daemon with --nats puts each message of its
// published groups on a real nats-server (started here on a random loopback
// port), once, with its metadata in headers; a daemon without --nats loads
// none of the NATS code; the NATS flags refuse bad values naming the flag.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connect as natsConnect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { decodeHeader, encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { metricValue, waitFor } from '../support/wait';
import { MAIN, spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit, sleep } from './support/daemon_harness';
import { assertMatchesSpec } from './support/daemon_spec';
import { NatsServer } from './support/nats_server';
// A type only (erased): the test of a daemon without --nats checks that no NATS code is loaded.
import type { FleetStatus } from '../../daemon/fleet/index';

async function getJson(d: DaemonProc, p: string): Promise<Record<string, unknown>> {
  const res = await fetch(d.base + p, { headers: d.token ? { authorization: `Bearer ${d.token}` } : {} });
  assert.equal(res.status, 200, p);
  const body = (await res.json()) as Record<string, unknown>;
  // The fleet object is part of the contract (openapi.yaml Status).
  assertMatchesSpec('GET', p, res.status, res.headers.get('content-type') ?? '', body);
  return body;
}

async function getText(d: DaemonProc, p: string): Promise<string> {
  const res = await fetch(d.base + p, { headers: d.token ? { authorization: `Bearer ${d.token}` } : {} });
  assert.equal(res.status, 200, p);
  return res.text();
}

/** Waits until the daemon's /status says its NATS connection is up (it dials in the background). */
async function untilConnected(d: DaemonProc, what = 'the daemon connected to NATS'): Promise<void> {
  await waitFor(what, async () => ((await getJson(d, '/status')).fleet as FleetStatus).connected, { timeoutMs: 10000 });
}

describe('fleet: publishing on NATS', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let daemon: DaemonProc;
  let nc: NatsConnection;
  const got: Msg[] = [];

  before(async () => {
    await server.start();
    nc = await natsConnect({ servers: server.url });
    nc.subscribe('nlbridge.>', { callback: (_err, m) => void got.push(m) });
    await nc.flush();
    daemon = await spawnDaemon(['--nats', server.url, '--host-id', 'hostA', '--nats-publish', '2,4']);
    await untilConnected(daemon);
  });

  after(async () => {
    await daemon?.stop();
    await nc?.close();
    await server.stop();
  });

  test('a message on groups 2 and 4 from a raw netlink sender reaches a subscriber of nlbridge.*.g.2 exactly once, with its headers', async () => {
    const status = (await getJson(daemon, '/status')).fleet as FleetStatus;
    assert.equal(status.host, 'hostA');
    assert.deepEqual(status.groups, [2, 4]);
    assert.match(String(status.url), new RegExp(`127\\.0\\.0\\.1:${server.port}$`));

    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const bytes = encodeMessage({ type: 16, flags: 1, seq: 77, pid: 4242, payload: Buffer.from('hello-fleet') });
      // One sendto with groups 2 and 4 broadcasts to group 2 only (ffs of the mask): two sends, one copy per group.
      sender.send(bytes, { portId: 0, groups: bit(2) });
      sender.send(bytes, { portId: 0, groups: bit(4) });
      const received = await waitFor('the message on NATS', () => got.filter((m) => m.subject.startsWith('nlbridge.hostA.g.')), {
        timeoutMs: 5000,
        until: (l) => l.length >= 1,
      });
      // Nothing more comes: the copy on group 4 is the same message (same sender, seq, type).
      await sleep(500);
      const all = got.filter((m) => m.subject.startsWith('nlbridge.hostA.g.'));
      assert.equal(all.length, 1, `exactly once, got ${all.map((m) => m.subject).join(', ')}`);
      const m = received[0];
      assert.equal(m.subject, 'nlbridge.hostA.g.2');
      assert.deepEqual(Buffer.from(m.data), bytes.subarray(0, 16 + 'hello-fleet'.length), 'the payload is the message bytes');
      const h = m.headers!;
      assert.equal(h.get('n'), '1', 'the first message of this host');
      assert.equal(h.get('g'), '2');
      assert.equal(h.get('p'), String(sender.portId), 'the real sender port id');
      // nlmsg_seq, type and flags travel in the message's own header, in the payload (no header of their own).
      const nl = decodeHeader(Buffer.from(m.data));
      assert.equal(nl.seq, 77);
      assert.equal(nl.type, 16);
      assert.equal(nl.flags, 1);
      assert.equal(h.get('k'), '', 'one message: no count header');
      assert.match(h.get('c'), /^[0-9a-f]+-[0-9]+$/, 'a cursor');
      assert.deepEqual([...h.keys()].sort(), ['c', 'g', 'n', 'p'], `few headers: ${[...h.keys()].join(',')}`);
    } finally {
      sender.close();
    }
    await waitFor('published counted', async () => ((await getJson(daemon, '/status')).fleet as FleetStatus).published, {
      timeoutMs: 3000,
      until: (n) => n === 1,
    });
    const s2 = (await getJson(daemon, '/status')).fleet as FleetStatus;
    assert.equal(s2.dropped, 0);
    assert.equal(s2.heldMessages, 0);
    const metrics = await getText(daemon, '/metrics');
    assert.equal(metricValue(metrics, 'nlbridge_nats_published_total'), 1);
    assert.equal(metricValue(metrics, 'nlbridge_nats_connected'), 1);
    assert.equal(metricValue(metrics, 'nlbridge_nats_dropped_total', '{reason="buffer"}'), 0);
    assert.equal(metricValue(metrics, 'nlbridge_nats_dropped_total', '{reason="max-payload"}'), 0);
  });

  test('/metrics with the fleet series passes promtool check metrics', { skip: skipUnless('promtool') }, async () => {
    const text = await getText(daemon, '/metrics');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'nothing to report');
  });

  test('what POST /send puts on group 2 is published too, numbered next', async () => {
    const before = ((await getJson(daemon, '/status')).fleet as FleetStatus).published;
    const res = await fetch(`${daemon.base}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(daemon.token ? { authorization: `Bearer ${daemon.token}` } : {}) },
      body: JSON.stringify({ groups: [2], data: 'from-post' }),
    });
    assert.equal(res.status, 200);
    const m = (await waitFor('the POSTed message on NATS', () => got.find((x) => Buffer.from(x.data).includes(Buffer.from('from-post'))), {
      timeoutMs: 5000,
    }))!;
    assert.equal(m.subject, 'nlbridge.hostA.g.2');
    assert.equal(m.headers!.get('n'), String(before + 1));
    assert.ok(daemon.alive());
  });
});

/** Message `seq` of the linger tests, its payload naming it. */
const lingerMessage = (seq: number) => encodeMessage({ type: 16, flags: 0, seq, pid: 0, payload: Buffer.from(`linger-${seq}`) });

/**
 * For one suite: a nats-server, a subscriber of `nlbridge.<hostId>.g.>` that
 * notes when each message came, and a daemon publishing group 2 as hostId
 * with `lingerArgs`, connected before the suite's tests run.
 */
function lingerFleet(hostId: string, lingerArgs: string[]): { daemon: DaemonProc; nc: NatsConnection; got: { m: Msg; at: number }[] } {
  const server = new NatsServer();
  const f = { daemon: undefined as unknown as DaemonProc, nc: undefined as unknown as NatsConnection, got: [] as { m: Msg; at: number }[] };
  before(async () => {
    await server.start();
    f.nc = await natsConnect({ servers: server.url });
    f.nc.subscribe(`nlbridge.${hostId}.g.>`, { callback: (_err, m) => void f.got.push({ m, at: performance.now() }) });
    await f.nc.flush();
    f.daemon = await spawnDaemon(['--nats', server.url, '--host-id', hostId, '--nats-publish', '2,', ...lingerArgs]);
    await untilConnected(f.daemon);
  });
  after(async () => {
    await f.daemon?.stop();
    await f.nc?.close();
    await server.stop();
  });
  return f;
}

describe('fleet: --nats-linger-ms, at any rate (--nats-linger-above 0)', { skip: skipUnless('nats-server') }, () => {
  // A second, the bound: long enough to tell held from not held on a loaded machine.
  const f = lingerFleet('hostL', ['--nats-linger-ms', '1000', '--nats-linger-above', '0']);

  test('the first message after a quiet spell goes at once; what follows within the linger is held and goes as one run', async () => {
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const sentAt = performance.now();
      sender.send(lingerMessage(1), { portId: 0, groups: bit(2) });
      const first = (await waitFor('the first message on NATS', () => f.got[0], { timeoutMs: 5000 }))!;
      assert.ok(first.at - sentAt < 500, `not held: ${Math.round(first.at - sentAt)} ms`);
      assert.equal(first.m.headers!.get('n'), '1');
      // Two more, in two receive batches, within the linger of the first's hand-over.
      sender.send(lingerMessage(2), { portId: 0, groups: bit(2) });
      await sleep(50);
      sender.send(lingerMessage(3), { portId: 0, groups: bit(2) });
      await sleep(300);
      assert.equal(f.got.length, 1, 'held: nothing more within the linger');
      const second = (await waitFor('the held messages on NATS', () => f.got[1], { timeoutMs: 5000 }))!;
      assert.ok(second.at - first.at >= 900, `held about the linger: ${Math.round(second.at - first.at)} ms`);
      assert.equal(second.m.headers!.get('n'), '2');
      assert.equal(second.m.headers!.get('k'), '2', 'both batches in one run');
      assert.equal(decodeHeader(Buffer.from(second.m.data)).seq, 2);
      await sleep(200);
      assert.equal(f.got.length, 2, 'nothing else');
    } finally {
      sender.close();
    }
    await waitFor('all three published', async () => ((await getJson(f.daemon, '/status')).fleet as FleetStatus).published, {
      timeoutMs: 3000,
      until: (n) => n === 3,
    });
  });

  test('SIGTERM while a message is held: it reaches NATS before the daemon exits 0', async () => {
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      const before = f.got.length;
      // Message 4 goes at once or at the end of the last test's linger; 5, sent as soon as 4 came, is held.
      sender.send(lingerMessage(4), { portId: 0, groups: bit(2) });
      await waitFor('the first on NATS', () => f.got.length > before, { timeoutMs: 5000 });
      sender.send(lingerMessage(5), { portId: 0, groups: bit(2) });
      await sleep(200);
      assert.equal(f.got.length, before + 1, 'held');
      const stoppedAt = performance.now();
      assert.equal(await f.daemon.stop(), 0);
      await f.nc.flush();
      assert.equal(f.got.length, before + 2, 'handed over at shutdown, not lost');
      const last = f.got[f.got.length - 1];
      assert.equal(decodeHeader(Buffer.from(last.m.data)).seq, 5);
      assert.ok(last.at - stoppedAt < 900, `at the shutdown, not at the end of the linger: ${Math.round(last.at - stoppedAt)} ms`);
    } finally {
      sender.close();
    }
  });
});

describe('fleet: --nats-linger-ms below the rate of --nats-linger-above', { skip: skipUnless('nats-server') }, () => {
  // The linger of the suite above, at the default rate gate (20,000 msg/s): ten messages 50 ms apart are 20 msg/s.
  const f = lingerFleet('hostR', ['--nats-linger-ms', '1000']);

  test('each receive batch goes at once, none held for the linger', async () => {
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      for (let seq = 1; seq <= 10; seq++) {
        const sentAt = performance.now();
        sender.send(lingerMessage(seq), { portId: 0, groups: bit(2) });
        const m = (await waitFor(`message ${seq} on NATS`, () => f.got[seq - 1], { timeoutMs: 5000 }))!;
        assert.ok(m.at - sentAt < 500, `message ${seq} held ${Math.round(m.at - sentAt)} ms`);
        assert.equal(m.m.headers!.get('n'), String(seq));
        assert.equal(m.m.headers!.has('k'), false, 'a run of one');
        await sleep(50);
      }
    } finally {
      sender.close();
    }
  });
});

describe('fleet: without --nats', () => {
  test('a daemon without --nats loads no NATS code, shows no fleet, and serves as before', async () => {
    const dir = fs.mkdtempSync('/tmp/nlb-nonats-');
    const preload = path.join(dir, 'modules.js');
    const out = path.join(dir, 'modules.json');
    fs.writeFileSync(
      preload,
      `process.on('SIGUSR2', () => require('node:fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(Object.keys(require.cache))));\n`,
    );
    const d = await spawnDaemon([], {}, ['-r', preload]);
    try {
      const status = await getJson(d, '/status');
      assert.equal('fleet' in status, false);
      const metrics = await getText(d, '/metrics');
      assert.doesNotMatch(metrics, /nlbridge_nats_/);
      const res = await fetch(`${d.base}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(d.token ? { authorization: `Bearer ${d.token}` } : {}) },
        body: JSON.stringify({ groups: [2], data: 'x' }),
      });
      assert.equal(res.status, 200);
      process.kill(d.pid, 'SIGUSR2');
      const modules = (await waitFor(
        'the module list',
        () => (fs.existsSync(out) ? (JSON.parse(fs.readFileSync(out, 'utf8')) as string[]) : null),
        { timeoutMs: 5000 },
      ))!;
      assert.ok(
        modules.some((m) => m.includes(`${path.sep}daemon${path.sep}netlink${path.sep}bus.js`)),
        'the list is of the daemon',
      );
      assert.deepEqual(
        modules.filter((m) => m.includes('@nats-io') || m.includes(`${path.sep}fleet${path.sep}`)),
        [],
      );
    } finally {
      await d.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fleet: bad NATS settings', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [MAIN, '--protocol', 'usersock', '--port', '0', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 15000,
    });

  const cases: [string, string[], NodeJS.ProcessEnv, RegExp][] = [
    [
      '--host-id with a dot',
      ['--nats', 'nats://127.0.0.1:1', '--host-id', 'a.b'],
      {},
      /^nlbridge: --host-id: must be a NATS subject token/,
    ],
    [
      '--host-id with a wildcard',
      ['--nats', 'nats://127.0.0.1:1', '--host-id', 'a*'],
      {},
      /^nlbridge: --host-id: must be a NATS subject token/,
    ],
    [
      '--host-id with a space',
      ['--nats', 'nats://127.0.0.1:1', '--host-id', 'a b'],
      {},
      /^nlbridge: --host-id: must be a NATS subject token/,
    ],
    [
      'NLBRIDGE_HOST_ID with ">"',
      ['--nats', 'nats://127.0.0.1:1'],
      { NLBRIDGE_HOST_ID: 'a>' },
      /^nlbridge: NLBRIDGE_HOST_ID: must be a NATS subject token/,
    ],
    ['--nats-publish without --nats', ['--nats-publish', '2'], {}, /^nlbridge: --nats-publish: needs --nats/],
    // Passed the pattern, then "Invalid URL" at every dial, forever.
    [
      '--nats with a port above 65535',
      ['--nats', 'nats://127.0.0.1:99999'],
      {},
      /^nlbridge: --nats: "nats:\/\/127\.0\.0\.1:99999" is not a NATS server URL/,
    ],
    // Started, and then no /fleet stream could select it (?hosts= takes 64 characters).
    [
      '--host-id longer than 64 characters',
      ['--nats', 'nats://127.0.0.1:1', '--host-id', 'L'.repeat(65)],
      {},
      /^nlbridge: --host-id: must be a NATS subject token of at most 64 characters/,
    ],
    [
      '--host-id with a control character',
      ['--nats', 'nats://127.0.0.1:1', '--host-id', 'a\u0001b'],
      {},
      /^nlbridge: --host-id: must be a NATS subject token/,
    ],
    [
      '--nats-stream-max-age-s below the default duplicate window',
      ['--nats', 'nats://127.0.0.1:1', '--nats-stream-max-age-s', '60'],
      {},
      /^nlbridge: --nats-stream-duplicate-window-s: \(120 s, the default\) must be at most --nats-stream-max-age-s \(60 s\)/,
    ],
    [
      "--nats-publish above the protocol's groups",
      ['--nats', 'nats://127.0.0.1:1', '--nats-publish', '2,33'],
      {},
      /^nlbridge: --nats-publish: group 33 is above the 32 groups of protocol usersock \(2\)/,
    ],
    ['--nats-token-file without --nats', ['--nats-token-file', '/etc/hostname'], {}, /^nlbridge: --nats-token-file: needs --nats/],
    ['--nats-send on without --nats', ['--nats-send', 'on'], {}, /^nlbridge: --nats-send: needs --nats/],
    ['--nats-linger-ms without --nats', ['--nats-linger-ms', '0'], {}, /^nlbridge: --nats-linger-ms: needs --nats/],
    ['NLBRIDGE_NATS_LINGER_ABOVE without --nats', [], { NLBRIDGE_NATS_LINGER_ABOVE: '0' }, /^nlbridge: --nats-linger-above: needs --nats/],
    [
      '--nats-linger-above negative',
      ['--nats', 'nats://127.0.0.1:1', '--nats-linger-above', '-1'],
      {},
      /^nlbridge: --nats-linger-above: must be an integer in 0\.\.100000000/,
    ],
    [
      '--nats-linger-above with a unit',
      ['--nats', 'nats://127.0.0.1:1', '--nats-linger-above', '20k'],
      {},
      /^nlbridge: --nats-linger-above: must be an integer in 0\.\.100000000/,
    ],
    [
      '--nats-linger-ms over a second',
      ['--nats', 'nats://127.0.0.1:1', '--nats-linger-ms', '1001'],
      {},
      /^nlbridge: --nats-linger-ms: must be an integer in 0\.\.1000/,
    ],
    [
      'NLBRIDGE_NATS_LINGER_MS with a unit',
      ['--nats', 'nats://127.0.0.1:1'],
      { NLBRIDGE_NATS_LINGER_MS: '5ms' },
      /^nlbridge: NLBRIDGE_NATS_LINGER_MS: must be an integer in 0\.\.1000/,
    ],
    ['--nats-send maybe', ['--nats', 'nats://127.0.0.1:1', '--nats-send', 'maybe'], {}, /^nlbridge: --nats-send: must be off or on/],
    [
      '--nats-publish 0',
      ['--nats', 'nats://127.0.0.1:1', '--nats-publish', '0'],
      {},
      /^nlbridge: --nats-publish: the mask selects no group/,
    ],
    [
      '--nats-publish junk',
      ['--nats', 'nats://127.0.0.1:1', '--nats-publish', 'two'],
      {},
      /^nlbridge: --nats-publish: "two" is not a group mask/,
    ],
    [
      '--nats-publish list',
      ['--nats', 'nats://127.0.0.1:1', '--nats-publish', '2,x'],
      {},
      /^nlbridge: --nats-publish: "x" is not a group number/,
    ],
    ['--nats not a URL', ['--nats', 'nats://a b'], {}, /^nlbridge: --nats: must be a comma-separated list of NATS server URLs/],
    [
      '--nats-buffer-bytes too small',
      ['--nats', 'nats://127.0.0.1:1', '--nats-buffer-bytes', '10'],
      {},
      /^nlbridge: --nats-buffer-bytes: must be an integer in 1024\.\./,
    ],
    [
      '--nats-token-file missing',
      ['--nats', 'nats://127.0.0.1:1', '--nats-token-file', '/nonexistent/token'],
      {},
      /^nlbridge: --nats-token-file: cannot read \/nonexistent\/token: ENOENT/,
    ],
    [
      '--nats-creds and --nats-token-file',
      ['--nats', 'nats://127.0.0.1:1', '--nats-creds', '/etc/hostname', '--nats-token-file', '/etc/hostname'],
      {},
      /^nlbridge: --nats-token-file: and --nats-creds both given/,
    ],
  ];
  for (const [name, args, env, want] of cases) {
    test(`${name}: exit 2, naming it`, () => {
      const r = run(args, env);
      assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
      assert.match(r.stderr, want);
    });
  }
});

describe('fleet: sends over NATS request-reply (--nats-send on)', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let daemon: DaemonProc;
  let plain: DaemonProc;
  let nc: NatsConnection;

  before(async () => {
    await server.start();
    nc = await natsConnect({ servers: server.url });
    // Every group and port, DATA only (no "natsSendScope" refuses every send: fleet_send_scope.test.ts).
    const conf = path.join(server.dir, 'nlbridge.json');
    fs.writeFileSync(conf, JSON.stringify({ natsSendScope: { sendGroups: '*', sendPorts: '*', kernel: false } }));
    daemon = await spawnDaemon(['--config', conf, '--nats', server.url, '--host-id', 'hostS', '--nats-send', 'on']);
    plain = await spawnDaemon(['--nats', server.url, '--host-id', 'hostP']);
    await waitFor(
      'both connected',
      async () =>
        ((await getJson(daemon, '/status')).fleet as FleetStatus).connected &&
        ((await getJson(plain, '/status')).fleet as FleetStatus).connected,
      { timeoutMs: 10000 },
    );
  });

  after(async () => {
    await daemon?.stop();
    await plain?.stop();
    await nc?.close();
    await server.stop();
  });

  const request = async (
    subject: string,
    body: string | Uint8Array,
  ): Promise<{ status: string; json: Record<string, unknown>; headers: NonNullable<Msg['headers']> }> => {
    const m = await nc.request(subject, body, { timeout: 5000 });
    return { status: m.headers!.get('status'), json: m.json<Record<string, unknown>>(), headers: m.headers! };
  };
  const post = async (body: string | Uint8Array): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${daemon.base}/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(daemon.token ? { authorization: `Bearer ${daemon.token}` } : {}) },
      body,
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  test('a request on nlbridge.hostS.send reaches a raw netlink reader and answers with the report of POST /send', async () => {
    const reader = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(5) });
    try {
      const seen = new Promise<Buffer>((resolve) => reader.on('datagrams', (batch: { data: Buffer }[]) => resolve(batch[0].data)));
      const r = await request('nlbridge.hostS.send', JSON.stringify({ groups: [5], data: 'via-nats', type: 16 }));
      assert.equal(r.status, '200');
      assert.equal(r.json.ok, true);
      assert.deepEqual((r.json.results as unknown[])[0], { to: 'group', group: 5, result: 'delivered' });
      const got = await seen;
      assert.equal(got.subarray(16, 16 + 8).toString(), 'via-nats');
      assert.equal(got.readUInt32LE(8), r.json.seq, 'the report names the seq that was sent');
    } finally {
      reader.close();
    }
  });

  test('bad bodies get the problems of POST /send (same code table, same detail)', async () => {
    for (const body of [
      { groups: 'zz', data: 'x' },
      { groups: [2], data: 'x', encoding: 'base64' },
      { groups: [2], bogus: 1 },
    ]) {
      const viaNats = await request('nlbridge.hostS.send', JSON.stringify(body));
      const viaHttp = await post(JSON.stringify(body));
      assert.equal(viaNats.status, String(viaHttp.status), JSON.stringify(body));
      assert.deepEqual(
        { code: viaNats.json.code, detail: viaNats.json.detail, status: viaNats.json.status },
        { code: viaHttp.json.code, detail: viaHttp.json.detail, status: viaHttp.json.status },
        JSON.stringify(body),
      );
    }
    const notJson = await request('nlbridge.hostS.send', '{nope');
    assert.equal(notJson.status, '400');
    assert.equal(notJson.json.code, 'VALIDATION');
    assert.match(String(notJson.json.detail), /^body is not valid JSON/);
    assert.ok(daemon.alive());
  });

  test('bodies as bytes: the parser of POST /send (--body-limit, UTF-8, empty, prototype keys, a BOM): the same answer both ways', async () => {
    const bytes = (...parts: (string | number[])[]): Uint8Array =>
      Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
    const cases: [string, Uint8Array][] = [
      // Over NATS these were sent with U+FFFD in place of the bad bytes, and above --body-limit (64 KiB) whole.
      ['not UTF-8', bytes('{"groups":[7],"data":"a', [0xff, 0xfe, 0xc3], 'b"}')],
      ['over --body-limit', bytes(JSON.stringify({ groups: [7], data: 'x'.repeat(70_000) }))],
      ['empty', bytes('')],
      ['a __proto__ key', bytes('{"groups":[7],"data":"p","__proto__":{"x":1}}')],
      ['constructor.prototype', bytes('{"groups":[7],"data":"p","constructor":{"prototype":{"x":1}}}')],
      ['trailing bytes', bytes('{"groups":[7],"data":"t"} x')],
      ['a byte-order mark, then a good body', bytes([0xef, 0xbb, 0xbf], '{"groups":[7],"data":"bom"}')],
    ];
    const reader = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(7) });
    const got: string[] = [];
    reader.on('datagrams', (batch: { data: Buffer }[]) => {
      for (const d of batch) got.push(d.data.subarray(16).toString('latin1').replace(/\0+$/, ''));
    });
    try {
      for (const [name, body] of cases) {
        const viaNats = await request('nlbridge.hostS.send', body);
        const viaHttp = await post(body);
        assert.equal(viaNats.status, String(viaHttp.status), name);
        assert.deepEqual(
          { code: viaNats.json.code, detail: viaNats.json.detail, field: viaNats.json.field },
          { code: viaHttp.json.code, detail: viaHttp.json.detail, field: viaHttp.json.field },
          name,
        );
      }
      const answers = await Promise.all(cases.map(([, body]) => request('nlbridge.hostS.send', body)));
      assert.deepEqual(
        answers.map((a) => [a.status, a.json.code]),
        [
          ['400', 'BAD_DATA'],
          ['413', 'PAYLOAD_TOO_LARGE'],
          ['400', 'VALIDATION'],
          ['400', 'VALIDATION'],
          ['400', 'VALIDATION'],
          ['400', 'VALIDATION'],
          ['200', undefined],
        ],
      );
      assert.equal(answers[0].json.field, 'body');
      // Only the good body was sent: three times (NATS, HTTP, NATS), never an altered one.
      await waitFor('the good body delivered', () => got.length, { timeoutMs: 5000, until: (n) => n >= 3 });
      await sleep(200);
      assert.deepEqual(got, ['bom', 'bom', 'bom']);
    } finally {
      reader.close();
    }
  });

  test('a publish on the send subject, not a request, is not carried out, and is counted', async () => {
    const reader = NetlinkSocket.open({ protocol: USERSOCK, groups: bit(8) });
    let delivered = 0;
    reader.on('datagrams', (batch: unknown[]) => void (delivered += batch.length));
    try {
      const count = async (): Promise<number> =>
        metricValue(await getText(daemon, '/metrics'), 'nlbridge_nats_send_requests_total{status="400"}') ?? 0;
      const before = await count();
      nc.publish('nlbridge.hostS.send', JSON.stringify({ groups: [8], data: 'no reply to tell' }));
      await nc.flush();
      await waitFor('counted as a bad request', count, { timeoutMs: 5000, until: (n) => n === before + 1 });
      // A request after it is answered and delivered: the publish was seen first and dropped.
      assert.equal((await request('nlbridge.hostS.send', JSON.stringify({ groups: [8], data: 'asked' }))).status, '200');
      await waitFor('the request delivered', () => delivered, { timeoutMs: 5000, until: (n) => n >= 1 });
      await sleep(200);
      assert.equal(delivered, 1, 'only the request reached netlink');
      assert.ok(daemon.logs.some((l) => /without a reply subject was not carried out/.test(String(l.msg))));
    } finally {
      reader.close();
    }
  });

  test('a flood of requests is rate-limited like HTTP (--rate-limit): 429 RATE_LIMITED', async () => {
    const limited = await spawnDaemon([
      '--config',
      path.join(server.dir, 'nlbridge.json'),
      '--nats',
      server.url,
      '--host-id',
      'hostR',
      '--nats-send',
      'on',
      '--rate-limit',
      '3',
    ]);
    try {
      await untilConnected(limited, 'connected');
      // The subscription may lag the connection by a moment.
      await waitFor('the send subject answered', () => request('nlbridge.hostR.send', '{nope').then((r) => r.status), {
        timeoutMs: 5000,
        until: (s) => s === '400',
      });
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await request('nlbridge.hostR.send', JSON.stringify({ groups: [6], data: `r${i}` })));
      assert.deepEqual(
        answers.map((a) => a.status),
        ['200', '200', '200', '429', '429'],
      );
      assert.equal(answers[3].json.code, 'RATE_LIMITED');
      assert.match(String(answers[3].json.detail), /--rate-limit/);
      // When to come back, as HTTP's Retry-After says it.
      assert.equal(answers[3].headers.get('Retry-After'), String(answers[3].json.retryAfter));
      assert.ok(Number(answers[3].json.retryAfter) > 0);
    } finally {
      await limited.stop();
    }
  });

  test('without --nats-send on, nobody answers on the send subject', async () => {
    await assert.rejects(
      nc.request('nlbridge.hostP.send', JSON.stringify({ groups: [5], data: 'x' }), { timeout: 2000 }),
      (err: Error) => /no responders/i.test(err.message) || err.name === 'NoRespondersError',
    );
  });
});

describe('fleet: NATS unreachable', { skip: skipUnless('nats-server') }, () => {
  test('the daemon starts and serves at once, holds what it would publish, and stops with 0', async () => {
    // A port nobody listens on: a server started and killed.
    const gone = new NatsServer();
    await gone.start();
    const url = gone.url;
    await gone.stop();
    const d = await spawnDaemon(['--nats', url, '--host-id', 'hostU', '--nats-publish', '2,']);
    try {
      const f = (await getJson(d, '/status')).fleet as FleetStatus;
      assert.equal(f.connected, false);
      assert.equal(f.url, null);
      // Why it is not connected, said after a dial failed (not before the first one), with the cause.
      const said = await waitFor('the failed dial logged', () => d.logs.find((l) => /^NATS connect failed/.test(String(l.msg))), {
        timeoutMs: 5000,
      });
      assert.equal(said!.attempt, 1);
      assert.match(String(said!.cause), /ECONNREFUSED/);
      const sender = NetlinkSocket.open({ protocol: USERSOCK });
      sender.send(encodeMessage({ type: 16, flags: 0, seq: 1, pid: 0, payload: Buffer.from('held') }), { portId: 0, groups: bit(2) });
      sender.close();
      await waitFor('the message held for NATS', async () => ((await getJson(d, '/status')).fleet as FleetStatus).heldMessages, {
        timeoutMs: 5000,
        until: (n) => n === 1,
      });
      const res = await fetch(`${d.base}/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(d.token ? { authorization: `Bearer ${d.token}` } : {}) },
        body: JSON.stringify({ groups: [3], data: 'local' }),
      });
      assert.equal(res.status, 200, 'the local bridge works without NATS');
      assert.equal(metricValue(await getText(d, '/metrics'), 'nlbridge_nats_connected'), 0);
    } finally {
      const t0 = Date.now();
      assert.equal(await d.stop(), 0);
      assert.ok(Date.now() - t0 < 5000, 'stopped without waiting for NATS');
    }
  });
});

describe('fleet: a token from --nats-token-file', { skip: skipUnless('nats-server') }, () => {
  test('connects with the token from the file; without it the server refuses and the daemon keeps serving', async () => {
    const server = new NatsServer();
    await server.start('authorization { token: "s3cret-fleet" }');
    const tokenFile = path.join(server.dir, 'nats.token');
    fs.writeFileSync(tokenFile, 's3cret-fleet\n', { mode: 0o600 });
    const good = await spawnDaemon(['--nats', server.url, '--host-id', 'hostT', '--nats-token-file', tokenFile]);
    const bad = await spawnDaemon(['--nats', server.url, '--host-id', 'hostN']);
    try {
      await untilConnected(good, 'the daemon with the token connected');
      await waitFor(
        'the refusal logged',
        () => bad.logs.some((l) => /NATS (connect failed|connection closed|server error)/.test(String(l.msg))),
        { timeoutMs: 10000 },
      );
      assert.equal(((await getJson(bad, '/status')).fleet as FleetStatus).connected, false);
      assert.ok(bad.alive());
      for (const d of [good, bad])
        assert.ok(!d.logs.some((l) => JSON.stringify(l).includes('s3cret-fleet')), 'the token never reaches the log');
      const args = fs.readFileSync(`/proc/${good.pid}/cmdline`, 'utf8');
      assert.ok(!args.includes('s3cret-fleet'), 'nor the command line');
    } finally {
      await good.stop();
      await bad.stop();
      await server.stop();
    }
  });
});

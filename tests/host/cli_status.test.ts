// nlbridge status against a real daemon process, and what every command does
// with bad input: one line on stderr naming the problem, no stack, and the
// exit status of cli/exit_status.ts.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { hasStack, runCli } from './support/cli_harness';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { fleetStatus } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

describe('nlbridge status', () => {
  let d: DaemonProc;
  let socket: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    socket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-cli-')), 'nlb.sock');
    d = await spawnDaemon(['--auth', 'token', '--unix-socket', socket]);
    env = { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: path.join(d.dir, 'token') };
  });
  after(async () => {
    await d.stop();
  });

  test("over TCP with a token file: a table of the daemon's /status", async () => {
    const r = await runCli(['status'], { env });
    assert.equal(r.code, 0, r.stderr);
    const live = (await (await fetch(`${d.base}/status`, { headers: { authorization: `Bearer ${d.token}` } })).json()) as {
      version: string;
      portIds: { tx: number; rx: number };
    };
    assert.match(r.stdout, new RegExp(`^version +${live.version}$`, 'm'));
    assert.match(r.stdout, /^protocol +usersock \(2\), groups up to 32: /m);
    assert.match(r.stdout, /^kernel endpoint +no$/m);
    assert.match(r.stdout, /^module +not loaded$/m);
    assert.match(r.stdout, new RegExp(`^port ids +tx ${live.portIds.tx}, rx ${live.portIds.rx}$`, 'm'));
    assert.match(r.stdout, /^auth +token, token required$/m);
    assert.match(r.stdout, /^ {2}received +\d+$/m);
    assert.doesNotMatch(r.stdout, / +$/m, 'no trailing blanks');
  });

  test('over the unix socket, --json: the /status document itself', async () => {
    const r = await runCli(['status', '--json', '--url', `unix:${socket}`], { env: {} });
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(Object.keys(s).sort(), [
      'auth',
      'clients',
      'counters',
      'groups',
      'module',
      'portIds',
      'protocol',
      'uptimeSeconds',
      'version',
    ]);
    assert.equal((s.protocol as { name: string }).name, 'usersock');
  });

  test('bad input: a message naming it and a non-zero exit, never a stack', async () => {
    const cases: { args: string[]; env?: NodeJS.ProcessEnv; code: number; message: RegExp }[] = [
      { args: ['status', '--bogus'], code: 2, message: /^nlbridge status: Unknown option '--bogus' \(see nlbridge status --help\)$/ },
      { args: ['send', '-g', 'abc', 'x'], code: 2, message: /^nlbridge send: -g: "abc" is not a group mask/ },
      { args: ['send', '-g', '0', 'x'], code: 2, message: /^nlbridge send: -g: mask 0 names no group$/ },
      { args: ['send', '-l', '2,0', 'x'], code: 2, message: /^nlbridge send: -l: "0" is not a group number \(1\.\.1024\)/ },
      { args: ['send', '-i', '-5', 'x'], code: 2, message: /^nlbridge send: / },
      { args: ['send', '-i', 'abc', 'x'], code: 2, message: /^nlbridge send: -i: "abc" is not a number in 0\.\.4294967295$/ },
      { args: ['send', 'x'], code: 2, message: /^nlbridge send: where to\? give -g MASK, -l LIST, -i PID or --relay PID/ },
      { args: ['send', '-g', '2', '--hex', 'zz'], code: 2, message: /^nlbridge send: --hex: DATA must be an even number of hex digits$/ },
      { args: ['send', '-g', '2', 'a', 'b'], code: 2, message: /^nlbridge send: one DATA argument at most, got 2/ },
      { args: ['send', '--type', '3', '-g', '2', 'x'], code: 2, message: /^nlbridge send: --type: "3" is not a number in 16\.\.65535$/ },
      { args: ['watch'], code: 2, message: /^nlbridge watch: give the groups: a MASK \(watch 10\) or -l LIST/ },
      { args: ['watch', '0xZZ'], code: 2, message: /^nlbridge watch: MASK: "0xZZ" is not a group mask/ },
      { args: ['watch', '2', '--since', 'nope'], code: 2, message: /^nlbridge watch: --since: "nope" is not a cursor/ },
      {
        args: ['status', '--url', 'ftp://x'],
        code: 2,
        message: /^nlbridge status: --url: "ftp:\/\/x" must be http:\/\/HOST:PORT \(no path\) or unix:PATH$/,
      },
      {
        args: ['status'],
        env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: '/nonexistent/token' },
        code: 2,
        message: /^nlbridge status: NLBRIDGE_TOKEN_FILE: cannot read \/nonexistent\/token \(ENOENT\)$/,
      },
      // The daemon's own validation, for what only it knows: group 40 is past usersock's 32.
      { args: ['send', '-l', '40', 'x'], env, code: 1, message: /^nlbridge send: NEEDS_KERNEL \(409\): / },
      { args: ['watch', '-l', '40'], env, code: 1, message: /^nlbridge watch: [A-Z_]+ \(4\d\d\): / },
    ];
    for (const c of cases) {
      const r = await runCli(c.args, { env: c.env ?? {} });
      assert.equal(r.code, c.code, `${c.args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr.trimEnd(), c.message, c.args.join(' '));
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
      assert.ok(!hasStack(r.stderr), r.stderr);
    }
  });

  test('an unreachable daemon: exit 3 naming where it was looked for, for each command', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    for (const args of [['status'], ['send', '-g', '2', 'x'], ['watch', '2']]) {
      const r = await runCli([...args, '--url', `http://127.0.0.1:${port}`]);
      assert.equal(r.code, 3, `${args[0]}: ${r.stderr}`);
      assert.equal(
        r.stderr.trimEnd(),
        `nlbridge ${args[0]}: cannot reach the daemon at http://127.0.0.1:${port} (ECONNREFUSED): is it running? (choose another with --url or NLBRIDGE_URL)`,
      );
    }
    const r = await runCli(['status', '--url', 'unix:/nonexistent/nlb.sock']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot reach the daemon at unix:\/nonexistent\/nlb\.sock \(ENOENT\)/);
  });

  test("--help of each command lists its options and the exit statuses; nlbridge --help names the commands before the daemon's options", async () => {
    for (const [cmd, flags] of [
      ['send', ['-g, --groups', '-i, --pid', '--relay', '--hex', '--ack', '--type']],
      ['watch', ['-l, --list', '--since', '-n, --count']],
      ['status', []],
    ] as const) {
      const r = await runCli([cmd, '--help']);
      assert.equal(r.code, 0);
      for (const f of [...flags, '--url', '--token-file', '--json']) assert.ok(r.stdout.includes(f), `${cmd} --help: ${f}`);
      assert.match(r.stdout.replace(/\n/g, ' '), /Exit status: 0 .*; 1 .*; 2 .*; 3 .*; 4 /);
    }
    const top = await runCli(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /^usage: nlbridge send\|watch\|status \[options\]/);
    assert.match(top.stdout, /^usage: nlbridge \[options\]$/m, "then the daemon's own help");
    const version = await runCli(['--version']);
    assert.match(version.stdout, /^nlbridge \d+\.\d+\.\d+\n$/);
  });
});

describe('nlbridge status of a daemon in a fleet', { skip: skipUnless('nats-server') }, () => {
  test('the table has the fleet rows: host and connection, what it publishes, JetStream, the host id claim', async () => {
    const server = new NatsServer();
    await server.start();
    const d = await spawnDaemon(['--nats', server.url, '--host-id', 'H1', '--nats-publish', '2,4']);
    try {
      await waitFor('connected', async () => (await fleetStatus(d)).connected, { timeoutMs: 10000 });
      const r = await runCli(['status'], { env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: path.join(d.dir, 'token') } });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^fleet +host H1, connected to 127\\.0\\.0\\.1:${server.port}, 0 reconnects$`, 'm'));
      assert.match(r.stdout, /^ {2}publishing +groups 2, 4: \d+ published, 0 dropped, \d+ held$/m);
      assert.match(r.stdout, /^ {2}jetstream +off$/m);
      assert.match(r.stdout, /^ {2}host id +(checking|holding)$/m);
    } finally {
      await d.stop();
      await server.stop();
    }
  });

  test('without --nats: no fleet rows', async () => {
    const d = await spawnDaemon([]);
    try {
      const r = await runCli(['status'], { env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: path.join(d.dir, 'token') } });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /^fleet/m);
    } finally {
      await d.stop();
    }
  });
});

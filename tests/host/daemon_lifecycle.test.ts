// The daemon as a real process: --help and bad settings, systemd readiness
// and watchdog (a stand-in NOTIFY_SOCKET), socket activation, the unix
// socket, the generated token, and SIGTERM (clients get 1001, exit 0).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, connect, onJsonLines } from './support/daemon_harness';
import { waitFor } from '../support/wait';

const MAIN = path.join(ROOT, 'dist/daemon/main.js');

interface Proc {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line that matches. */
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
}

function run(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdio3?: number; shell?: string } = {}): Proc {
  const env = { ...process.env, NLBRIDGE_PROTOCOL: 'usersock', ...opts.env };
  const stdio: ('pipe' | 'ignore' | number)[] = ['ignore', 'pipe', 'pipe'];
  if (opts.stdio3 !== undefined) stdio.push(opts.stdio3);
  const child = opts.shell
    ? spawn('/bin/sh', ['-c', opts.shell, 'sh', process.execPath, MAIN, ...args], { env, cwd: opts.cwd ?? ROOT, stdio })
    : spawn(process.execPath, [MAIN, ...args], { env, cwd: opts.cwd ?? ROOT, stdio });
  const logs: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  onJsonLines(child.stdout!, (line) => {
    logs.push(line);
    for (const w of waiters.splice(0)) w();
  });
  const p: Proc = {
    child,
    logs,
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    // A deadline for a log line, not a measure: a start took over 5 s at load 20 on 2 CPUs.
    async waitLog(pred, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = logs.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no such log line; have ${JSON.stringify(logs).slice(0, 2000)} stderr ${p.stderr}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, 50);
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
  };
  child.stderr!.on('data', (c: Buffer) => (p.stderr += c.toString()));
  return p;
}

async function listeningPort(p: Proc): Promise<number> {
  const l = await p.waitLog((x) => typeof x.msg === 'string' && x.msg.startsWith('listening on'));
  return (l.address as { port: number }).port;
}

function get(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host: `127.0.0.1:${port}`, ...headers } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

function getUnix(socketPath: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, headers: { host: 'localhost' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

let sinkBin = '';
function buildSink(): string {
  if (sinkBin) return sinkBin;
  const out = path.join(ROOT, '.cache/host-support/notify_sink');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, path.join(ROOT, 'tests/host/support/notify_sink.c')]);
  sinkBin = out;
  return out;
}

describe('daemon process', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-life-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('--help lists the options and exits 0', () => {
    const r = spawnSync(process.execPath, [MAIN, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.match(r.stdout, /usage: nlbridge/);
    for (const flag of ['--port', '--protocol', '--auth', '--token-file', '--unix-socket', '--allowed-hosts', '--ws-buffer-bytes'])
      assert.ok(r.stdout.includes(flag), flag);
  });

  test('invalid settings exit 2 with a message naming the flag or variable', () => {
    const bad = spawnSync(process.execPath, [MAIN, '--port', 'eighty'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /nlbridge: --port: must be a port number 0\.\.65535 or "off", got "eighty"/);
    const env = spawnSync(process.execPath, [MAIN], { encoding: 'utf8', env: { ...process.env, NLBRIDGE_AUTH: 'sometimes' } });
    assert.equal(env.status, 2);
    assert.match(env.stderr, /NLBRIDGE_AUTH: must be auto, token or none/);
    const dummy = spawnSync(process.execPath, [MAIN, '--protocol', 'dummy', '--sysfs-root', tmp, '--port', '0'], { encoding: 'utf8' });
    assert.equal(dummy.status, 2);
    assert.match(dummy.stdout, /--protocol dummy: the dummy_netlink module is not loaded/);
  });

  test('auto protocol picks dummy_netlink from sysfs (fake root) and says why', async () => {
    const params = path.join(tmp, 'sys/module/dummy_netlink/parameters');
    fs.mkdirSync(params, { recursive: true });
    for (const [k, v] of Object.entries({ unit: '2', r_grps: '3', b_grp: '1', period_ms: '0', ngroups: '64', allow_unpriv: 'N' }))
      fs.writeFileSync(path.join(params, k), `${v}\n`);
    // unit 2 stands in for the module's unit here: the host has no module, USERSOCK sockets open.
    const p = run(['--port', '0', '--auth', 'none', '--protocol', 'auto', '--sysfs-root', path.join(tmp, 'sys')], {
      env: { NLBRIDGE_PROTOCOL: '' },
    });
    try {
      const port = await listeningPort(p);
      const line = await p.waitLog((l) => typeof l.msg === 'string' && l.msg.startsWith('netlink protocol'));
      assert.match(String(line.msg), /netlink protocol dummy \(2\): auto: dummy_netlink is loaded/);
      const st = JSON.parse((await get(port, '/status')).body) as {
        protocol: { name: string; maxGroup: number };
        module: { ngroups: number; r_grps: number };
      };
      assert.equal(st.protocol.name, 'dummy');
      assert.equal(st.protocol.maxGroup, 64);
      assert.equal(st.module.r_grps, 3);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  test('SIGTERM: READY then STOPPING to systemd, clients closed with 1001, exit 0 within 5 s; watchdog pings', async () => {
    const sock = path.join(tmp, 'notify.sock');
    const sink = spawn(buildSink(), [sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    let notes = '';
    sink.stdout.on('data', (c: Buffer) => (notes += c.toString()));
    await new Promise<void>((r) => sink.stderr.once('data', () => r()));
    const p = run(['--port', '0', '--auth', 'none'], { env: { NOTIFY_SOCKET: sock, WATCHDOG_USEC: '200000' } });
    try {
      const port = await listeningPort(p);
      const d = { wsBase: `ws://127.0.0.1:${port}`, token: null };
      const a = await connect(d, '/groups/2', { headers: { host: `127.0.0.1:${port}` } });
      const b = await connect(d, '/groups?list=3,4');
      await waitFor('READY=1 and a WATCHDOG=1 at the notify sink', () => notes, {
        timeoutMs: 5000,
        until: (n) => /^READY=1\|/m.test(n) && /^WATCHDOG=1$/m.test(n),
      });
      assert.match(notes, /^READY=1\|STATUS=serving on protocol usersock \(2\)$/m);
      assert.match(notes, /^WATCHDOG=1$/m, 'watchdog pings at half of WATCHDOG_USEC');
      const t0 = Date.now();
      p.child.kill('SIGTERM');
      const [codeA, codeB, exit] = await Promise.all([a.client.closed, b.client.closed, p.exited]);
      assert.equal(codeA, 1001);
      assert.equal(codeB, 1001);
      assert.equal(a.client.closeReason, 'server shutting down');
      assert.deepEqual(exit, { code: 0, signal: null });
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      // Sent before the exit; the sink (another process) prints it in its own time.
      await waitFor('STOPPING=1 at the notify sink', () => notes, { timeoutMs: 5000, until: (n) => /^STOPPING=1$/m.test(n) });
      assert.match(notes, /^STOPPING=1$/m);
      assert.ok(p.logs.some((l) => l.msg === 'stopped'));
      // A whole life (start, clients, SIGTERM) prints nothing but its log:
      // no Node or fastify warning (fastify 5.12's FSTDEP022 once did).
      assert.equal(p.stderr, '');
    } finally {
      p.child.kill('SIGKILL');
      sink.kill();
    }
  });

  test('SIGTERM while still starting (netlink open, not yet listening): a clean stop once up, exit 0, not death by signal', async () => {
    const p = run(['--port', '0', '--auth', 'none']);
    try {
      await p.waitLog((l) => l.msg === 'netlink sockets open');
      p.child.kill('SIGTERM');
      assert.deepEqual(await p.exited, { code: 0, signal: null });
      assert.ok(p.logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'));
      assert.ok(p.logs.some((l) => l.msg === 'stopped'));
    } finally {
      p.child.kill('SIGKILL');
    }
  });

  test('socket activation: serves on fd 3 from LISTEN_FDS', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
    const p = run(['--auth', 'none', '--port', 'off'], { stdio3: fd, shell: 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$@"' });
    try {
      await p.waitLog((l) => String(l.msg).includes('LISTEN_FDS'));
      // Our copy of the listening socket goes; the daemon's (fd 3) stays.
      server.close();
      const r = await get(port, '/healthz');
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as { status: string }).status, 'ok');
    } finally {
      server.close();
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });

  test('unix socket: authorized by its file mode (no token), TCP still needs the token', async () => {
    const sockPath = path.join(tmp, 'nlbridge.sock');
    const tokenFile = path.join(tmp, 'token');
    fs.writeFileSync(tokenFile, 'unix-test-token-0123456789\n', { mode: 0o600 });
    const p = run(['--port', '0', '--unix-socket', sockPath, '--unix-socket-mode', '0600', '--auth', 'token', '--token-file', tokenFile]);
    try {
      const port = await listeningPort(p);
      await p.waitLog((l) => String(l.msg).startsWith('listening on unix socket'));
      assert.equal(fs.statSync(sockPath).mode & 0o777, 0o600);
      const viaUnix = await getUnix(sockPath, '/status');
      assert.equal(viaUnix.status, 200);
      assert.equal((await get(port, '/status')).status, 401);
      assert.equal((await get(port, '/status', { authorization: 'Bearer unix-test-token-0123456789' })).status, 200);
      // WebSocket over the unix socket too.
      const { default: WebSocket } = await import('ws');
      const ws = new WebSocket(`ws+unix://${sockPath}:/groups/2`);
      const hello = await new Promise<Record<string, unknown>>((resolve, reject) => {
        ws.once('message', (m: Buffer) => resolve(JSON.parse(m.toString()) as Record<string, unknown>));
        ws.once('error', reject);
      });
      assert.equal(hello.type, 'hello');
      ws.close();
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
    assert.ok(!fs.existsSync(sockPath), 'the socket file is removed on exit');
  });

  test('auth auto as root: a token is generated into a 0600 file, its path is logged, never the token', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const p = run(['--port', '0', '--auth', 'auto'], { cwd });
    try {
      const port = await listeningPort(p);
      const file = path.join(cwd, '.cache/nlbridge/token');
      const token = fs.readFileSync(file, 'utf8').trim();
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const line = await p.waitLog((l) => l.tokenFile === file);
      // The hint names the header file (curl -H @FILE), never a command that puts the token in argv.
      assert.match(String(line.msg), /curl -H @\S+\/\.cache\/nlbridge\/auth\.header/);
      assert.doesNotMatch(String(line.msg), /\$\(cat /);
      assert.equal((await get(port, '/status')).status, 401);
      assert.equal((await get(port, '/status', { authorization: `Bearer ${token}` })).status, 200);
      for (const l of p.logs) assert.ok(!JSON.stringify(l).includes(token));
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
});

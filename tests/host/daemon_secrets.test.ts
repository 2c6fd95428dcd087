// Secrets on disk and the first start, on the daemon as a real process: the
// token files are written only once it listens, kept per directory, never
// through a planted symlink, with a header file curl reads (-H @FILE); a
// second start on a taken port leaves the first daemon's token alone; the
// unix socket is born with its mode; plain messages (no stack) for a port in
// use and an unbuilt addon; no inline secret in a config others can read.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT } from './support/daemon_harness';
import { isRealRoot } from '../support/prerequisites';

const MAIN = path.join(ROOT, 'dist/daemon/main.js');

interface Proc {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
  waitLog(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  stop(): Promise<number | null>;
  /** The exit code of a start expected to fail; one still running after `ms` is stopped and reported. */
  failed(ms?: number): Promise<number | null | 'still running'>;
}

/**
 * Every daemon this file started. A test that fails between a start and its
 * stop leaves its daemon running, and a live child's pipes keep this file's
 * process (and the whole run) waiting forever: the last hook kills them.
 */
const started = new Set<ChildProcess>();
after(() => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function run(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; main?: string; prefix?: string[] }): Proc {
  const argv = [...(opts.prefix ?? []), process.execPath, opts.main ?? MAIN, '--protocol', 'usersock', ...args];
  const child = spawn(argv[0], argv.slice(1), {
    cwd: opts.cwd,
    env: { ...process.env, NOTIFY_SOCKET: '', WATCHDOG_USEC: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  const p: Proc = {
    child,
    logs: [],
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    // A deadline for a log line, not a measure: a start took over 5 s at load 20 on 2 CPUs.
    async waitLog(pred, ms = 20_000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const hit = p.logs.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`no such log line; stdout ${p.stdout.slice(0, 3000)} stderr ${p.stderr}`);
        await new Promise((r) => setTimeout(r, 30));
      }
    },
    async stop() {
      // Under strace the child is strace: signal the daemon itself (its pid is in every log line).
      const pid = opts.prefix ? (p.logs.find((l) => typeof l.pid === 'number')?.pid as number | undefined) : child.pid;
      if (child.exitCode === null && pid !== undefined) process.kill(pid, 'SIGTERM');
      return p.exited;
    },
    async failed(ms = 10000) {
      const timer = new Promise<'still running'>((r) => setTimeout(() => r('still running'), ms).unref());
      const code = await Promise.race([p.exited, timer]);
      if (code === 'still running') await p.stop();
      return code;
    },
  };
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    p.stdout += c.toString();
    buf += c.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        p.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        p.logs.push({ raw: line });
      }
    }
  });
  child.stderr!.on('data', (c: Buffer) => (p.stderr += c.toString()));
  return p;
}

async function port(p: Proc): Promise<number> {
  const l = await p.waitLog((x) => typeof x.msg === 'string' && x.msg.startsWith('listening on http'));
  return (l.address as { port: number }).port;
}

/** curl's HTTP status (the real client the READMEs name). */
function curl(args: string[]): string {
  return execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', ...args], { encoding: 'utf8' });
}

/** A failed start's whole output says `message` and carries no stack. */
function assertPlainFailure(p: Proc, message: RegExp): void {
  const fatal = p.logs.filter((l) => l.level === 60);
  assert.equal(fatal.length, 1, p.stdout + p.stderr);
  assert.match(String(fatal[0].msg), message);
  assert.equal(fatal[0].err, undefined, 'no error object (stack) in the log');
  assert.doesNotMatch(p.stdout + p.stderr, /\n\s+at |"stack"/, 'no stack trace');
}

const isFatal = (l: Record<string, unknown>): boolean => l.level === 60;

describe('token files', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-secrets-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test("a second start on the same port in the same directory fails plainly (exit 1) and leaves the first daemon's token valid", async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const a = run(['--port', '0', '--auth', 'token'], { cwd });
    try {
      const p = await port(a);
      const tokenFile = path.join(cwd, '.cache/nlbridge/token');
      const header = path.join(cwd, '.cache/nlbridge/auth.header');
      const before = fs.readFileSync(tokenFile, 'utf8');
      const stBefore = fs.statSync(tokenFile);
      const b = run(['--port', String(p), '--auth', 'token'], { cwd });
      assert.equal(await b.failed(), 1);
      assert.equal(fs.readFileSync(tokenFile, 'utf8'), before, 'the token file is unchanged');
      assert.equal(fs.statSync(tokenFile).ino, stBefore.ino, 'and not replaced');
      assert.equal(curl(['-H', `@${header}`, `http://127.0.0.1:${p}/status`]), '200');
      assert.equal(curl([`http://127.0.0.1:${p}/status`]), '401');
      assertPlainFailure(b, new RegExp(`^127\\.0\\.0\\.1:${p} is in use \\(another nlbridge\\?\\); use --port$`));
    } finally {
      await a.stop();
    }
  });

  test('curl -H @auth.header (the documented commands) against a real daemon; the header file is 0600 and holds exactly the header', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const d = run(['--port', '0', '--auth', 'token'], { cwd });
    try {
      const p = await port(d);
      const header = path.join(cwd, '.cache/nlbridge/auth.header');
      const token = fs.readFileSync(path.join(cwd, '.cache/nlbridge/token'), 'utf8').trim();
      assert.equal(fs.readFileSync(header, 'utf8'), `Authorization: Bearer ${token}\n`);
      assert.equal(fs.statSync(header).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.join(cwd, '.cache/nlbridge')).mode & 0o777, 0o700);
      const line = await d.waitLog((l) => l.headerFile === header);
      assert.match(String(line.msg), /curl -H @\S+auth\.header/);
      // As README.md and daemon/README.md write them, run from the daemon's directory.
      const send = execFileSync(
        'sh',
        [
          '-c',
          `curl -s -X POST -H 'content-type: application/json' -H @.cache/nlbridge/auth.header -d '{"groups":"0b1010","data":"hello"}' http://127.0.0.1:${p}/send`,
        ],
        { cwd, encoding: 'utf8' },
      );
      assert.equal((JSON.parse(send) as { ok: boolean }).ok, true, send);
      const status = execFileSync('sh', ['-c', `curl -s -H @.cache/nlbridge/auth.header http://127.0.0.1:${p}/status`], {
        cwd,
        encoding: 'utf8',
      });
      assert.equal((JSON.parse(status) as { protocol: { name: string } }).protocol.name, 'usersock');
      for (const l of d.logs) assert.ok(!JSON.stringify(l).includes(token), 'the token is never logged');
    } finally {
      await d.stop();
    }
  });

  test('the token is kept across starts in one directory; a token file others may read is refused (exit 2)', async () => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const tokenFile = path.join(cwd, '.cache/nlbridge/token');
    const first = run(['--port', '0', '--auth', 'token'], { cwd });
    await port(first);
    const token = fs.readFileSync(tokenFile, 'utf8');
    assert.equal(await first.stop(), 0);
    const second = run(['--port', '0', '--auth', 'token'], { cwd });
    try {
      const p = await port(second);
      assert.equal(fs.readFileSync(tokenFile, 'utf8'), token);
      assert.match(String((await second.waitLog((l) => l.tokenFile === tokenFile)).msg), /kept from an earlier start/);
      assert.equal(curl(['-H', `Authorization: Bearer ${token.trim()}`, `http://127.0.0.1:${p}/status`]), '200');
    } finally {
      await second.stop();
    }
    fs.chmodSync(tokenFile, 0o644);
    const third = run(['--port', '0', '--auth', 'token'], { cwd });
    assert.equal(await third.failed(), 2);
    assertPlainFailure(third, new RegExp(`^${tokenFile.replace(/[.]/g, '\\.')} may be read by others \\(mode 0644\\)`));
  });

  test('--token-out FILE writes the token to FILE itself, keeps it there across starts, and the header beside it', async () => {
    // Found from outside: --token-out DIR/my-token logged DIR/my-token but wrote DIR/token.
    const dir = fs.mkdtempSync(path.join(tmp, 'out-'));
    const tokenFile = path.join(dir, 'my-token');
    const first = run(['--port', '0', '--auth', 'token', '--token-out', tokenFile], { cwd: dir });
    await port(first);
    const token = fs.readFileSync(tokenFile, 'utf8');
    assert.match(token, /^[0-9a-f]{64}\n$/);
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['auth.header', 'my-token']);
    assert.equal(fs.readFileSync(path.join(dir, 'auth.header'), 'utf8'), `Authorization: Bearer ${token.trim()}\n`);
    assert.equal(await first.stop(), 0);
    const second = run(['--port', '0', '--auth', 'token', '--token-out', tokenFile], { cwd: dir });
    try {
      const p = await port(second);
      assert.match(String((await second.waitLog((l) => l.tokenFile === tokenFile)).msg), /kept from an earlier start/);
      assert.equal(curl(['-H', `Authorization: Bearer ${token.trim()}`, `http://127.0.0.1:${p}/status`]), '200');
    } finally {
      await second.stop();
    }
  });

  test('under systemd (a credential token, RUNTIME_DIRECTORY): the header file goes to the runtime directory, no copy of the token, curl -H @ works', async () => {
    const cred = fs.mkdtempSync(path.join(tmp, 'cred-'));
    const runtime = fs.mkdtempSync(path.join(tmp, 'run-'));
    fs.writeFileSync(path.join(cred, 'token'), 'credential-token-0123456789\n', { mode: 0o600 });
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const d = run(['--port', '0', '--auth', 'token'], { cwd, env: { CREDENTIALS_DIRECTORY: cred, RUNTIME_DIRECTORY: runtime } });
    try {
      const p = await port(d);
      const header = path.join(runtime, 'auth.header');
      assert.equal(fs.readFileSync(header, 'utf8'), 'Authorization: Bearer credential-token-0123456789\n');
      assert.equal(fs.statSync(header).mode & 0o777, 0o600);
      assert.deepEqual(fs.readdirSync(runtime), ['auth.header'], 'the credential is not copied');
      assert.ok(!fs.existsSync(path.join(cwd, '.cache')), 'nothing under the working directory');
      assert.equal(curl(['-H', `@${header}`, `http://127.0.0.1:${p}/status`]), '200');
    } finally {
      await d.stop();
    }
  });

  test('a planted .cache symlink: refused (exit 2) with a message naming the path, nothing written at its target', async (t) => {
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    const target = fs.mkdtempSync(path.join(tmp, 'attacker-'));
    fs.chmodSync(target, 0o777);
    fs.symlinkSync(target, path.join(cwd, '.cache'));
    const d = run(['--port', '0', '--auth', 'token'], { cwd });
    assert.equal(await d.failed(), 2);
    assertPlainFailure(
      d,
      new RegExp(`^${path.join(cwd, '.cache').replace(/[.]/g, '\\.')} is a symbolic link \\(to ${target.replace(/[.]/g, '\\.')}\\)`),
    );
    assert.deepEqual(fs.readdirSync(target), [], "nothing at the symlink's target");
    // The same for the inner directory, and for directories of another user or open to the group.
    fs.unlinkSync(path.join(cwd, '.cache'));
    fs.mkdirSync(path.join(cwd, '.cache'), { mode: 0o700 });
    fs.symlinkSync(target, path.join(cwd, '.cache/nlbridge'));
    const inner = run(['--port', '0', '--auth', 'token'], { cwd });
    assert.equal(await inner.failed(), 2);
    assertPlainFailure(inner, /\.cache\/nlbridge is a symbolic link/);
    assert.deepEqual(fs.readdirSync(target), []);
    fs.unlinkSync(path.join(cwd, '.cache/nlbridge'));
    fs.mkdirSync(path.join(cwd, '.cache/nlbridge'), { mode: 0o700 });
    // A directory of another user: only the real root can make one (in a
    // user namespace uid 65534 is not mapped: chown is EINVAL).
    if (isRealRoot()) {
      fs.chownSync(path.join(cwd, '.cache/nlbridge'), 65534, 65534);
      const foreign = run(['--port', '0', '--auth', 'token'], { cwd });
      assert.equal(await foreign.failed(), 2);
      assertPlainFailure(foreign, /\.cache\/nlbridge is owned by uid 65534, not by this daemon's uid 0/);
      assert.deepEqual(fs.readdirSync(path.join(cwd, '.cache/nlbridge')), []);
      fs.chownSync(path.join(cwd, '.cache/nlbridge'), 0, 0);
    } else t.diagnostic('not the real root: the directory owned by another user is not tried');
    fs.chmodSync(path.join(cwd, '.cache/nlbridge'), 0o770);
    const open = run(['--port', '0', '--auth', 'token'], { cwd });
    assert.equal(await open.failed(), 2);
    assertPlainFailure(open, /\.cache\/nlbridge may be written by group or others \(mode 0770\)/);
  });
});

describe('start-up failures', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-start-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('port in use (by anything): "127.0.0.1:PORT is in use (another nlbridge?); use --port", exit 1, no stack, no token written', async () => {
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
    const p = (holder.address() as net.AddressInfo).port;
    const cwd = fs.mkdtempSync(path.join(tmp, 'cwd-'));
    try {
      const d = run(['--port', String(p), '--auth', 'token'], { cwd });
      assert.equal(await d.failed(), 1);
      assertPlainFailure(d, new RegExp(`^127\\.0\\.0\\.1:${p} is in use \\(another nlbridge\\?\\); use --port$`));
      assert.ok(!fs.existsSync(path.join(cwd, '.cache/nlbridge/token')), 'no token file from a start that did not listen');
    } finally {
      holder.close();
    }
  });

  test('addon not built: says so and names the command that builds it, exit 1, no stack', async () => {
    // A copy of the compiled daemon without build/Release (the real build stays).
    const copy = fs.mkdtempSync(path.join(tmp, 'nobuild-'));
    fs.cpSync(path.join(ROOT, 'dist/addon'), path.join(copy, 'dist/addon'), { recursive: true });
    fs.cpSync(path.join(ROOT, 'dist/daemon'), path.join(copy, 'dist/daemon'), { recursive: true });
    for (const f of ['package.json', 'openapi.yaml', 'asyncapi.yaml']) fs.copyFileSync(path.join(ROOT, f), path.join(copy, f));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    const d = run(['--port', '0', '--auth', 'none'], { cwd: copy, main: path.join(copy, 'dist/daemon/main.js') });
    assert.equal(await d.failed(), 1);
    assertPlainFailure(
      d,
      /^the native addon is not built \(.*build\/Release\/nlbridge_netlink\.node is missing\): build it with "npm ci" \(or "npx node-gyp rebuild"\) in /,
    );
  });

  test('an inline secret in a config file every user may read: refused (exit 2); the same file 0600 starts; a world-readable --token-file is warned about', async () => {
    const conf = path.join(tmp, 'nlbridge.json');
    fs.writeFileSync(conf, JSON.stringify({ tokens: [{ name: 'dash', token: 'inline-secret-0123456789', read: [2] }] }));
    fs.chmodSync(conf, 0o644);
    const bad = run(['--config', conf, '--port', '0', '--auth', 'token'], { cwd: tmp });
    assert.equal(await bad.failed(), 2);
    assertPlainFailure(bad, /nlbridge\.json: "tokens" "dash" hold their secret inline in a file every local user may read \(mode 0644\)/);
    assert.doesNotMatch(bad.stdout, /inline-secret/);
    fs.chmodSync(conf, 0o600);
    const tokenFile = path.join(tmp, 'main.token');
    fs.writeFileSync(tokenFile, 'main-token-0123456789abcdef\n');
    fs.chmodSync(tokenFile, 0o644);
    const ok = run(['--config', conf, '--port', '0', '--auth', 'token', '--token-file', tokenFile], { cwd: tmp });
    try {
      const p = await port(ok);
      assert.equal(
        curl(['-H', 'Authorization: Bearer inline-secret-0123456789', `http://127.0.0.1:${p}/groups/2/recent`]),
        '200',
        'the scoped token is accepted (it may read group 2)',
      );
      const warn = await ok.waitLog((l) => l.level === 40);
      assert.match(String(warn.msg), /--token-file .*main\.token may be read by every local user \(mode 0644\)/);
      assert.ok(!ok.logs.some(isFatal));
    } finally {
      await ok.stop();
    }
  });
});

describe('unix socket', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-unix-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test(
    'born with its mode and group: no chmod or chown by path after the bind (strace), mode and group right',
    { skip: isRealRoot() ? false : 'needs the real root: the socket is given group 65534, which a user namespace does not map' },
    async () => {
      const sock = path.join(tmp, 'a.sock');
      const trace = path.join(tmp, 'strace.out');
      const d = run(
        ['--port', 'off', '--auth', 'none', '--unix-socket', sock, '--unix-socket-mode', '0620', '--unix-socket-group', '65534'],
        {
          cwd: tmp,
          prefix: [
            'strace',
            '-f',
            '-qq',
            '-o',
            trace,
            '-e',
            'trace=umask,bind,setresgid,setregid,setgid,chmod,fchmod,fchmodat,chown,fchown,lchown,fchownat',
          ],
        },
      );
      try {
        await d.waitLog((l) => String(l.msg).startsWith('listening on unix socket'));
        const st = fs.lstatSync(sock);
        assert.ok(st.isSocket());
        assert.equal(st.mode & 0o777, 0o620);
        assert.equal(st.gid, 65534);
        const calls = fs.readFileSync(trace, 'utf8');
        const bindLine = calls.split('\n').find((l) => l.includes('bind(') && l.includes(sock));
        assert.ok(bindLine, calls);
        assert.match(calls, /umask\(0157\)/, 'the umask is 0777 & ~0620 for the bind');
        const touching = calls.split('\n').filter((l) => /(chmod|chown)/.test(l) && l.includes(sock));
        assert.deepEqual(touching, [], 'nothing changes the socket by path');
      } finally {
        await d.stop();
      }
    },
  );

  test('a symlink planted at the socket path: refused (exit 2), its target untouched; a live socket is not taken over', async () => {
    const victim = path.join(tmp, 'victim');
    fs.writeFileSync(victim, 'x');
    fs.chmodSync(victim, 0o600);
    const sock = path.join(tmp, 'b.sock');
    fs.symlinkSync(victim, sock);
    const d = run(['--port', 'off', '--auth', 'none', '--unix-socket', sock], { cwd: tmp });
    assert.equal(await d.failed(), 2);
    assertPlainFailure(d, new RegExp(`^--unix-socket: ${sock.replace(/[.]/g, '\\.')} exists and is not a socket \\(a symbolic link\\)`));
    assert.equal(fs.statSync(victim).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(victim, 'utf8'), 'x');
    fs.unlinkSync(sock);
    const a = run(['--port', 'off', '--auth', 'none', '--unix-socket', sock], { cwd: tmp });
    try {
      await a.waitLog((l) => String(l.msg).startsWith('listening on unix socket'));
      const ino = fs.lstatSync(sock).ino;
      const b = run(['--port', 'off', '--auth', 'none', '--unix-socket', sock], { cwd: tmp });
      assert.equal(await b.failed(), 1);
      assertPlainFailure(b, /is in use \(another nlbridge\?\)/);
      assert.equal(fs.lstatSync(sock).ino, ino, 'the running daemon keeps its socket');
      assert.equal(
        spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--unix-socket', sock, 'http://localhost/healthz'], {
          encoding: 'utf8',
        }).stdout,
        '200',
      );
    } finally {
      await a.stop();
    }
  });
});

// Case 8: crash and restart, in the systemd VM of the end-to-end test (the
// same cached image, tests/vm/e2e/image.sh, booted by tests/vm/e2e/vm.ts).
// Load all along: in the guest, ww_nlk sends to group 3 in a loop and four
// loops POST /send to group 3 (support/post_loop.ts, run by the guest's node:
// each request logged with its start, end, outcome and HTTP status); on the
// host, two WebSocket clients stream group 3 through the forwarded port.
//
// kill -9 of the daemon: systemd starts a new one (the time from the kill to
// the new MainPID and to its READY=1 / "listening" is measured in the guest
// and from the journal), the clients reconnect and receive again, none of the
// dead process's netlink sockets is left in /proc/net/netlink, and sends work.
// KVM does not work on these hosts, and under TCG the guest runs about 100×
// slower than the host: the 2 s limit is checked on the time calibrated to
// real hardware (RestartSec + systemd's share scaled by the slowdown measured
// on this very start + the daemon's native start); with NLB_VM_ACCEL=kvm the
// guest's own READY time is checked as well.
// SIGTERM (systemctl stop) under the same load: every POST in flight when the
// stop began is answered (an HTTP status; never a reset or a timeout; a
// refused connection was never in flight), the clients are closed with
// 1001, exit status 0.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import { buildImage, sleep, Vm, type WsClient } from '../vm/e2e/vm';
import { spawnDaemon } from './support/daemon_proc';
import { recordCase } from './support/report';
import { skipUnless } from '../support/prerequisites';

const GROUP_MASK = 4; // group 3: not the tick group, not in r_grps
const RESTART_LIMIT_MS = 2000;
const SKIP = skipUnless('vm-e2e');

let vm: Vm | null = null;
const figures: string[] = [];
const failures: string[] = [];
let bootSeconds = 0;
let bootStartMs = 0; // the daemon's start at boot in this VM: "Starting" to "Started" (READY=1)

/** A systemd time span as `systemctl show` prints it ("500ms", "1s", "1min 30s") in ms. */
function systemdMs(span: string): number {
  const unit: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, min: 60_000, h: 3_600_000 };
  let ms = 0;
  for (const m of span.matchAll(/([\d.]+)\s*(us|ms|s|min|h)\b/g)) ms += Number(m[1]) * unit[m[2]];
  return ms;
}

async function mainPid(v: Vm): Promise<number> {
  return Number((await v.unitProps('nlbridge.service', ['MainPID'])).MainPID);
}

/** Inodes and port ids of the netlink sockets process @pid holds. */
async function netlinkSocketsOf(v: Vm, pid: number): Promise<{ inode: string; port: number; protocol: number }[]> {
  const fds = await v.ok(`ls -l /proc/${pid}/fd 2>/dev/null | sed -n 's/.*socket:\\[\\([0-9]*\\)\\]$/\\1/p'`);
  const inodes = new Set(fds.trim().split('\n').filter(Boolean));
  return (await netlinkTable(v)).filter((s) => inodes.has(s.inode));
}

async function netlinkTable(v: Vm): Promise<{ inode: string; port: number; protocol: number }[]> {
  const table = await v.ok('cat /proc/net/netlink');
  // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
  return table
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .map((c) => ({ protocol: Number(c[1]), port: Number(c[2]) | 0, inode: c[9] }));
}

function isLoad(f: Record<string, unknown>, prefix: string): boolean {
  return f.type === 'message' && typeof f.data === 'string' && f.data.startsWith(prefix);
}

async function connect(v: Vm, deadlineMs: number): Promise<WsClient> {
  for (;;) {
    try {
      return await v.ws(`/groups/${GROUP_MASK}`);
    } catch (err) {
      if (Date.now() > deadlineMs) throw err;
      await sleep(100);
    }
  }
}

/** Waits until the client has frames of both kinds of load after frame @from. */
async function receivesLoad(ws: WsClient, from: number, timeoutMs: number): Promise<void> {
  await ws.waitFor(
    () => ws.frames.slice(from).some((f) => isLoad(f, 'post-')) && ws.frames.slice(from).some((f) => isLoad(f, 'gload')),
    timeoutMs,
    'messages from both the POST loop and the ww_nlk loop',
  );
}

interface Post {
  start: number; // guest CLOCK_REALTIME, ms
  end: number;
  outcome: string; // "ok", or ECONNREFUSED, ECONNRESET, TIMEOUT ...
  status: string; // HTTP status, 000 when none
}

async function readPosts(v: Vm): Promise<Post[]> {
  const out = await v.ok('cat /tmp/posts.log 2>/dev/null || true');
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .map(([s, e, outcome, status]) => ({ start: Number(s), end: Number(e), outcome, status }));
}

const POST_LOOP = path.join(__dirname, 'support', 'post_loop.js');

async function startLoad(v: Vm): Promise<void> {
  // Light enough that the restarted daemon is not starved of the guest's
  // emulated CPUs: ~40 netlink messages/s and 4 POST loops.
  await v.ok(
    `rm -f /tmp/posts.log /tmp/posts.stop; cat >/tmp/post_loop.js <<'EOF_POST_LOOP'\n${fs.readFileSync(POST_LOOP, 'utf8')}\nEOF_POST_LOOP`,
  );
  await v.spawnJob('gload', 'while :; do ww_nlk -g 4 -c 10 -m gload >/dev/null 2>&1; sleep 0.25; done');
  await v.spawnJob('posts', 'exec node /tmp/post_loop.js "$(cat /etc/credstore/nlbridge.token)" 4 /tmp/posts.log /tmp/posts.stop');
}

async function stopLoad(v: Vm): Promise<void> {
  await v.ok('touch /tmp/posts.stop');
  await v.killJob('gload');
  // The loops end after their current request (at most its 20 s timeout).
  const deadline = Date.now() + 60_000;
  while ((await v.jobOutput('posts')).code === null) {
    assert.ok(Date.now() < deadline, 'the POST loops did not stop');
    await sleep(250);
  }
}

/** The first journal entry of the unit at or after @sinceUs matching @re: its time in µs. */
async function journalTime(v: Vm, sinceUs: number, re: RegExp): Promise<number | null> {
  const since = sinceUs ? `--since @${Math.floor(sinceUs / 1e6)}` : '-b';
  const out = await v.ok(`journalctl -u nlbridge ${since} -o json --no-pager`, 60_000);
  for (const line of out.split('\n')) {
    if (!line) continue;
    const e = JSON.parse(line) as { MESSAGE?: unknown; __REALTIME_TIMESTAMP?: string };
    const ts = Number(e.__REALTIME_TIMESTAMP);
    if (ts >= sinceUs && typeof e.MESSAGE === 'string' && re.test(e.MESSAGE)) return ts;
  }
  return null;
}

before(
  async () => {
    if (SKIP) return;
    const image = await buildImage();
    vm = new Vm(image.kver, image.img);
    bootSeconds = await vm.boot();
    vm.token = (await vm.ok('cat /etc/credstore/nlbridge.token')).trim();
    await vm.waitActive('nlbridge.service', 120_000);
    const starting = await journalTime(vm, 0, /^Starting nlbridge/);
    const started = await journalTime(vm, 0, /^Started nlbridge/);
    assert.ok(starting !== null && started !== null, 'no Starting/Started of nlbridge in the boot journal');
    bootStartMs = (started - starting) / 1000;
  },
  { timeout: 14 * 60_000 },
);

after(async () => {
  if (SKIP) return;
  if (vm) {
    if (failures.length) {
      const j = await vm.sh('journalctl -u nlbridge -b --no-pager | tail -n 40').catch(() => null);
      if (j) process.stderr.write(`--- guest journal (nlbridge) ---\n${j.stdout}\n`);
    }
    await vm.shutdown();
  }
  const pass = failures.length === 0 && figures.length === 3;
  recordCase({
    name: '8. Crash and restart',
    figure: `${figures.join('; ')}${failures.length ? `; FAILED: ${failures.join('; ')}` : ''} (VM booted in ${bootSeconds.toFixed(0)} s, TCG${vm && vm.bootAttempts > 1 ? `, boot attempt ${vm.bootAttempts}` : ''})`,
    pass,
  });
});

/** A step whose failure is also written into the report's figure. */
function step(name: string, fn: (v: Vm) => Promise<void>, timeoutMs: number): void {
  test(name, { timeout: timeoutMs, skip: SKIP }, async () => {
    try {
      assert.ok(vm, 'the VM did not boot');
      await fn(vm);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
      throw err;
    }
  });
}

step(
  'kill -9 under load: restarted within 2 s, clients reconnect and receive, no stale netlink socket, sends work',
  async (v) => {
    await startLoad(v);
    const clients = [await connect(v, Date.now() + 30_000), await connect(v, Date.now() + 30_000)];
    for (const c of clients) await receivesLoad(c, 0, 30_000);
    const pid0 = await mainPid(v);
    const restarts0 = Number((await v.unitProps('nlbridge.service', ['NRestarts'])).NRestarts);
    const socks0 = await netlinkSocketsOf(v, pid0);
    assert.ok(socks0.length >= 1, `the daemon (pid ${pid0}) holds no netlink socket`);

    const killedAtHost = Date.now();
    const out = await v.ok(
      [
        `pid=${pid0}; t0=$(date +%s%N); kill -9 $pid`,
        // The unit's cgroup lists the new process as soon as systemd forks it.
        'procs=/sys/fs/cgroup/system.slice/nlbridge.service/cgroup.procs',
        'for i in $(seq 2000); do n=$(head -n 1 $procs 2>/dev/null); [ -n "$n" ] && [ "$n" != "$pid" ] && break; sleep 0.005; done',
        'echo "$t0 $(date +%s%N) $n"',
      ].join('\n'),
      60_000,
    );
    const [t0ns, tForkNs, newPid] = out.trim().split(' ');
    const killUs = Number(t0ns) / 1000;
    const forkMs = (Number(tForkNs) - Number(t0ns)) / 1e6;
    await v.waitActive('nlbridge.service', 60_000);
    const pid1 = await mainPid(v);
    assert.notEqual(pid1, pid0);
    assert.equal(String(pid1), newPid, 'the first new process of the unit is its MainPID');
    // systemd logs "Started" when READY=1 arrives (Type=notify); the daemon logs "listening".
    const startingUs = await journalTime(v, killUs, /^Starting nlbridge/);
    const readyUs = await journalTime(v, killUs, /^Started nlbridge/);
    const listenUs = await journalTime(v, killUs, /listening on/);
    assert.ok(startingUs !== null && readyUs !== null, 'no "Starting"/"Started" entry after the kill');
    assert.ok(listenUs !== null, 'no "listening" entry after the kill');
    const readyMs = (readyUs - killUs) / 1000;
    const listenMs = (listenUs - killUs) / 1000;
    const restartStartMs = (readyUs - startingUs) / 1000;
    const p = await v.unitProps('nlbridge.service', ['NRestarts', 'ActiveState']);
    assert.equal(Number(p.NRestarts), restarts0 + 1);

    // The clients saw the connection go, and come back to a working stream.
    const codes = await Promise.all(clients.map((c) => Promise.race([c.closed, sleep(20_000).then(() => -1)])));
    assert.ok(
      codes.every((c) => c !== -1),
      `a client was not disconnected: ${codes.join(',')}`,
    );
    const again = [await connect(v, Date.now() + 30_000), await connect(v, Date.now() + 30_000)];
    for (const c of again) await receivesLoad(c, 0, 30_000);
    const reconnectMs = Date.now() - killedAtHost;

    // Nothing of the dead process is left on any netlink protocol.
    const table = await netlinkTable(v);
    const stale = socks0.filter((s) => table.some((t) => t.inode === s.inode));
    assert.deepEqual(stale, [], 'sockets of the killed daemon are still in /proc/net/netlink');
    const socks1 = await netlinkSocketsOf(v, pid1);
    assert.ok(socks1.length >= 1, 'the new daemon holds no netlink socket');

    await stopLoad(v);
    const posts = await readPosts(v);
    const killMs = killUs / 1000;
    const readyAt = readyUs / 1000;
    const afterReady = posts.filter((r) => r.start > readyAt);
    const notOk = afterReady.filter((r) => r.outcome !== 'ok' || r.status !== '200');
    assert.ok(afterReady.length > 0, 'no POST after READY');
    assert.deepEqual(notOk, [], 'POSTs after READY not answered 200');
    const cut = posts.filter((r) => r.start < killMs && r.end > killMs && r.outcome !== 'ok').length;
    const refused = posts.filter((r) => r.start >= killMs && r.start <= readyAt && r.outcome === 'ECONNREFUSED').length;
    for (const c of again) c.close();

    // The same daemon's cold start outside emulation: what READY costs on real hardware.
    const native: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = Date.now();
      const d = await spawnDaemon();
      native.push(Date.now() - t);
      await d.stop();
    }
    const nativeMs = native.sort((a, b) => a - b)[1];

    // Under TCG the guest runs many times slower than the host (and slower
    // still when the host is busy), so wall-clock times in the guest are not
    // what a real machine sees. The slowdown is measured on this very start:
    // the daemon's start after the kill in the guest ("Starting" to READY=1)
    // against its cold start natively. systemd's RestartSec is a timer, not
    // work: it is not scaled.
    const restartSecMs = systemdMs((await v.unitProps('nlbridge.service', ['RestartUSec'])).RestartUSec);
    const slowdown = Math.max(1, restartStartMs / nativeMs);
    const nativeKillToReadyMs = restartSecMs + Math.max(0, forkMs - restartSecMs) / slowdown + nativeMs;
    figures.push(
      `kill -9 under load (4 POST loops, ww_nlk loop, 2 WebSocket clients), in the VM under TCG: new MainPID ${forkMs.toFixed(0)} ms after the kill, ` +
        `"listening" after ${listenMs.toFixed(0)} ms, READY=1 after ${readyMs.toFixed(0)} ms (its start ${restartStartMs.toFixed(0)} ms; the boot-time start ${bootStartMs.toFixed(0)} ms); ` +
        `natively the daemon starts to listening+READY in ${nativeMs} ms (median of 3), so the guest ran ${slowdown.toFixed(0)}× slower: ` +
        `kill → READY on real hardware ≈ RestartSec ${restartSecMs} + ${(Math.max(0, forkMs - restartSecMs) / slowdown).toFixed(0)} + ${nativeMs} = ${nativeKillToReadyMs.toFixed(0)} ms (limit ${RESTART_LIMIT_MS}); NRestarts +1; ` +
        `clients closed (${codes.join(', ')}), both reconnected and streaming again ${(reconnectMs / 1000).toFixed(1)} s after the kill; ` +
        `${socks0.length} netlink sockets of the dead pid, 0 left in /proc/net/netlink; ${posts.length} POSTs: ${cut} cut by the kill, ` +
        `${refused} refused while down, ${afterReady.length}/${afterReady.length} after READY answered 200`,
    );
    assert.ok(nativeKillToReadyMs <= RESTART_LIMIT_MS, `kill → READY ≈ ${nativeKillToReadyMs.toFixed(0)} ms on real hardware`);
    // With hardware virtualisation (NLB_VM_ACCEL=kvm) the guest's own clock is the measure.
    if (v.accel !== 'tcg') assert.ok(readyMs <= RESTART_LIMIT_MS, `READY=1 came ${readyMs.toFixed(0)} ms after the kill`);
  },
  240_000,
);

step(
  'SIGTERM under load: in-flight POST /send answered, WebSocket clients closed with 1001, exit status 0',
  async (v) => {
    await v.waitActive('nlbridge.service', 60_000);
    await startLoad(v);
    const clients = [await connect(v, Date.now() + 30_000), await connect(v, Date.now() + 30_000)];
    for (const c of clients) await receivesLoad(c, 0, 30_000);
    // Let the POST loops get going, so requests are in flight at the stop.
    await sleep(2000);
    const out = await v.ok('s=$(date +%s%N); systemctl stop nlbridge; echo "$s $(date +%s%N)"', 90_000);
    const [stopNs, stoppedNs] = out.trim().split(' ').map(Number);
    const codes = await Promise.all(clients.map((c) => Promise.race([c.closed, sleep(20_000).then(() => -1)])));
    await stopLoad(v);
    const posts = await readPosts(v);
    const stopAt = stopNs / 1e6;
    const statuses = [...new Set(posts.filter((r) => r.outcome === 'ok').map((r) => r.status))];
    const inFlight = posts.filter((r) => r.start < stopAt && r.end > stopAt);
    const answered = inFlight.filter((r) => r.outcome === 'ok' && /^[1-5]\d\d$/.test(r.status));
    // Requests begun during the shutdown: answered, refused (no listener), or
    // reset; a reset is reported with when it began after the stop.
    const later = posts.filter((r) => r.start >= stopAt);
    const laterReset = later.filter((r) => r.outcome !== 'ok' && r.outcome !== 'ECONNREFUSED');
    const laterAnswered = later.filter((r) => r.outcome === 'ok').length;
    const refused = later.filter((r) => r.outcome === 'ECONNREFUSED').length;
    const earlierFailed = posts.filter((r) => r.end <= stopAt && r.outcome !== 'ok');
    const p = await v.unitProps('nlbridge.service', ['ActiveState', 'Result', 'ExecMainStatus']);
    await v.ok('systemctl start nlbridge', 90_000);
    await v.waitActive('nlbridge.service', 60_000);

    figures.push(
      `SIGTERM under the same load: stop took ${((stoppedNs - stopNs) / 1e6).toFixed(0)} ms; ${inFlight.length} POSTs in flight at the stop, ` +
        `${answered.length} answered (${[...new Set(answered.map((r) => r.status))].join('/') || '-'}), 0 reset; ` +
        `${later.length} begun during the shutdown: ${laterAnswered} answered, ${refused} refused, ${laterReset.length} reset` +
        (laterReset.length
          ? ` (begun ${laterReset.map((r) => `+${Math.round(r.start - stopAt)}`).join('/')} ms after the stop: connections accepted but not yet read when the server closed)`
          : '') +
        `; answers seen: ${statuses.join('/')}; WebSocket close codes ${codes.join(', ')}; ${p.ActiveState}, Result=${p.Result}, exit ${p.ExecMainStatus}`,
    );
    assert.ok(inFlight.length > 0, 'no POST was in flight when the stop began');
    assert.deepEqual(
      inFlight.filter((r) => !answered.includes(r)),
      [],
      'requests in flight at the stop that were not answered',
    );
    assert.deepEqual(earlierFailed, [], 'requests that failed before the stop');
    assert.deepEqual(codes, [1001, 1001]);
    assert.deepEqual([p.ActiveState, p.Result, p.ExecMainStatus], ['inactive', 'success', '0']);
  },
  240_000,
);

// The same SIGTERM race, made exact outside the VM: connections the daemon
// has accepted before the signal, whose POST arrives just after it. From the
// client's side these requests are in flight (connected, being sent); they
// must be answered (a 503 while closing is an answer), not reset.
test('SIGTERM: POSTs on connections accepted just before the signal are answered, not reset', { timeout: 60_000, skip: SKIP }, async () => {
  const d = await spawnDaemon();
  const CONNECTIONS = 5;
  const outcomes: Promise<string>[] = [];
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = net.connect(d.port, '127.0.0.1');
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      let data = '';
      s.on('data', (c: Buffer) => (data += c.toString()));
      outcomes.push(
        new Promise((resolve) => {
          s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
          s.on('close', () => resolve(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 'closed without an answer'));
        }),
      );
      socks.push(s);
    }
    const body = JSON.stringify({ groups: [3], data: 'sigterm-race' });
    d.proc.kill('SIGTERM');
    await sleep(5);
    for (const s of socks) {
      s.end(
        `POST /send HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\nAuthorization: Bearer ${d.token}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    const got = await Promise.all(outcomes);
    const answered = got.filter((o) => /^\d{3}$/.test(o)).length;
    figures.push(
      `native daemon, ${CONNECTIONS} connections accepted before SIGTERM with their POST sent 5 ms after it: ${answered} answered, outcomes ${got.join('/')}`,
    );
    if (answered !== CONNECTIONS)
      failures.push(
        `SIGTERM race: ${CONNECTIONS - answered}/${CONNECTIONS} requests on accepted connections were ${got.filter((o) => !/^\d{3}$/.test(o)).join('/')}`,
      );
    assert.equal(answered, CONNECTIONS, `outcomes: ${got.join(', ')}`);
  } finally {
    for (const s of socks) s.destroy();
    await d.stop();
  }
});

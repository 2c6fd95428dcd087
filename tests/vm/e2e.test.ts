// End to end on a booted Debian system, with nlbridge installed the way
// README.md's "Install on a system" says: `apt install ./nlbridge_*.deb`,
// dependencies resolved by apt, DKMS building the module. Then the checks a
// user's system must pass (the README's commands run literally, every route,
// tokens, the service's user and capabilities, restarts, kill -9, the module
// reload, a start without the module, socket activation, the watchdog), then
// an upgrade to the next version that keeps the edited config and the token,
// and a purge.
//
// One VM, one install, in this order, and not a VM per concern: under TCG a
// boot costs about a minute and each DKMS build of the module (install and
// upgrade) several, so the checks run on the system the install made (after a
// reboot, which the checks of what boot does need) and the upgrade and purge
// come last, once nothing else needs the package. An image with the package
// installed at build time would save the install's DKMS build but not run the
// postinst on a booted system (it loads the module and starts the service),
// which is what a user's `apt install` does.
//
// The guest (tests/vm/e2e/image.sh --for-deb: bookworm with dkms and the
// headers of the kernel it boots, no /usr/bin/node, no network) gets a local
// apt repository on a second, read-only disk: the package built by
// packaging/deb/build.sh (N, package.json's version; N+1, with --version, in
// a subdirectory so that README's `./nlbridge_*.deb` names N alone), and a
// `nodejs` package made here from the host's node binary, standing in for
// NodeSource's (bookworm's own nodejs is 18, which `nodejs (>= 20)` refuses).
// systemd/install.sh is tested by tests/vm/systemd_install.test.ts.
// Clients on the host (curl, HTTP, WebSocket) reach the daemon through a
// forwarded port; netlink peers in the guest (rr_nlk, ww_nlk) are driven
// through a guest agent. Prints "N passed, N failed" at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { buildImage, ROOT, sleep, Vm, type WsClient } from './e2e/vm';
import { requestEveryRoute } from './e2e/routes';
import { skipUnless } from '../support/prerequisites';

// The commands "Install on a system" gives (systemd/README.md and README.md), run here as
// written (as root, in the guest).
const README_COMMANDS = {
  install: 'apt install ./nlbridge_*.deb',
  status: 'systemctl status nlbridge',
  params: 'cat /sys/module/dummy_netlink/parameters/r_grps /sys/module/dummy_netlink/parameters/b_grp',
  curlStatus: 'curl -s -H @/run/nlbridge/auth.header http://127.0.0.1:8080/status',
  reload: [
    'systemctl stop nlbridge',
    'modprobe -r dummy_netlink',
    'modprobe dummy_netlink b_grp=4 period_ms=200',
    'systemctl start nlbridge',
  ],
  logs: 'journalctl -u nlbridge -b',
  runtimeToken: 'cat /run/nlbridge/token',
};

const SKIP = skipUnless('vm-e2e');
const TICK_GROUP = 2; // b_grp=2 in systemd/modprobe.d/dummy_netlink.conf
const CAP_NET_ADMIN = 12;
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const V1 = pkg.version;
/** N+1: the next patch release of package.json's version. */
const V2 = V1.replace(/(\d+)$/, (n) => String(Number(n) + 1));
const NODE_VERSION = process.versions.node;
const REPO = '/srv/nlbridge-repo'; // image.sh --for-deb: deb [trusted=yes] file:/srv/nlbridge-repo ./
const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y';
// The DKMS build of the module under TCG is most of an install.
const INSTALL_TIMEOUT = 15 * 60_000;

let vm: Vm | null = null;
let kver = '';
let work = '';
let passed = 0;
let failed = 0;
const timings: Record<string, number> = {};
const t0 = Date.now();

/** A test that counts toward the summary line. */
function countedTest(name: string, fn: () => Promise<void>, timeoutMs = 120_000, skip: string | false = false): void {
  test(name, { timeout: timeoutMs, skip }, async () => {
    try {
      await fn();
      passed++;
    } catch (err) {
      failed++;
      throw err;
    }
  });
}

/** A counted test on the booted VM. */
function vmTest(name: string, fn: (vm: Vm) => Promise<void>, timeoutMs = 120_000): void {
  countedTest(
    name,
    async () => {
      assert.ok(vm, 'the VM did not boot');
      await fn(vm);
    },
    timeoutMs,
    SKIP,
  );
}

function hostCurl(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

async function mainPid(v: Vm): Promise<number> {
  return Number((await v.unitProps('nlbridge.service', ['MainPID'])).MainPID);
}

function isTick(f: Record<string, unknown>): boolean {
  return f.type === 'message' && f.msgType === 'TICK';
}

/** packaging/deb/build.sh [--version VER] OUT; resolves with the .deb's path. */
function buildDeb(out: string, version?: string): Promise<string> {
  const args = version ? ['--version', version, out] : [out];
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'packaging/deb/build.sh'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout.trim().split('\n').at(-1)!);
      else reject(new Error(`build.sh ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
    });
  });
}

/**
 * A `nodejs` package of the host's node binary, as NodeSource's provides:
 * /usr/bin/node, the version of that node. Uncompressed: it is built for one
 * run and read from a local disk.
 */
function buildNodeDeb(out: string): string {
  const stage = path.join(work, 'nodejs');
  fs.mkdirSync(path.join(stage, 'usr/bin'), { recursive: true });
  fs.mkdirSync(path.join(stage, 'DEBIAN'));
  fs.copyFileSync(process.execPath, path.join(stage, 'usr/bin/node'));
  fs.chmodSync(path.join(stage, 'usr/bin/node'), 0o755);
  fs.writeFileSync(
    path.join(stage, 'DEBIAN/control'),
    [
      'Package: nodejs',
      `Version: ${NODE_VERSION}`,
      'Architecture: amd64',
      'Maintainer: nlbridge tests <tests@localhost>',
      'Depends: libc6, libstdc++6',
      'Section: javascript',
      'Priority: optional',
      `Description: Node.js ${NODE_VERSION} (the test host's binary)`,
      " A stand-in for NodeSource's nodejs package, built by tests/vm/e2e.test.ts.",
      '',
    ].join('\n'),
  );
  const deb = path.join(out, `nodejs_${NODE_VERSION}_amd64.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'pipe'] });
  return deb;
}

/** The bytes of the files under @dir. */
function treeBytes(dir: string): number {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .reduce((n, e) => n + (e.isDirectory() ? treeBytes(path.join(dir, e.name)) : fs.statSync(path.join(dir, e.name)).size), 0);
}

/** The repository's files on an ext4 image, for the guest's /dev/vdb. */
function repoImage(repo: string): string {
  const packages = execFileSync('dpkg-scanpackages', ['--multiversion', '.', '/dev/null'], {
    cwd: repo,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 16 << 20,
  });
  fs.writeFileSync(path.join(repo, 'Packages'), packages);
  const img = path.join(work, 'repo.img');
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, treeBytes(repo) + 64 * 1024 * 1024);
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'nlbridge-repo', '-d', repo, img]);
  return img;
}

async function guestToken(v: Vm): Promise<string> {
  return (await v.ok('cat /etc/credstore/nlbridge.token')).trim();
}

async function invocation(v: Vm): Promise<string> {
  return (await v.unitProps('nlbridge.service', ['InvocationID'])).InvocationID;
}

/** The daemon's /status, once it answers (a restart takes a few seconds under TCG). */
async function status(v: Vm): Promise<{ version: string; protocol: { name: string } }> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const r = await v.http('GET', '/status').catch((err: Error) => ({ status: 0, body: err.message, json: null }));
    if (r.status === 200) return r.json as { version: string; protocol: { name: string } };
    if (Date.now() > deadline) throw new Error(`/status: ${r.status} ${r.body}`);
    await sleep(500);
  }
}

before(
  async () => {
    if (SKIP) return;
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-e2e-'));
    const repo = path.join(work, 'repo');
    fs.mkdirSync(path.join(repo, 'upgrade'), { recursive: true });
    const tb = Date.now();
    // Both builds and the image at once: they wait on different things.
    const [, , image] = await Promise.all([buildDeb(repo), buildDeb(path.join(repo, 'upgrade'), V2), buildImage(['--for-deb'])]);
    timings.buildSeconds = (Date.now() - tb) / 1000;
    timings.imageSeconds = image.seconds;
    buildNodeDeb(repo);
    kver = image.kver;
    vm = new Vm(image.kver, image.img, undefined, [repoImage(repo)], true);
    timings.bootSeconds = await vm.boot();
    timings.bootAttempts = vm.bootAttempts;
    await vm.ok(`mount -o ro /dev/vdb ${REPO} && apt-get -q update`, 120_000);
  },
  { timeout: 20 * 60_000 },
);

after(async () => {
  if (SKIP) return;
  if (vm) {
    if (failed > 0) {
      const j = await vm.sh(`${README_COMMANDS.logs} --no-pager | tail -n 60; tail -n 40 /var/log/apt/term.log`).catch(() => null);
      if (j) process.stderr.write(`--- guest journal (nlbridge), apt's log ---\n${j.stdout}\n`);
    }
    await vm.shutdown();
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
  timings.totalSeconds = (Date.now() - t0) / 1000;
  process.stdout.write(`# vm e2e timings: ${JSON.stringify(timings)}\n`);
  process.stdout.write(`# vm e2e: ${passed} passed, ${failed} failed\n`);
});

countedTest('systemd/README.md and README.md give exactly the commands this test runs', async () => {
  for (const file of [path.join('systemd', 'README.md'), 'README.md']) {
    const readme = fs.readFileSync(path.join(ROOT, file), 'utf8');
    for (const cmd of Object.values(README_COMMANDS).flat()) assert.ok(readme.includes(cmd), `${file} lacks: ${cmd}`);
  }
});

vmTest(
  `${README_COMMANDS.install} (nlbridge ${V1}) takes nodejs (>= 20) from the local repository, not bookworm's 18`,
  async (v) => {
    assert.equal((await v.sh('test -e /usr/bin/node')).code, 1, 'the image has no /usr/bin/node of its own');
    assert.equal((await v.ok(`cd ${REPO} && echo ./nlbridge_*.deb`)).trim(), `./nlbridge_${V1}_amd64.deb`);
    const t = Date.now();
    // README's command as written; -y and a frontend because nobody answers its questions.
    const r = await v.sh(`cd ${REPO} && DEBIAN_FRONTEND=noninteractive ${README_COMMANDS.install} -y`, INSTALL_TIMEOUT);
    timings.installSeconds = (Date.now() - t) / 1000;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`The following NEW packages will be installed:\\s+nlbridge nodejs`));
    assert.match(await v.ok("dpkg-query -W -f '${Status} ${Version}' nlbridge"), new RegExp(`^install ok installed ${V1}$`));
    assert.equal(await v.ok("dpkg-query -W -f '${Version}' nodejs"), NODE_VERSION);
    assert.equal((await v.ok('node --version')).trim(), `v${NODE_VERSION}`);
  },
  INSTALL_TIMEOUT + 60_000,
);

vmTest('postinst built dummy_netlink with DKMS for the running kernel and loaded it with the configured parameters', async (v) => {
  assert.match(await v.ok('dkms status dummy_netlink'), new RegExp(`^dummy_netlink/${V1}, ${kver}, x86_64: installed`, 'm'));
  assert.match(await v.ok(`modinfo -k ${kver} -n dummy_netlink`), /\/updates\/dkms\/dummy_netlink\.ko/);
  const params = await v.ok(README_COMMANDS.params);
  assert.deepEqual(params.trim().split('\n'), ['3', '2']);
});

vmTest(
  'nlbridge.service is active after the install (started when the module came), answers /healthz and /status, and logged its start',
  async (v) => {
    await v.waitActive('nlbridge.service', 60_000);
    assert.equal((await v.ok('systemctl is-active nlbridge')).trim(), 'active');
    assert.equal((await v.ok('systemctl is-enabled nlbridge')).trim(), 'enabled');
    v.token = await guestToken(v);
    assert.match(v.token, /^[0-9a-f]{64}$/);
    const health = await v.http('GET', '/healthz', undefined, { token: null });
    assert.equal(health.status, 200, health.body);
    const s = await status(v);
    assert.equal(s.version, V1);
    assert.equal(s.protocol.name, 'dummy');
    const journal = await v.ok(`${README_COMMANDS.logs} --no-pager -o cat`);
    assert.match(journal, /netlink protocol dummy \(25\)/);
    assert.match(journal, /listening on http:\/\/127\.0\.0\.1:8080/);
  },
);

// What boot does with the installed package (modules-load.d, the enabled
// unit) is checked on the next boot: the checks below run after it.
vmTest(
  'the system boots again with the package installed, nlbridge.service active',
  async (v) => {
    timings.rebootSeconds = await v.reboot();
    // The repository's disk, for the upgrade at the end (a mount the test made, not the image's).
    await v.ok(`mount -o ro /dev/vdb ${REPO} && apt-get -q update`, 120_000);
    v.token = await guestToken(v);
    await v.waitActive('nlbridge.service', 120_000);
  },
  6 * 60_000,
);

vmTest('dummy_netlink was loaded at boot with the configured parameters', async (v) => {
  // systemd-modules-load loaded it (its only module), before nlbridge started.
  const ml = await v.unitProps('systemd-modules-load.service', ['ActiveState', 'ExecMainStatus', 'ActiveEnterTimestampMonotonic']);
  assert.deepEqual([ml.ActiveState, ml.ExecMainStatus], ['active', '0']);
  const kmsg = await v.ok('journalctl -k -b --no-pager -o cat');
  assert.match(kmsg, /dummy_netlink: unit 25, 64 groups, r_grps 0x3, b_grp 0x2, period 1000 ms/);
  const nb = await v.unitProps('nlbridge.service', ['ExecMainStartTimestampMonotonic']);
  assert.ok(
    Number(ml.ActiveEnterTimestampMonotonic) <= Number(nb.ExecMainStartTimestampMonotonic),
    'nlbridge started before the module was loaded',
  );
  const params = await v.ok(README_COMMANDS.params);
  assert.deepEqual(params.trim().split('\n'), ['3', '2']);
  const more = await v.ok('cd /sys/module/dummy_netlink/parameters && cat period_ms ngroups');
  assert.deepEqual(more.trim().split('\n'), ['1000', '64']);
  const status = await v.http('GET', '/status');
  assert.equal(status.status, 200, status.body);
  const s = status.json as { protocol: { name: string; number: number }; module: Record<string, unknown> };
  assert.equal(s.protocol.name, 'dummy');
  assert.equal(s.protocol.number, 25);
  assert.deepEqual(
    { r_grps: s.module.r_grps, b_grp: s.module.b_grp, period_ms: s.module.period_ms, ngroups: s.module.ngroups },
    { r_grps: 3, b_grp: 2, period_ms: 1000, ngroups: 64 },
  );
});

vmTest('nlbridge.service is enabled, active and reported ready (Type=notify)', async (v) => {
  const p = await v.unitProps('nlbridge.service', [
    'ActiveState',
    'SubState',
    'UnitFileState',
    'Type',
    'StatusText',
    'NRestarts',
    'WatchdogUSec',
  ]);
  assert.equal(p.UnitFileState, 'enabled');
  assert.equal(p.Type, 'notify');
  // Type=notify: "active" only after READY=1; the STATUS= text came with it.
  assert.equal(p.ActiveState, 'active', JSON.stringify(p));
  assert.equal(p.SubState, 'running');
  assert.match(p.StatusText, /serving on protocol dummy/);
  assert.equal(p.NRestarts, '0', 'restarted during boot (watchdog or crash)');
  const st = await v.ok(`${README_COMMANDS.status} --no-pager`);
  assert.match(st, /Active: active \(running\)/);
});

vmTest('the daemon runs as an unprivileged dynamic user with only CAP_NET_ADMIN', async (v) => {
  const pid = await mainPid(v);
  assert.ok(pid > 0);
  const status = await v.ok(`cat /proc/${pid}/status`);
  const field = (k: string): string => new RegExp(`^${k}:\\s*(.+)$`, 'm').exec(status)?.[1] ?? '';
  const uids = field('Uid').split(/\s+/).map(Number);
  assert.equal(uids.length, 4);
  for (const u of uids) assert.ok(u >= 61184 && u <= 65519, `uid ${u} is not a DynamicUser uid`);
  const want = (1n << BigInt(CAP_NET_ADMIN)).toString(16).padStart(16, '0');
  for (const k of ['CapEff', 'CapPrm', 'CapAmb', 'CapBnd']) assert.equal(field(k), want, k);
  assert.equal(field('NoNewPrivs'), '1');
  const user = (await v.ok(`ps -o user= -p ${pid}`)).trim();
  assert.equal(user, 'nlbridge');
});

vmTest('curl from the host: /status with the token, 401 without, Host checked', async (v) => {
  const base = `http://127.0.0.1:${v.apiPort}`;
  const ok = await hostCurl(['-s', '-H', 'Host: 127.0.0.1:8080', '-H', `Authorization: Bearer ${v.token}`, `${base}/status`]);
  assert.equal(ok.code, 0);
  assert.equal((JSON.parse(ok.stdout) as { protocol: { name: string } }).protocol.name, 'dummy');
  const noToken = await hostCurl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: 127.0.0.1:8080', `${base}/status`]);
  assert.equal(noToken.stdout, '401');
  const badHost = await hostCurl([
    '-s',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-H',
    'Host: evil.example',
    '-H',
    `Authorization: Bearer ${v.token}`,
    `${base}/status`,
  ]);
  assert.notEqual(badHost.stdout, '200');
  const inGuest = await v.ok(README_COMMANDS.curlStatus);
  assert.equal((JSON.parse(inGuest) as { protocol: { name: string } }).protocol.name, 'dummy');
});

vmTest('every route of openapi.yaml answers on the installed daemon, as the spec says (the public ones without a token)', async (v) => {
  await requestEveryRoute(v);
});

vmTest('POST /send reaches the kernel (STATS accepted goes up) and an in-guest rr_nlk', async (v) => {
  await v.spawnJob('rr2', 'exec rr_nlk -g 2');
  await sleep(1500);
  const before = await v.http('GET', '/kernel/stats');
  assert.equal(before.status, 200, before.body);
  const accepted0 = (before.json as { accepted: number }).accepted;
  const r = await v.http('POST', '/send', { groups: [2], data: 'e2e-post-send', ack: true });
  assert.equal(r.status, 200, r.body);
  const deadline = Date.now() + 10_000;
  let out = '';
  while (Date.now() < deadline) {
    out = (await v.jobOutput('rr2')).stdout;
    if (out.includes('e2e-post-send')) break;
    await sleep(250);
  }
  await v.killJob('rr2');
  assert.match(out, /group=2 .*data="e2e-post-send"/);
  const afterStats = await v.http('GET', '/kernel/stats');
  assert.ok((afterStats.json as { accepted: number }).accepted > accepted0, `${afterStats.body} vs accepted ${accepted0}`);
});

vmTest('a WebSocket on the tick group receives TICKs from the kernel', async (v) => {
  const ws = await v.ws(`/groups/${1 << (TICK_GROUP - 1)}`);
  try {
    const hello = await ws.waitFor((f) => f.type === 'hello', 10_000, 'hello');
    assert.deepEqual(hello.groups, [TICK_GROUP]);
    await ws.waitFor((f) => isTick(f) && ws.frames.filter(isTick).length >= 2, 10_000, 'two TICKs');
    const tick = ws.frames.find(isTick)!;
    assert.equal(tick.group, TICK_GROUP);
    assert.equal(tick.portId, 0);
  } finally {
    ws.close();
  }
});

vmTest('a WebSocket subscriber sees a message from an in-guest ww_nlk -g', async (v) => {
  const ws = await v.ws('/groups/4');
  try {
    await ws.waitFor((f) => f.type === 'hello', 10_000, 'hello');
    await v.ok('ww_nlk -g 4 -m e2e-from-ww_nlk');
    const m = await ws.waitFor((f) => f.type === 'message' && f.data === 'e2e-from-ww_nlk', 10_000, 'the ww_nlk message');
    assert.equal(m.group, 3);
  } finally {
    ws.close();
  }
});

vmTest('ww_nlk -i <port id> (kernel RELAY) reaches a ?unicast=1 WebSocket client', async (v) => {
  const ws = await v.ws('/groups/4?unicast=1');
  try {
    const hello = await ws.waitFor((f) => f.type === 'hello', 10_000, 'hello');
    const portId = hello.portId as number;
    assert.ok(Number.isInteger(portId) && portId !== 0);
    assert.notEqual(portId, hello.bridgePortId);
    await v.ok(`ww_nlk -i ${portId} -a -m e2e-relay`);
    const m = await ws.waitFor((f) => f.type === 'message' && f.data === 'e2e-relay', 10_000, 'the relayed message');
    assert.equal(m.group, 0);
    assert.equal(m.portId, 0, 'a RELAY arrives from the kernel');
    // …as RELAYED, with the requester the module wrote in front of the data (root's ww_nlk).
    assert.equal(m.msgType, 'RELAYED');
    const from = m.relayedFrom as { portId: number; uid: number };
    assert.equal(from.uid, 0);
    assert.ok(Number.isInteger(from.portId) && from.portId !== 0 && from.portId !== portId, JSON.stringify(from));
  } finally {
    ws.close();
  }
});

vmTest('rmmod is refused while the daemon holds the unit open', async (v) => {
  const r = await v.sh('rmmod dummy_netlink');
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /in use/i);
  assert.equal((await v.ok('test -d /sys/module/dummy_netlink && echo loaded')).trim(), 'loaded');
});

async function reconnectAndTick(v: Vm, group = TICK_GROUP): Promise<void> {
  let ws: WsClient | null = null;
  const deadline = Date.now() + 30_000;
  while (!ws) {
    try {
      ws = await v.ws(`/groups/${1 << (group - 1)}`);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
  try {
    await ws.waitFor(isTick, 10_000, 'a TICK after reconnecting');
  } finally {
    ws.close();
  }
}

vmTest('systemctl restart: clients are closed with 1001, reconnect, ticks flow', async (v) => {
  const pid0 = await mainPid(v);
  const ws = await v.ws(`/groups/${1 << (TICK_GROUP - 1)}`);
  await ws.waitFor(isTick, 10_000, 'a TICK');
  await v.ok('systemctl restart nlbridge', 90_000);
  assert.equal(await Promise.race([ws.closed, sleep(10_000).then(() => -1)]), 1001);
  const pid1 = await mainPid(v);
  assert.ok(pid1 > 0 && pid1 !== pid0);
  await reconnectAndTick(v);
  const p = await v.unitProps('nlbridge.service', ['ActiveState']);
  assert.equal(p.ActiveState, 'active');
});

vmTest('systemd-analyze verify finds nothing wrong with the installed units', async (v) => {
  const r = await v.sh('systemd-analyze verify nlbridge.service nlbridge.socket', 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '');
});

vmTest('SIGTERM under load: in-flight POST /send requests are answered, clients closed with 1001, exit status 0', async (v) => {
  const ws = await v.ws(`/groups/${1 << (TICK_GROUP - 1)}`);
  await ws.waitFor((f) => f.type === 'hello', 10_000, 'hello');
  // 40 POSTs from in-guest curl, then stop: each curl gets an answer or a
  // refused connection, never a dropped one (curl 52 empty reply, 56 reset).
  const script = [
    'tok=$(cat /etc/credstore/nlbridge.token)',
    'for i in $(seq 40); do curl -s -o /dev/null -w "%{http_code}\\n" -H "Authorization: Bearer $tok" -H "Content-Type: application/json" -d "{\\"groups\\":[3],\\"data\\":\\"load-$i\\"}" http://127.0.0.1:8080/send >/tmp/curl.$i 2>&1; echo "rc=$? $(cat /tmp/curl.$i)" >>/tmp/curl.all & done',
    'sleep 0.3; systemctl stop nlbridge; wait',
    'cat /tmp/curl.all; rm -f /tmp/curl.*',
  ].join('\n');
  const out = await v.ok(script, 90_000);
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 40, out);
  for (const l of lines) assert.match(l, /^rc=(0 [1-5]\d\d|7 000)$/, `a request was dropped: ${l}`);
  assert.ok(
    lines.some((l) => l.startsWith('rc=0 200')),
    'no request was served before the stop',
  );
  timings.sigtermRequests = lines.length;
  timings.sigtermAnswered = lines.filter((l) => l.startsWith('rc=0 ')).length;
  assert.equal(await Promise.race([ws.closed, sleep(10_000).then(() => -1)]), 1001);
  const p = await v.unitProps('nlbridge.service', ['Result', 'ExecMainStatus', 'ActiveState']);
  assert.deepEqual([p.ActiveState, p.Result, p.ExecMainStatus], ['inactive', 'success', '0']);
  await v.ok('systemctl start nlbridge', 90_000);
  await v.waitActive('nlbridge.service', 60_000);
});

vmTest('kill -9 under load: systemd restarts it within 2 s, clients reconnect, no wedged sockets', async (v) => {
  await v.spawnJob('load', 'exec ww_nlk -g 4 -c 1000000 -m load');
  let loadRunning = true;
  try {
    const ws = await v.ws('/groups/4');
    await ws.waitFor((f) => f.type === 'message', 10_000, 'load traffic');
    const pid0 = await mainPid(v);
    const ms = Number(
      await v.ok(
        [
          `pid=${pid0}; t0=$(date +%s%N); kill -9 $pid`,
          // The unit's cgroup lists the new process as soon as systemd forks it
          // (cheaper to poll under emulation than systemctl).
          'procs=/sys/fs/cgroup/system.slice/nlbridge.service/cgroup.procs',
          'for i in $(seq 1000); do n=$(head -n 1 $procs 2>/dev/null); [ -n "$n" ] && [ "$n" != "$pid" ] && break; sleep 0.01; done',
          'echo $(( ($(date +%s%N) - t0) / 1000000 ))',
        ].join('\n'),
      ),
    );
    timings.killRestartMs = ms;
    assert.ok(ms <= 2000, `restarted after ${ms} ms`);
    // 1006 (connection lost), or 1013 if the flood had already closed it as slow.
    assert.notEqual(await Promise.race([ws.closed, sleep(10_000).then(() => -1)]), -1, 'the client was not disconnected');
    timings.killReadyMs = ms + (await v.waitActive('nlbridge.service', 60_000));
    await v.killJob('load');
    loadRunning = false;
    const pid1 = await mainPid(v);
    assert.notEqual(pid1, pid0);
    const p = await v.unitProps('nlbridge.service', ['NRestarts']);
    assert.ok(Number(p.NRestarts) >= 1);
    // The killed process's sockets are gone (its tx port id was its pid).
    const socks = await v.ok('cat /proc/net/netlink');
    const ports = socks
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[1] === '25')
      .map((c) => Number(c[2]));
    assert.ok(!ports.includes(pid0), `port ${pid0} of the killed daemon is still open`);
    await reconnectAndTick(v);
  } finally {
    // A failure above must not leave the load's netlink socket open: it pins
    // the module, and the next tests (modprobe -r) would fail for it.
    if (loadRunning) await v.killJob('load').catch(() => undefined);
  }
});

vmTest('the documented module reload works (stop, modprobe -r, modprobe with new parameters, start)', async (v) => {
  for (const cmd of README_COMMANDS.reload) await v.ok(cmd, 90_000);
  await v.waitActive('nlbridge.service', 60_000);
  const params = await v.ok(README_COMMANDS.params);
  assert.deepEqual(params.trim().split('\n'), ['3', '4']);
  const s = (await v.http('GET', '/status')).json as { module: { b_grp: number; period_ms: number } };
  assert.deepEqual([s.module.b_grp, s.module.period_ms], [4, 200]);
  await reconnectAndTick(v, 3);
});

vmTest(
  'module absent at start: the daemon says so, no restart storm, comes up once the module is loaded',
  async (v) => {
    await v.ok('systemctl stop nlbridge && modprobe -r dummy_netlink && systemctl reset-failed nlbridge; true', 90_000);
    const since = (await v.ok('date +%s')).trim();
    const start = await v.sh('systemctl start nlbridge', 90_000);
    assert.notEqual(start.code, 0, 'start succeeded without the module');
    const journal = await v.ok(`journalctl -u nlbridge --since @${since} --no-pager -o cat`);
    assert.match(journal, /dummy_netlink module is not loaded/);
    // Logged at its priority (fatal → crit) under the identifier nlbridge: `-p err` finds it.
    const errors = await v.ok(`journalctl -u nlbridge -p err --since @${since} --no-pager -o short`);
    assert.match(errors, /nlbridge\[\d+\]: \{"level":60,.*dummy_netlink module is not loaded/);
    const infoOnly = await v.ok(`journalctl -u nlbridge -p err --since @${since} --no-pager -o cat`);
    assert.doesNotMatch(infoOnly, /"level":30/, 'an info line was stored at err or above');
    await sleep(5000);
    const p = await v.unitProps('nlbridge.service', ['ActiveState', 'NRestarts', 'ExecMainStatus']);
    assert.equal(p.ActiveState, 'failed');
    assert.equal(p.ExecMainStatus, '2');
    assert.equal(p.NRestarts, '0', 'restarted in a loop without the module');
    // Loading the module (with /etc/modprobe.d's parameters) brings it up.
    await v.ok('modprobe dummy_netlink');
    await v.waitActive('nlbridge.service', 60_000);
    const s = (await v.http('GET', '/status')).json as { protocol: { name: string }; module: { b_grp: number } };
    assert.equal(s.protocol.name, 'dummy');
    assert.equal(s.module.b_grp, 2);
    await reconnectAndTick(v);
  },
  180_000,
);

vmTest(
  'socket activation: nlbridge.socket starts the daemon on the first connection',
  async (v) => {
    await v.ok('systemctl disable --now nlbridge.service && systemctl enable --now nlbridge.socket', 90_000);
    const p0 = await v.unitProps('nlbridge.service', ['ActiveState']);
    assert.equal(p0.ActiveState, 'inactive');
    // The first connection starts it (a public route: the header file is
    // written by the daemon once it runs, so it cannot exist before).
    const health = await v.ok('curl -s --max-time 60 http://127.0.0.1:8080/healthz', 90_000);
    assert.equal((JSON.parse(health) as { status: string }).status, 'ok');
    const status = await v.ok(README_COMMANDS.curlStatus, 30_000);
    assert.equal((JSON.parse(status) as { protocol: { name: string } }).protocol.name, 'dummy');
    const p1 = await v.unitProps('nlbridge.service', ['ActiveState', 'StatusText']);
    assert.equal(p1.ActiveState, 'active');
    const journal = await v.ok('journalctl -u nlbridge -n 20 --no-pager -o cat');
    assert.match(journal, /LISTEN_FDS/);
    await v.ok('systemctl disable --now nlbridge.socket nlbridge.service && systemctl enable --now nlbridge.service', 90_000);
    await v.waitActive('nlbridge.service', 60_000);
    await reconnectAndTick(v);
  },
  240_000,
);

vmTest(
  'without /etc/credstore/nlbridge.token the unit still starts, with a token in /run/nlbridge/token',
  async (v) => {
    await v.ok('mv /etc/credstore/nlbridge.token /root/nlbridge.token && systemctl restart nlbridge', 90_000);
    try {
      await v.waitActive('nlbridge.service', 60_000);
      const runtime = (await v.ok(README_COMMANDS.runtimeToken)).trim();
      assert.match(runtime, /^[0-9a-f]{64}$/);
      assert.notEqual(runtime, v.token);
      assert.equal((await v.http('GET', '/status')).status, 401, 'the old token still works');
      assert.equal((await v.http('GET', '/status', undefined, { token: runtime })).status, 200);
      assert.equal((await v.ok('stat -c %a /run/nlbridge/token')).trim(), '600');
    } finally {
      await v.ok('mv /root/nlbridge.token /etc/credstore/nlbridge.token && systemctl restart nlbridge', 90_000);
    }
    await v.waitActive('nlbridge.service', 60_000);
    assert.equal((await v.http('GET', '/status')).status, 200);
  },
  240_000,
);

vmTest(
  'a disabled nlbridge.service is not started by loading the module',
  async (v) => {
    await v.ok('systemctl disable --now nlbridge && modprobe -r dummy_netlink && modprobe dummy_netlink', 90_000);
    await sleep(3000);
    const p = await v.unitProps('nlbridge.service', ['ActiveState', 'UnitFileState']);
    assert.deepEqual([p.ActiveState, p.UnitFileState], ['inactive', 'disabled']);
    await v.ok('systemctl enable --now nlbridge', 90_000);
    await v.waitActive('nlbridge.service', 60_000);
  },
  180_000,
);

vmTest(
  'watchdog: pings keep the daemon up past WatchdogSec; a frozen one is killed and restarted',
  async (v) => {
    const p0 = await v.unitProps('nlbridge.service', ['WatchdogUSec', 'NRestarts', 'MainPID']);
    assert.equal(p0.WatchdogUSec, '30s');
    const pid = Number(p0.MainPID);
    // Alive for longer than WatchdogSec without a restart: the pings arrive.
    const age = Number((await v.ok(`ps -o etimes= -p ${pid}`)).trim());
    if (age < 40) await sleep((40 - age) * 1000);
    const p1 = await v.unitProps('nlbridge.service', ['NRestarts', 'MainPID', 'ActiveState']);
    assert.deepEqual([p1.MainPID, p1.NRestarts, p1.ActiveState], [String(pid), p0.NRestarts, 'active']);
    const since = (await v.ok('date +%s')).trim();
    await v.ok(`kill -STOP ${pid}`);
    const deadline = Date.now() + 90_000;
    while (Number((await v.unitProps('nlbridge.service', ['MainPID'])).MainPID) === pid) {
      assert.ok(Date.now() < deadline, 'a frozen daemon was not killed by the watchdog');
      await sleep(1000);
    }
    const journal = await v.ok(`journalctl -u nlbridge --since @${since} --no-pager -o cat`);
    assert.match(journal, /[Ww]atchdog timeout/);
    await v.waitActive('nlbridge.service', 60_000);
    await reconnectAndTick(v);
  },
  240_000,
);

vmTest(
  `an upgrade to ${V2} keeps the edited config and the token, restarts the service on ${V2}, and leaves nothing of ${V1} in DKMS`,
  async (v) => {
    const conf = '/etc/nlbridge/nlbridge.json';
    // An edit the admin would make: the config stays valid, and differs from the package's.
    await v.ok(`sed -i 's/"logLevel": "info"/"logLevel": "debug"/' ${conf} && grep -q '"logLevel": "debug"' ${conf}`);
    const edited = await v.ok(`cat ${conf}`);
    const token = await guestToken(v);
    const before = await invocation(v);
    const t = Date.now();
    const r = await v.sh(`${APT} -o Dpkg::Options::=--force-confold install nlbridge`, INSTALL_TIMEOUT);
    timings.upgradeSeconds = (Date.now() - t) / 1000;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`The following packages will be upgraded:\\s+nlbridge`));
    assert.match(await v.ok("dpkg-query -W -f '${Status} ${Version}' nlbridge"), new RegExp(`^install ok installed ${V2}$`));
    assert.equal(await v.ok(`cat ${conf}`), edited);
    assert.equal(await guestToken(v), token);
    await v.waitActive('nlbridge.service', 60_000);
    assert.notEqual(await invocation(v), before, 'the service was not restarted');
    // The old token still opens it: the token the new daemon loaded is the kept one.
    assert.equal((await status(v)).version, V2);
    assert.equal((await v.ok('nlbridge --version')).trim(), `nlbridge ${V2}`);
    // DKMS: the new version built and installed, the old one gone from its tree and /usr/src.
    const dkms = await v.ok('dkms status dummy_netlink');
    assert.match(dkms, new RegExp(`^dummy_netlink/${V2}, ${kver}, x86_64: installed`, 'm'));
    assert.doesNotMatch(dkms, new RegExp(`dummy_netlink/${V1.replace(/\./g, '\\.')}[,:]`));
    // Its tree holds a directory per version (and kernel-… links to the built one).
    const versions = (await v.ok('ls /var/lib/dkms/dummy_netlink')).trim().split('\n');
    assert.deepEqual(
      versions.filter((e) => !e.startsWith('kernel-')),
      [V2],
    );
    assert.equal((await v.ok('ls -d /usr/src/dummy_netlink-*')).trim(), `/usr/src/dummy_netlink-${V2}`);
    assert.match(await v.ok(`modinfo -k ${kver} -n dummy_netlink`), /\/updates\/dkms\/dummy_netlink\.ko/);
    assert.equal((await v.ok(`find /lib/modules/${kver} -name 'dummy_netlink.ko*' | wc -l`)).trim(), '1');
  },
  INSTALL_TIMEOUT + 120_000,
);

vmTest(
  'apt-get purge removes the config, the token, the DKMS tree, and unloads the module',
  async (v) => {
    const r = await v.sh(`${APT} purge nlbridge`, 5 * 60_000);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.notEqual((await v.sh('dpkg-query -W -f "${Status}" nlbridge')).stdout, 'install ok installed');
    assert.equal((await v.sh('dpkg -s nlbridge')).code, 1, 'dpkg still knows nlbridge');
    for (const p of [
      '/etc/nlbridge',
      '/etc/credstore/nlbridge.token',
      '/etc/modprobe.d/dummy_netlink.conf',
      '/var/lib/dkms/dummy_netlink',
      '/sys/module/dummy_netlink',
      '/usr/lib/nlbridge',
      '/usr/bin/nlbridge',
    ])
      assert.equal((await v.sh(`test -e ${p}`)).code, 1, `${p} is left`);
    assert.equal((await v.ok('ls -d /usr/src/dummy_netlink-* 2>/dev/null | wc -l')).trim(), '0');
    assert.equal((await v.ok(`find /lib/modules/${kver} -name 'dummy_netlink.ko*' | wc -l`)).trim(), '0');
    assert.equal((await v.ok('dkms status dummy_netlink')).trim(), '');
    assert.notEqual((await v.sh('systemctl is-active nlbridge')).stdout.trim(), 'active');
    assert.equal((await v.ok('find /etc/systemd/system -name nlbridge.service | wc -l')).trim(), '0', 'enablement symlinks left');
  },
  6 * 60_000,
);

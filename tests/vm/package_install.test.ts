// The Debian package on a booted Debian, installed the way README.md says:
// `apt install ./nlbridge_*.deb`, with its dependencies resolved by apt. The
// guest (tests/vm/e2e/image.sh --for-deb: bookworm with dkms and the headers
// of the kernel it boots, no /usr/bin/node, no network) gets a local apt
// repository on a second, read-only disk: the package built twice by
// packaging/deb/build.sh (the version `npm run package:deb` builds, N, and
// N+1 with --version), and a `nodejs` package made here from the host's node
// binary, standing in for NodeSource's (bookworm's own nodejs is 18, which
// the package's `nodejs (>= 20)` refuses). Then: install N (DKMS builds and
// loads the module, the service starts), upgrade to N+1 with an edited
// conffile, purge. Prints "N passed, N failed" at the end.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { buildImage, ROOT, sleep, Vm } from './e2e/vm';
import { skipUnless } from '../support/prerequisites';

const SKIP = skipUnless('vm-deb');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const V1 = pkg.version;
/** N+1: the next patch release of package.json's version. */
const V2 = V1.replace(/(\d+)$/, (n) => String(Number(n) + 1));
const NODE_VERSION = process.versions.node;
const REPO = '/srv/nlbridge-repo'; // image.sh --for-deb: deb [trusted=yes] file:/srv/nlbridge-repo ./
const TICK_GROUP = 2;
const APT = 'DEBIAN_FRONTEND=noninteractive apt-get -q -y';
// The DKMS build of the module under TCG is most of an install.
const INSTALL_TIMEOUT = 15 * 60_000;

let vm: Vm | null = null;
let kver = '';
let passed = 0;
let failed = 0;
const timings: Record<string, number> = {};
const t0 = Date.now();
let work = '';

function vmTest(name: string, fn: (vm: Vm) => Promise<void>, timeoutMs = 120_000): void {
  test(name, { timeout: timeoutMs, skip: SKIP }, async () => {
    try {
      assert.ok(vm, 'the VM did not boot');
      await fn(vm);
      passed++;
    } catch (err) {
      failed++;
      throw err;
    }
  });
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
      " A stand-in for NodeSource's nodejs package, built by tests/vm/package_install.test.ts.",
      '',
    ].join('\n'),
  );
  const deb = path.join(out, `nodejs_${NODE_VERSION}_amd64.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'pipe'] });
  return deb;
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
  const bytes = fs.readdirSync(repo).reduce((n, f) => n + fs.statSync(path.join(repo, f)).size, 0);
  const img = path.join(work, 'repo.img');
  fs.closeSync(fs.openSync(img, 'w'));
  fs.truncateSync(img, bytes + 64 * 1024 * 1024);
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
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-debvm-'));
    const repo = path.join(work, 'repo');
    fs.mkdirSync(repo);
    const tb = Date.now();
    // Both builds and the image at once: they wait on different things.
    const [, , image] = await Promise.all([buildDeb(repo), buildDeb(repo, V2), buildImage(['--for-deb'])]);
    timings.buildSeconds = (Date.now() - tb) / 1000;
    timings.imageSeconds = image.seconds;
    buildNodeDeb(repo);
    kver = image.kver;
    vm = new Vm(image.kver, image.img, undefined, [repoImage(repo)]);
    timings.bootSeconds = await vm.boot();
    await vm.ok(`mount -o ro /dev/vdb ${REPO} && apt-get -q update`, 120_000);
  },
  { timeout: 20 * 60_000 },
);

after(async () => {
  if (SKIP) return;
  if (vm) {
    if (failed > 0) {
      const j = await vm.sh('journalctl -u nlbridge -b --no-pager | tail -n 60; tail -n 40 /var/log/apt/term.log').catch(() => null);
      if (j) process.stderr.write(`--- guest journal (nlbridge), apt's log ---\n${j.stdout}\n`);
    }
    await vm.shutdown();
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
  timings.totalSeconds = (Date.now() - t0) / 1000;
  process.stdout.write(`# vm package timings: ${JSON.stringify(timings)}\n`);
  process.stdout.write(`# vm package: ${passed} passed, ${failed} failed\n`);
});

vmTest(
  `apt install ./nlbridge_${V1}_amd64.deb takes nodejs (>= 20) from the local repository, not bookworm's 18`,
  async (v) => {
    assert.equal((await v.sh('test -e /usr/bin/node')).code, 1, 'the image has no /usr/bin/node of its own');
    const t = Date.now();
    const r = await v.sh(`cd ${REPO} && ${APT} install ./nlbridge_${V1}_amd64.deb`, INSTALL_TIMEOUT);
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
  const params = await v.ok('cat /sys/module/dummy_netlink/parameters/r_grps /sys/module/dummy_netlink/parameters/b_grp');
  assert.deepEqual(params.trim().split('\n'), ['3', '2']);
});

vmTest('nlbridge.service is active (started when the module came), answers /healthz and /status, and logged its start', async (v) => {
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
  const journal = await v.ok('journalctl -u nlbridge -b --no-pager -o cat');
  assert.match(journal, /netlink protocol dummy \(25\)/);
  assert.match(journal, /listening on http:\/\/127\.0\.0\.1:8080/);
});

vmTest('POST /send reaches an rr_nlk reading the group in the guest', async (v) => {
  await v.spawnJob('rr', 'exec rr_nlk -g 2');
  try {
    await sleep(1500);
    const r = await v.http('POST', '/send', { groups: [TICK_GROUP], data: 'deb-post-send', ack: true });
    assert.equal(r.status, 200, r.body);
    const deadline = Date.now() + 10_000;
    let out = '';
    while (Date.now() < deadline && !out.includes('deb-post-send')) {
      out = (await v.jobOutput('rr')).stdout;
      await sleep(250);
    }
    assert.match(out, /group=2 .*data="deb-post-send"/);
  } finally {
    await v.killJob('rr');
  }
});

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

// systemd/install.sh into a scratch root: what it installs, that a second run
// changes nothing the admin owns, that --uninstall removes it all, that
// errors are plain and non-zero, and that the DKMS tree it installs builds.
// At the VM level: like the VM tests it builds dummy_netlink.ko for Debian's
// kernel (root and the kernel headers).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { skipUnless } from '../support/prerequisites';
import { CONSOLE_FILES } from '../../daemon/http/console';

const ROOT = path.resolve(__dirname, '../../..');
const INSTALL = path.join(ROOT, 'systemd', 'install.sh');

function newestKernelWithHeaders(): string {
  const versions = fs
    .readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => fs.existsSync(`/usr/src/linux-headers-${v}/Makefile`) || fs.existsSync(`/lib/modules/${v}/build/Makefile`));
  versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const v = versions.at(-1);
  if (!v) throw new Error('no kernel with headers in /boot and /usr/src (sudo npm run prerequisites)');
  return v;
}

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(INSTALL, args, { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every path under dir (relative), with a type and, for files, a hash-free size+mode. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    const full = path.join(dir, rel);
    const st = fs.lstatSync(full);
    if (st.isDirectory()) {
      if (rel) out.push(`${rel}/`);
      for (const e of fs.readdirSync(full).sort()) walk(path.join(rel, e));
    } else if (st.isSymbolicLink()) {
      out.push(`${rel} -> ${fs.readlinkSync(full)}`);
    } else {
      out.push(`${rel} ${(st.mode & 0o7777).toString(8)}`);
    }
  };
  walk('');
  return out;
}

const SKIP = skipUnless('install');
const KVER = SKIP ? '' : newestKernelWithHeaders();
let target = '';

before(() => {
  if (SKIP) return;
  target = fs.mkdtempSync(path.join(os.tmpdir(), 'nlbridge-root-'));
});
after(() => {
  if (target) fs.rmSync(target, { recursive: true, force: true });
});

test(
  'install.sh --root installs the daemon, module, tools, units, config and enables the service',
  { timeout: 300_000, skip: SKIP },
  () => {
    const r = run(['--root', target, '--kernel', KVER]);
    assert.equal(r.code, 0, r.stderr);
    const has = (p: string): boolean => fs.existsSync(path.join(target, p));
    for (const p of [
      'usr/lib/nlbridge/dist/daemon/main.js',
      'usr/lib/nlbridge/build/Release/nlbridge_netlink.node',
      'usr/lib/nlbridge/openapi.yaml',
      'usr/lib/nlbridge/asyncapi.yaml', // served at GET /asyncapi.yaml
      'usr/lib/nlbridge/package.json',
      'usr/lib/nlbridge/node_modules/fastify/package.json',
      `lib/modules/${KVER}/extra/dummy_netlink.ko`,
      `lib/modules/${KVER}/modules.dep`,
      'usr/bin/rr_nlk',
      'usr/bin/ww_nlk',
      'usr/bin/nlbridge',
      'usr/share/man/man8/nlbridge.8',
      'usr/share/bash-completion/completions/nlbridge',
      'usr/lib/nlbridge/dist/bin/nlbridge.js',
      'usr/lib/nlbridge/dist/cli/main.js',
      'lib/systemd/system/nlbridge.service',
      'lib/systemd/system/nlbridge.socket',
      'lib/udev/rules.d/60-nlbridge.rules',
      'usr/lib/modules-load.d/dummy_netlink.conf',
      'etc/modprobe.d/dummy_netlink.conf',
      'etc/nlbridge/nlbridge.json',
      'etc/credstore/nlbridge.token',
      'usr/src/dummy_netlink-0.1.0/dkms.conf',
    ]) {
      assert.ok(has(p), `${p} missing`);
    }
    // The command runs the installed daemon with the system's node.
    assert.equal(fs.statSync(path.join(target, 'usr/bin/nlbridge')).mode & 0o777, 0o755);
    // The bin's dispatcher: the daemon by default, the client for send|watch|status.
    assert.match(
      fs.readFileSync(path.join(target, 'usr/bin/nlbridge'), 'utf8'),
      /^#!\/bin\/sh\nexec \/usr\/bin\/node \/usr\/lib\/nlbridge\/dist\/bin\/nlbridge\.js "\$@"\n$/,
    );
    // Production dependencies only.
    for (const dev of ['typescript', 'eslint', 'fast-check', 'netlink', '@types'])
      assert.ok(!has(`usr/lib/nlbridge/node_modules/${dev}`), `dev dependency ${dev} installed`);
    assert.ok(!has('usr/lib/nlbridge/dist/tests'));
    const link = fs.readlinkSync(path.join(target, 'etc/systemd/system/multi-user.target.wants/nlbridge.service'));
    assert.match(link, /\/lib\/systemd\/system\/nlbridge\.service$/);
    // Started again whenever the module is loaded (60-nlbridge.rules makes it a device unit).
    assert.equal(fs.readlinkSync(path.join(target, 'etc/systemd/system/sys-module-dummy_netlink.device.wants/nlbridge.service')), link);
    const token = fs.statSync(path.join(target, 'etc/credstore/nlbridge.token'));
    assert.equal(token.mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(target, 'etc/credstore')).mode & 0o777, 0o700);
    assert.match(fs.readFileSync(path.join(target, 'etc/credstore/nlbridge.token'), 'utf8'), /^[0-9a-f]{64}$/);
    const dep = fs.readFileSync(path.join(target, `lib/modules/${KVER}/modules.dep`), 'utf8');
    assert.match(dep, /^extra\/dummy_netlink\.ko:/m);
    const modinfo = execFileSync('modinfo', ['-F', 'vermagic', path.join(target, `lib/modules/${KVER}/extra/dummy_netlink.ko`)], {
      encoding: 'utf8',
    });
    assert.ok(modinfo.startsWith(`${KVER} `), modinfo);
  },
);

test('the installed daemon serves the console page at GET / from /usr/lib/nlbridge/console', { timeout: 60_000, skip: SKIP }, async (t) => {
  const lib = path.join(target, 'usr/lib/nlbridge');
  for (const f of ['index.html', ...Object.keys(CONSOLE_FILES)])
    assert.ok(fs.existsSync(path.join(lib, 'console', f)), `console/${f} missing`);
  assert.ok(!fs.existsSync(path.join(lib, 'console/tsconfig.json')), 'only the served files are installed');
  // The installed tree as it is, run from elsewhere: the route finds its
  // files beside dist/, not in this checkout.
  // Its config beside, not inside, the installed tree: --uninstall checks
  // that tree is left empty.
  const configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlbridge-console-'));
  t.after(() => fs.rmSync(configDir, { recursive: true, force: true }));
  const config = path.join(configDir, 'nlbridge.json');
  fs.writeFileSync(config, '{}');
  const port = 20_000 + (process.pid % 20_000);
  const daemon = spawn(
    process.execPath,
    [path.join(lib, 'dist/daemon/main.js'), '--config', config, '--port', String(port), '--auth', 'none', '--protocol', 'usersock'],
    { cwd: os.tmpdir(), stdio: 'ignore' },
  );
  t.after(() => daemon.kill('SIGTERM'));
  let page: Response | null = null;
  for (let i = 0; i < 100 && page === null; i++) {
    page = await fetch(`http://127.0.0.1:${port}/`).catch(() => null);
    if (page === null) await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(page, 'the installed daemon answered');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.equal(await page.text(), fs.readFileSync(path.join(lib, 'console/index.html'), 'utf8'));
  const script = await fetch(`http://127.0.0.1:${port}/console/main.js`);
  assert.equal(script.status, 200);
  assert.equal(await script.text(), fs.readFileSync(path.join(lib, 'console/main.js'), 'utf8'));
});

test(
  "a second run keeps the admin's config and token and gives the same tree, and warns about secrets the config should not hold",
  { timeout: 300_000, skip: SKIP },
  () => {
    const conf = path.join(target, 'etc/nlbridge/nlbridge.json');
    // The shipped config holds no secret and is readable by the DynamicUser service (as "others").
    assert.equal(fs.statSync(conf).mode & 0o777, 0o644);
    assert.doesNotMatch(fs.readFileSync(conf, 'utf8'), /"tokens"|"tokenFile"/);
    const edited =
      '{ "port": 9090, "protocol": "dummy", "tokens": [{ "name": "dash", "token": "inline-secret-0123456789" }, { "name": "push", "tokenFile": "/etc/nlbridge/push.token" }] }\n';
    fs.writeFileSync(conf, edited);
    const token = fs.readFileSync(path.join(target, 'etc/credstore/nlbridge.token'), 'utf8');
    const before = listing(target);
    const r = run(['--root', target, '--kernel', KVER]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fs.readFileSync(conf, 'utf8'), edited);
    assert.match(
      r.stderr,
      /install\.sh: warning: \/etc\/nlbridge\/nlbridge\.json holds the secret of token "dash" inline: .*nlbridge refuses to start with it; put the secret in \/etc\/credstore\/ and use "credential"/,
    );
    assert.match(
      r.stderr,
      /install\.sh: warning: \/etc\/nlbridge\/nlbridge\.json names a tokenFile for token "push": .*use "credential" instead/,
    );
    assert.doesNotMatch(r.stderr, /inline-secret/, 'the secret itself is not printed');
    assert.equal(fs.readFileSync(path.join(target, 'etc/credstore/nlbridge.token'), 'utf8'), token);
    assert.deepEqual(listing(target), before);
  },
);

test("the installed DKMS tree builds with dkms.conf's MAKE line", { timeout: 300_000, skip: SKIP }, () => {
  const src = path.join(target, 'usr/src/dummy_netlink-0.1.0');
  // dkms copies the source to $dkms_tree/NAME/VERSION/build and runs MAKE[0] there.
  const dkmsTree = fs.mkdtempSync(path.join(os.tmpdir(), 'nlbridge-dkms-'));
  try {
    const build = path.join(dkmsTree, 'dummy_netlink', '0.1.0', 'build');
    fs.mkdirSync(path.dirname(build), { recursive: true });
    fs.cpSync(src, build, { recursive: true });
    const kdir = fs.existsSync(`/lib/modules/${KVER}/build/Makefile`) ? `/lib/modules/${KVER}/build` : `/usr/src/linux-headers-${KVER}`;
    const script = `set -e; kernel_source_dir=${kdir}; dkms_tree=${dkmsTree}; . ./dkms.conf; test "$PACKAGE_VERSION" = 0.1.0; test "$BUILT_MODULE_NAME" = dummy_netlink; eval "\${MAKE[0]}"`;
    execFileSync('bash', ['-c', script], { cwd: build, stdio: ['ignore', 'ignore', 'pipe'] });
    assert.ok(fs.existsSync(path.join(build, 'dummy_netlink.ko')));
  } finally {
    fs.rmSync(dkmsTree, { recursive: true, force: true });
  }
});

test('--uninstall removes everything it installed', { timeout: 120_000, skip: SKIP }, () => {
  const r = run(['--root', target, '--kernel', KVER, '--uninstall']);
  assert.equal(r.code, 0, r.stderr);
  const left = listing(target).filter((p) => !p.endsWith('/') && !p.startsWith(`lib/modules/${KVER}/modules.`));
  assert.deepEqual(left, []);
  // A second uninstall is harmless.
  assert.equal(run(['--root', target, '--kernel', KVER, '--uninstall']).code, 0);
});

test('errors are plain and non-zero', { timeout: 60_000, skip: SKIP }, () => {
  const bad = run(['--root', target, '--kernel', '0.0.0-nonexistent']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /no kernel headers for 0\.0\.0-nonexistent/);
  const noRoot = run(['--root', path.join(target, 'missing')]);
  assert.notEqual(noRoot.code, 0);
  assert.match(noRoot.stderr, /is not a directory/);
  const unknown = run(['--frobnicate']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown argument '--frobnicate'/);
});

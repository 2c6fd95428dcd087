// What the tests need beyond `npm install`, in one place: the Debian packages,
// what each one is for, and how to tell that it is there.
//
// As a script it is the first step of `npm test` (and `npm run prerequisites`):
// it says what is missing and why; as root, with apt reachable, it installs
// it. When it cannot (not root, no network, no apt), nothing fails here: the
// tests that need what is missing skip, each with the reason and the command
// that would enable them — skipUnless() below. A test never installs
// anything itself, and never meets a missing program as a raw ENOENT.
//
//   node dist/tests/support/prerequisites.js            report only
//   node dist/tests/support/prerequisites.js --install  install what is missing (root)
//
// Presence is read from the machine each time (programs in PATH, files), not
// from a record of the last install, so a test run on its own
// (`node --test dist/tests/vm/e2e.test.js`) decides the same way.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';

export const INSTALL_COMMAND = 'sudo npm run prerequisites';

/**
 * PATH with the sbin directories added: depmod and mkfs.ext4 live there, and a
 * user's PATH (or root's after a plain `su`) often lacks them. run.ts gives
 * the tests this PATH.
 */
export function pathWithSbin(current = process.env.PATH ?? ''): string {
  const dirs = current.split(':').filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(':');
}

interface Package {
  /** The Debian package. */
  name: string;
  /** What the tests use it for. */
  why: string;
  /** null when usable; otherwise what is missing, in words. */
  missing(): string | null;
}

/** A program in PATH (so a PATH without it counts as missing, as it would for the test). */
function inPath(program: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, program), fs.constants.X_OK);
      return null;
    } catch {
      /* next */
    }
  }
  return `${program} is not in PATH`;
}

function programs(...names: string[]): () => string | null {
  return () => names.map(inPath).find((m) => m !== null) ?? null;
}

function readable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kernel versions with an image that can be booted (/boot/vmlinuz-VER and
 * initrd readable, /lib/modules/VER/kernel), newest last.
 */
export function bootableKernels(): string[] {
  let names: string[];
  try {
    names = fs.readdirSync('/boot');
  } catch {
    return [];
  }
  return names
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => readable(`/boot/vmlinuz-${v}`) && readable(`/boot/initrd.img-${v}`) && fs.existsSync(`/lib/modules/${v}/kernel`))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** Bootable kernels that also have their headers (the module is built for them), newest last. */
export function kernelsWithHeaders(): string[] {
  return bootableKernels().filter((v) => fs.existsSync(`/usr/src/linux-headers-${v}/Makefile`));
}

/** A statically linked /bin/busybox (the module VM's initramfs has no libc). */
function staticBusybox(): string | null {
  let head: Buffer;
  try {
    head = fs.readFileSync('/bin/busybox').subarray(0, 4096);
  } catch {
    return '/bin/busybox is missing';
  }
  return head.includes('ld-linux') ? '/bin/busybox is dynamically linked (the busybox package, not busybox-static)' : null;
}

/** THE list. Order: what npm install itself needs first, then by level. */
export const PACKAGES: readonly Package[] = [
  {
    name: 'build-essential',
    why: 'cc, g++ and make: the addon (node-gyp, already needed by npm install), the C peers the host tests build, dummy_netlink.ko',
    missing: programs('cc', 'g++', 'make'),
  },
  { name: 'python3', why: 'node-gyp; the raw netlink peers of reliability cases 6c and 6d', missing: programs('python3') },
  { name: 'curl', why: 'SSE and unix-socket clients in host and reliability tests, and in the VM', missing: programs('curl') },
  { name: 'iproute2', why: 'ip: brings up loopback in the private network namespace a non-root run uses', missing: programs('ip') },
  {
    name: 'systemd',
    why: 'systemd-analyze security scores systemd/nlbridge.service (host test, reliability case 11)',
    missing: programs('systemd-analyze'),
  },
  { name: 'strace', why: 'injects syscall faults into the daemon (reliability case 6b)', missing: programs('strace') },
  { name: 'websocketd', why: 'the peer the benchmark compares against (host test bench_smoke)', missing: programs('websocketd') },
  {
    name: 'chromium',
    why: 'the browser that loads the console page at GET / (host test console_browser, driven by playwright-core)',
    missing: programs('chromium'),
  },
  {
    name: 'prometheus',
    why: "promtool check metrics lints the daemon's /metrics (host test daemon_metrics); the package also brings a Prometheus server, unused",
    missing: programs('promtool'),
  },
  {
    name: 'nats-server',
    why: 'the NATS server the fleet tests start on a random loopback port (host tests fleet_*; Debian installs it as /usr/sbin/nats-server)',
    missing: programs('nats-server'),
  },
  {
    name: 'openssl',
    why: 'a CA and a server certificate for the NATS TLS test (host test fleet_permissions)',
    missing: programs('openssl'),
  },
  { name: 'kmod', why: 'depmod and modinfo: systemd/install.sh and its test', missing: programs('depmod', 'modinfo') },
  {
    name: 'dpkg-dev',
    why: "dpkg-architecture and dpkg-deb conventions: npm run package:deb and its test; dpkg-scanpackages: the VM package test's local apt repository",
    missing: programs('dpkg-deb', 'dpkg-architecture', 'dpkg-scanpackages'),
  },
  { name: 'lintian', why: "Debian's package checker, run on the .deb npm run package:deb builds", missing: programs('lintian') },
  {
    name: 'bash-completion',
    why: "bash completion's helpers (_init_completion), which cli/completion.bash uses; its test",
    missing: () =>
      fs.existsSync('/usr/share/bash-completion/bash_completion') ? null : '/usr/share/bash-completion/bash_completion is missing',
  },
  {
    name: 'linux-image-amd64',
    why: "Debian's kernel, booted under QEMU by the VM tests",
    missing: () => (bootableKernels().length ? null : 'no /boot/vmlinuz-VER with its initrd and /lib/modules/VER'),
  },
  {
    name: 'linux-headers-amd64',
    why: 'building dummy_netlink.ko for that kernel (VM tests, install.sh test, module style)',
    missing: () => (kernelsWithHeaders().length ? null : 'no /usr/src/linux-headers-VER for a kernel in /boot'),
  },
  { name: 'qemu-system-x86', why: 'runs both VMs (TCG: no KVM needed)', missing: programs('qemu-system-x86_64') },
  { name: 'busybox-static', why: "the module VM's initramfs", missing: staticBusybox },
  { name: 'cpio', why: 'packs that initramfs', missing: programs('cpio') },
  {
    name: 'mmdebstrap',
    why: "builds the systemd VM's Debian root (downloads ≈ 150 MB once, then cached in .cache/vm)",
    missing: programs('mmdebstrap'),
  },
  { name: 'e2fsprogs', why: "mkfs.ext4: the systemd VM's disk image", missing: programs('mkfs.ext4') },
  { name: 'perl', why: "runs the kernel's checkpatch.pl on the module", missing: programs('perl') },
  { name: 'xz-utils', why: 'unpacks checkpatch.pl from the kernel source tarball', missing: programs('xz') },
  {
    name: 'linux-source-6.1',
    why: "the kernel's checkpatch.pl (module style test)",
    missing: () => (fs.existsSync('/usr/src/linux-source-6.1.tar.xz') ? null : '/usr/src/linux-source-6.1.tar.xz is missing'),
  },
];

const BY_NAME = new Map(PACKAGES.map((p) => [p.name, p]));

/** Root in the initial user namespace (a user namespace's mapped root is not: it cannot become another user). */
export function isRealRoot(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    return /^\s*0\s+0\s+4294967295\s*$/.test(fs.readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

/** What a group of tests needs: packages, and whether it must be real root. */
interface Need {
  /** The tests that ask for it. */
  tests: string;
  packages: string[];
  root?: string;
}

const KERNEL_BUILD = ['build-essential', 'linux-image-amd64', 'linux-headers-amd64'];

/** The needs tests name in skipUnless(). */
export const NEEDS = {
  'vm-module': {
    tests: 'vm/module (the module under QEMU), reliability 9',
    packages: [...KERNEL_BUILD, 'qemu-system-x86', 'busybox-static', 'cpio'],
  },
  'vm-e2e': {
    tests: 'vm/e2e (the .deb installed with apt in a booted Debian with systemd, checked, upgraded, purged), reliability 8',
    packages: [...KERNEL_BUILD, 'qemu-system-x86', 'mmdebstrap', 'e2fsprogs', 'kmod', 'systemd', 'curl', 'dpkg-dev'],
    root: 'root: the VM image is built with mmdebstrap --mode=root and holds root-owned files',
  },
  install: {
    tests: 'vm/systemd_install',
    packages: [...KERNEL_BUILD, 'kmod', 'systemd'],
    root: 'root: systemd/install.sh refuses to run without it',
  },
  'module-style': { tests: 'vm/module_style (checkpatch, W=1 build)', packages: [...KERNEL_BUILD, 'linux-source-6.1', 'perl', 'xz-utils'] },
  'systemd-analyze': { tests: 'host/systemd_analyze, reliability 11', packages: ['systemd'] },
  strace: { tests: 'reliability 6b', packages: ['strace'] },
  websocketd: { tests: 'host/bench_smoke', packages: ['websocketd', 'build-essential'] },
  chromium: { tests: 'host/console_browser (the console page in a real browser)', packages: ['chromium'] },
  curl: { tests: 'host/daemon_sse (curl -N), reliability 10 (unix socket)', packages: ['curl'] },
  promtool: { tests: 'host/daemon_metrics (promtool check metrics)', packages: ['prometheus'] },
  python3: { tests: 'reliability 6c, 6d', packages: ['python3'] },
  deb: { tests: 'host/package_deb (npm run package:deb, lintian)', packages: ['build-essential', 'dpkg-dev', 'lintian'] },
  'bash-completion': { tests: 'host/cli_completion', packages: ['bash-completion'] },
  'nats-server': { tests: 'host/fleet_* (publishing on NATS, a server killed under load)', packages: ['nats-server'] },
  openssl: { tests: 'host/fleet_permissions (NATS over TLS with a CA made here)', packages: ['openssl'] },
  nobody: {
    tests: 'reliability 6d, 10 (unix socket, unprivileged sender)',
    packages: [],
    root: 'root: it runs a peer as the user nobody (setpriv)',
  },
} satisfies Record<string, Need>;

export type NeedName = keyof typeof NEEDS;

/** The packages of @need that are missing, with what is missing of each. */
export function missingPackages(need: NeedName): Array<{ name: string; why: string; detail: string }> {
  const out: Array<{ name: string; why: string; detail: string }> = [];
  for (const name of (NEEDS[need] as Need).packages) {
    const p = BY_NAME.get(name);
    if (!p) throw new Error(`prerequisites: ${need} names ${name}, which is not in PACKAGES`);
    const detail = p.missing();
    if (detail !== null) out.push({ name, why: p.why, detail });
  }
  return out;
}

/**
 * For a test's `skip` option: false when everything @needs name is there,
 * otherwise the reason and the command that would enable the test.
 *
 *   test('...', { skip: skipUnless('vm-e2e') }, async () => { ... });
 */
export function skipUnless(...needs: NeedName[]): string | false {
  const reasons: string[] = [];
  const packages = new Set<string>();
  let root = '';
  for (const need of needs) {
    for (const m of missingPackages(need)) {
      if (packages.has(m.name)) continue;
      packages.add(m.name);
      reasons.push(`${m.name} (${m.detail})`);
    }
    const r = (NEEDS[need] as Need).root;
    if (r && !root && !isRealRoot()) root = r;
  }
  if (!reasons.length && !root) return false;
  const parts: string[] = [];
  if (reasons.length) parts.push(`missing ${reasons.join(', ')}: \`${INSTALL_COMMAND}\` installs ${packages.size > 1 ? 'them' : 'it'}`);
  if (root) parts.push(`needs ${root}: run as root (\`sudo npm test\`)`);
  return parts.join('; ');
}

// --- the prerequisites step -------------------------------------------------

function log(line: string): void {
  process.stdout.write(`prerequisites: ${line}\n`);
}

/** apt-get with its output on the terminal (an install takes minutes); null when it succeeded, else what happened. */
function apt(args: string[]): string | null {
  const r = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status === 0) return null;
  return `apt-get ${args[0]} ${r.error ? `could not run: ${r.error.message}` : `exited ${r.status ?? r.signal}`}`;
}

/** The tests a missing package disables. */
function neededBy(pkg: string): string[] {
  return Object.values(NEEDS)
    .filter((n) => (n as Need).packages.includes(pkg))
    .map((n) => (n as Need).tests);
}

function main(): number {
  process.env.PATH = pathWithSbin();
  const install = process.argv.includes('--install');
  const strict = process.env.CI === 'true' || process.env.CI === '1';
  const missing = PACKAGES.map((p) => ({ p, detail: p.missing() })).filter((m) => m.detail !== null);
  if (!missing.length) {
    const rootOnly = Object.values(NEEDS)
      .filter((n) => (n as Need).root)
      .map((n) => (n as Need).tests);
    log(
      `all ${PACKAGES.length} packages the tests use are there${isRealRoot() ? '' : `; not root, so these skip: ${rootOnly.join('; ')}`}`,
    );
    return 0;
  }
  const names = missing.map((m) => m.p.name);
  const canInstall = install && isRealRoot() && inPath('apt-get') === null;
  log(`${canInstall ? 'installing' : 'missing'} ${names.join(' ')}:`);
  for (const { p, detail } of missing) log(`  ${p.name.padEnd(20)} ${p.why} [${detail}]`);
  let why = '';
  if (!install) why = 'this run only reports';
  else if (!isRealRoot()) why = 'not root';
  else if (inPath('apt-get') !== null) why = 'no apt-get on this machine';
  if (canInstall) {
    const heavy = names.some((n) => /^(linux-|qemu-)/.test(n));
    log(`apt-get install, as root${heavy ? ' (the kernel, its headers and QEMU are most of the download: a few minutes)' : ''}`);
    const t0 = Date.now();
    const failed = apt(['update', '-qq']) ?? apt(['install', '-y', '-qq', ...names]);
    if (failed) why = `${failed} (no network? the lines above say)`;
    else log(`apt-get install done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    if (!why) why = 'installed, but still not found';
  }
  const still = PACKAGES.filter((p) => p.missing() !== null);
  if (!still.length) return 0;
  const disabled = [...new Set(still.flatMap((p) => neededBy(p.name)))];
  log(`not installed (${why}): ${still.map((p) => p.name).join(' ')}`);
  log(`the tests that need them will skip, saying why: ${disabled.join('; ')}`);
  log(`to run them: ${INSTALL_COMMAND}`);
  if (strict) {
    log('CI is set: every test must run here, so this is an error');
    return 1;
  }
  return 0;
}

if (require.main === module) process.exitCode = main();

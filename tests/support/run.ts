// Runs test levels: node --test, one file at a time, over dist/tests/LEVEL/.
//
//   node dist/tests/support/run.js unit host reliability vm
//   node dist/tests/support/run.js --quick unit host     (npm run test:quick)
//
// --quick leaves out the few files that take most of the host level's time
// (QUICK_SKIPS, each said why); `npm test` runs them.
//
// As root it runs them as they are. As another user it runs them in a user
// namespace with a network namespace of its own (unshare --user
// --map-root-user --net): the netlink tests need CAP_NET_ADMIN to join
// NETLINK_USERSOCK groups, and the kernel checks that capability against the
// user namespace owning the network namespace, so there the user has it —
// and the run sees no one else's netlink traffic. Tests that need the real
// root (another user, the VM image) still skip there, saying so
// (prerequisites.ts: skipUnless).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { isRealRoot, pathWithSbin } from './prerequisites';

const DIST_TESTS = path.resolve(__dirname, '..');
const LEVELS = ['unit', 'host', 'reliability', 'vm'];
const QUICK_SKIPS: Record<string, string> = {
  'host/addon_asan.test.js': 'rebuilds the addon under ASan and reruns three files (≈ 30 s)',
  'host/bench_smoke.test.js': 'runs the whole benchmark at small counts (≈ 35 s)',
  'host/daemon_resume.test.js': 'one case floods the ring for a minute',
  'host/package_deb.test.js': 'builds the Debian package and runs lintian on it (≈ 2 min)',
};

const SOURCE_TESTS = path.resolve(DIST_TESTS, '../../tests');

/**
 * The test files of @dir (as node --test finds them: *.test.js), recursively,
 * sorted; not those whose .ts is gone (tsc leaves the output of a moved or
 * removed test behind in dist/).
 */
function testFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join(dir, f))
    .filter((f) => fs.existsSync(path.join(SOURCE_TESTS, path.relative(DIST_TESTS, f)).replace(/\.js$/, '.ts')))
    .sort();
}

function log(line: string): void {
  process.stdout.write(`run: ${line}\n`);
}

function main(): number {
  const quick = process.argv.includes('--quick');
  const levels = process.argv.slice(2).filter((a) => a !== '--quick');
  const unknown = levels.filter((l) => !LEVELS.includes(l));
  if (!levels.length || unknown.length) {
    process.stderr.write(`usage: run.js LEVEL... (levels: ${LEVELS.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''})\n`);
    return 2;
  }
  let targets = levels
    .map((l) => path.join(DIST_TESTS, l))
    .filter((d) => fs.existsSync(d))
    .flatMap(testFiles);
  if (quick) {
    targets = targets.filter((f) => !(path.relative(DIST_TESTS, f) in QUICK_SKIPS));
    for (const [file, why] of Object.entries(QUICK_SKIPS)) log(`quick: leaving out ${file} (${why}; npm test runs it)`);
  }
  const nodeTest = [process.execPath, '--test', '--test-concurrency=1', ...targets];
  process.env.PATH = pathWithSbin();
  const t0 = Date.now();
  let argv = nodeTest;
  if (!isRealRoot() && levels.some((l) => l !== 'unit')) {
    const probe = spawnSync('unshare', ['--user', '--map-root-user', '--net', '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
    if (probe.status === 0) {
      log('not root: in a user namespace with its own network namespace (CAP_NET_ADMIN there is enough for netlink groups)');
      argv = ['unshare', '--user', '--map-root-user', '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...nodeTest];
    } else {
      const why = (probe.error?.message ?? probe.stderr).trim();
      log(`not root, and no user namespace here (${why}): the netlink tests need CAP_NET_ADMIN`);
      log(`running the unit tests only; \`sudo npm test\` runs ${levels.filter((l) => l !== 'unit').join(', ')} too`);
      argv = [process.execPath, '--test', '--test-concurrency=1', ...testFiles(path.join(DIST_TESTS, 'unit'))];
      if (!levels.includes('unit')) return 0;
    }
  }
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  log(`${levels.join(' + ')}: ${r.status === 0 ? 'passed' : `failed (exit ${r.status ?? r.signal})`} in ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
  return r.status ?? 1;
}

process.exitCode = main();

// Runs test levels: node --test over dist/tests/LEVEL/.
//
//   node dist/tests/support/run.js unit host reliability vm
//   node dist/tests/support/run.js --quick unit host     (npm run test:quick)
//
// --quick leaves out the few files that take most of the host level's time
// (QUICK_SKIPS, each said why); `npm test` runs them.
//
// Each unit and host file runs in a network namespace of its own:
// NETLINK_USERSOCK groups are per network namespace, so files that use the
// same group numbers cannot see each other's messages, and --quick runs them
// QUICK_CONCURRENCY at a time (under a minute instead of 1.5). The files
// that measure the machine itself (SERIAL_FILES) run after those, alone.
// The reliability cases and the VMs run one at a time as they always did,
// in the namespace the run itself is in (the VM image build, mmdebstrap,
// needs the host's network).
//
// As root the namespaces are made with `unshare --net`. As another user they
// are made inside a user namespace (unshare --user --map-root-user --net):
// the netlink tests need CAP_NET_ADMIN to join NETLINK_USERSOCK groups, and
// the kernel checks that capability against the user namespace owning the
// network namespace, so there the user has it. Tests that need the real root
// (another user, the VM image) still skip there, saying so
// (prerequisites.ts: skipUnless).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import path from 'node:path';
import { isRealRoot, pathWithSbin } from './prerequisites';

const DIST_TESTS = path.resolve(__dirname, '..');
const ROOT = path.resolve(DIST_TESTS, '../..');
const LEVELS = ['unit', 'host', 'reliability', 'vm'];
/** Levels whose files may run side by side (each in its own network namespace). */
const PARALLEL_LEVELS = new Set(['unit', 'host']);
/**
 * Files at once in --quick (two cores here: three keep both busy while one
 * waits on a timer). The full run takes them one at a time: it is the run
 * whose verdict counts, and a test that measures rates or waits on a
 * deadline should not share the CPU with its neighbours there.
 */
const QUICK_CONCURRENCY = 3;
const QUICK_SKIPS: Record<string, string> = {
  'host/addon_asan.test.js': 'rebuilds the addon under ASan and reruns three files (≈ 30 s)',
  'host/bench_smoke.test.js': 'runs the whole benchmark at small counts (≈ 35 s)',
  'host/daemon_resume.test.js': 'one case floods the ring for a minute',
  'host/package_deb.test.js': 'builds the Debian package and runs lintian on it (≈ 2 min)',
  'host/addon_flood.test.js': 'a million broadcasts that must run alone (≈ 25 s)',
  'host/console_browser.test.js': 'drives Chromium through a flood, alone (≈ 20 s)',
};
/** Host files that measure what the machine can take: alone, or they measure their neighbours. */
const SERIAL_FILES: Record<string, string> = {
  'host/addon_flood.test.js': 'a million broadcasts with no loss needs the CPU to itself',
  'host/bench_smoke.test.js': 'the benchmark compares rates measured in the same run',
  'host/console_browser.test.js': "it bounds how long the page's main thread is busy during a flood; a neighbour's load would count in it",
};

/**
 * The longest of the files run side by side start first (≈ 10–25 s each
 * here), so the pool does not end on one of them running alone.
 */
const LONGEST_FIRST = ['host/daemon_secrets.test.js', 'host/cli_watch.test.js', 'host/daemon_lifecycle.test.js', 'host/cli_status.test.js'];

const SOURCE_TESTS = path.resolve(DIST_TESTS, '../../tests');

/**
 * A file still running after this long is killed with everything it started
 * and counted as failed: a test that leaks a child (a daemon whose pipes stay
 * open) would otherwise hold the run forever. The longest files take about a
 * third of it (the soak; the systemd VM on a fresh machine).
 */
const FILE_TIMEOUT_MS = 30 * 60_000;

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

/** How to put a command in a network namespace of its own, or null when this user cannot. */
type Isolate = ((argv: string[]) => string[]) | null;

function isolation(): { isolate: Isolate; why: string } {
  const inNetns = (unshare: string[]) => (argv: string[]) => [
    ...unshare,
    '--',
    'sh',
    '-c',
    'ip link set lo up && exec "$@"',
    'sh',
    ...argv,
  ];
  if (isRealRoot()) return { isolate: inNetns(['unshare', '--net']), why: 'root' };
  const user = ['unshare', '--user', '--map-root-user', '--net'];
  const probe = spawnSync(user[0]!, [...user.slice(1), '--', 'ip', 'link', 'set', 'lo', 'up'], { encoding: 'utf8' });
  if (probe.status === 0)
    return {
      isolate: inNetns(user),
      why: 'not root: in a user namespace with its own network namespace (CAP_NET_ADMIN there is enough for netlink groups)',
    };
  return {
    isolate: null,
    why: `not root, and no user namespace here (${(probe.error?.message ?? probe.stderr).trim()}): the netlink tests need CAP_NET_ADMIN`,
  };
}

interface FileResult {
  file: string;
  status: number | null;
  counts: Record<string, number>;
  seconds: number;
}

const COUNTED = ['tests', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;

/** The totals node --test prints at its end (TAP "# pass 3", spec "ℹ pass 3"). */
function countsOf(output: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of output.matchAll(/^(?:#|ℹ) (tests|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) counts[m[1]!] = Number(m[2]);
  return counts;
}

/** The process groups of the files running now, killed with the run on Ctrl-C. */
const running = new Set<number>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const pgid of running) process.kill(-pgid, 'SIGKILL');
    process.exit(130);
  });
}

/**
 * Runs one file under node --test, printing its whole output when it ends so
 * that files running side by side do not interleave their lines.
 */
function runFile(file: string, isolate: Isolate, reporter: string[]): Promise<FileResult> {
  const node = [process.execPath, '--test', ...reporter, file];
  const argv = isolate ? isolate(node) : node;
  const t0 = Date.now();
  return new Promise((resolve) => {
    // Its own process group, so a timeout kills what the file started too.
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    running.add(child.pid!);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      process.kill(-child.pid!, 'SIGKILL');
    }, FILE_TIMEOUT_MS);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      running.delete(child.pid!);
      let text = Buffer.concat(out).toString('utf8');
      if (timedOut)
        text += `\nnot ok - ${path.relative(DIST_TESTS, file)} was still running after ${FILE_TIMEOUT_MS / 60_000} min: killed with everything it started\n# fail 1\n`;
      const rel = path.relative(DIST_TESTS, file);
      process.stdout.write(`run: ── ${rel}\n${text}`);
      const seconds = (Date.now() - t0) / 1000;
      log(`── ${rel}: ${status === 0 ? 'passed' : `failed (exit ${status ?? signal})`} in ${seconds.toFixed(1)} s`);
      resolve({ file: rel, status: status ?? (signal ? 128 : 1), counts: countsOf(text), seconds });
    });
  });
}

async function runPool(files: string[], concurrency: number, isolate: Isolate, reporter: string[]): Promise<FileResult[]> {
  const results: FileResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < files.length) results.push(await runFile(files[next++]!, isolate, reporter));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return results;
}

async function main(): Promise<number> {
  const quick = process.argv.includes('--quick');
  const levels = process.argv.slice(2).filter((a) => a !== '--quick');
  const unknown = levels.filter((l) => !LEVELS.includes(l));
  if (!levels.length || unknown.length) {
    process.stderr.write(
      `usage: run.js LEVEL... (levels: ${LEVELS.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''})\n`,
    );
    return 2;
  }
  process.env.PATH = pathWithSbin();
  const t0 = Date.now();
  const { isolate, why } = isolation();
  let runLevels = levels;
  if (!isolate) {
    log(why);
    log(`running the unit tests only; \`sudo npm test\` runs ${levels.filter((l) => l !== 'unit').join(', ')} too`);
    runLevels = levels.filter((l) => l === 'unit');
    if (!runLevels.length) return 0;
  } else if (!isRealRoot()) log(why);

  const rel = (f: string): string => path.relative(DIST_TESTS, f);
  let targets = runLevels
    .map((l) => path.join(DIST_TESTS, l))
    .filter((d) => fs.existsSync(d))
    .flatMap(testFiles);
  if (quick) {
    targets = targets.filter((f) => !(rel(f) in QUICK_SKIPS));
    for (const [file, reason] of Object.entries(QUICK_SKIPS)) log(`quick: leaving out ${file} (${reason}; npm test runs it)`);
  }
  const isolated = targets.filter((f) => PARALLEL_LEVELS.has(rel(f).split('/')[0]!));
  const rank = (f: string): number => {
    const i = LONGEST_FIRST.indexOf(rel(f));
    return i < 0 ? LONGEST_FIRST.length : i;
  };
  const parallel = isolated.filter((f) => !(rel(f) in SERIAL_FILES)).sort((a, b) => rank(a) - rank(b));
  const serial = isolated.filter((f) => rel(f) in SERIAL_FILES);
  const asBefore = targets.filter((f) => !isolated.includes(f));

  // Built once before files run side by side: several call `make tools`,
  // and two makes writing the same binary at once could leave it torn.
  if (targets.some((f) => rel(f).startsWith('host/'))) {
    const make = spawnSync('make', ['-s', '-C', path.join(ROOT, 'module'), 'tools'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (make.status !== 0) {
      log(`make -C module tools failed (exit ${make.status}): the host tests need rr_nlk and ww_nlk`);
      return 1;
    }
  }

  const reporter = process.stdout.isTTY ? ['--test-reporter=spec'] : ['--test-reporter=tap'];
  const concurrency = quick ? QUICK_CONCURRENCY : 1;
  if (isolated.length)
    log(`${parallel.length} unit and host files ${concurrency} at a time, each in its own network namespace; then ${serial.length} alone`);
  // As root the rest run in the run's own namespace; otherwise in one user
  // namespace each, which is all this user can have.
  const results = [
    ...(await runPool(parallel, concurrency, isolate, reporter)),
    ...(await runPool(serial, 1, isolate, reporter)),
    ...(await runPool(asBefore, 1, isRealRoot() ? null : isolate, reporter)),
  ];

  const total: Record<string, number> = {};
  for (const r of results) for (const k of COUNTED) total[k] = (total[k] ?? 0) + (r.counts[k] ?? 0);
  const failed = results.filter((r) => r.status !== 0);
  log(`totals: ${COUNTED.map((k) => `${k} ${total[k] ?? 0}`).join(', ')} in ${results.length} files`);
  for (const r of failed) log(`failed: ${r.file} (${r.counts.fail ?? 0} failing tests)`);
  const ok = failed.length === 0;
  log(`${runLevels.join(' + ')}: ${ok ? 'passed' : `failed (${failed.length} files)`} in ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
  return ok ? 0 : 1;
}

main().then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    process.stderr.write(`run: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);

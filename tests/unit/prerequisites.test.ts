// tests/support/prerequisites.ts: a missing program becomes a skip reason
// naming the package and the command that installs it; what is there is no
// skip; every need names packages of the one list; and no test or script
// under tests/ installs packages itself.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { INSTALL_COMMAND, NEEDS, PACKAGES, missingPackages, skipUnless, type NeedName } from '../support/prerequisites';

const SOURCE_TESTS = path.resolve(__dirname, '../../../tests');
const savedPath = process.env.PATH;
afterEach(() => {
  process.env.PATH = savedPath;
});

/** A PATH of one directory holding executables named @programs. */
function fakePath(programs: string[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-prereq-'));
  for (const p of programs) fs.writeFileSync(path.join(dir, p), '#!/bin/sh\n', { mode: 0o755 });
  return dir;
}

test('a program missing from PATH: the skip names the package, what is missing and the command', () => {
  process.env.PATH = fakePath([]);
  const reason = skipUnless('strace');
  assert.equal(typeof reason, 'string');
  assert.match(reason as string, /strace \(strace is not in PATH\)/);
  assert.ok((reason as string).includes(`\`${INSTALL_COMMAND}\``), reason as string);
});

test('the program there: no skip', () => {
  process.env.PATH = fakePath(['strace', 'systemd-analyze']);
  assert.equal(skipUnless('strace'), false);
  assert.equal(skipUnless('strace', 'systemd-analyze'), false);
});

test('several needs: each missing package once, in one reason', () => {
  process.env.PATH = fakePath(['strace']);
  const reason = skipUnless('strace', 'systemd-analyze', 'systemd-analyze') as string;
  assert.equal(reason.match(/systemd \(/g)?.length, 1, reason);
  assert.doesNotMatch(reason, /strace/);
});

test('a need for root says so (unless this is the real root)', () => {
  const reason = skipUnless('nobody');
  if (process.getuid?.() === 0 && fs.readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/).join(' ') === '0 0 4294967295') {
    assert.equal(reason, false);
  } else {
    assert.match(reason as string, /needs root: .*nobody.*sudo npm test/);
  }
});

test('every need names packages of the list, and every package serves a need', () => {
  const names = new Set(PACKAGES.map((p) => p.name));
  const used = new Set<string>();
  for (const need of Object.keys(NEEDS) as NeedName[]) {
    assert.doesNotThrow(() => missingPackages(need), need);
    for (const p of NEEDS[need].packages) used.add(p);
  }
  for (const p of names) assert.ok(used.has(p) || ['iproute2'].includes(p), `${p} is in the list but no test needs it`);
  for (const p of PACKAGES) assert.ok(p.why.length > 10, `${p.name} says what it is for`);
});

test('nothing under tests/ but the prerequisites step runs apt-get or dpkg on the host (a VM test may, in its guest)', () => {
  const offenders: string[] = [];
  for (const rel of fs.readdirSync(SOURCE_TESTS, { recursive: true, encoding: 'utf8' })) {
    const file = path.join(SOURCE_TESTS, rel);
    if (!/\.(ts|sh)$/.test(rel) || rel === path.join('support', 'prerequisites.ts') || rel === path.join('unit', 'prerequisites.test.ts'))
      continue;
    // A VM test may run apt in its guest (the package test installs the .deb
    // there, through vm.ok/vm.sh): in vm/ only a host exec of apt or dpkg counts.
    const installs = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => /\b(apt-get|apt|dpkg)\s+(install|-i\b)|apt-get update|\$\{APT\} (install|purge|update)/.test(line));
    const onHost = rel.startsWith(`vm${path.sep}`)
      ? installs.filter((line) => /\b(execFileSync|execSync|spawnSync|spawn|execFile|exec)\(/.test(line))
      : installs;
    if (onHost.length > 0) offenders.push(rel);
  }
  assert.deepEqual(offenders, []);
});

// npm run package:deb (packaging/deb/build.sh): the .deb it builds, read back
// with dpkg-deb -I and -c and checked by lintian (no error), and the daemon
// and the client run from its extracted files.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { skipUnless } from '../support/prerequisites';
import { ROOT, onJsonLines } from './support/daemon_harness';

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
const skip = skipUnless('deb');

describe('the Debian package', { skip, timeout: 600_000 }, () => {
  let deb = '';
  let contents: { mode: string; owner: string; path: string }[] = [];
  before(() => {
    if (skip) return;
    const out = mkdtempSync(path.join(os.tmpdir(), 'nlb-deb-'));
    const r = spawnSync(path.join(ROOT, 'packaging/deb/build.sh'), [out], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    deb = r.stdout.trim();
    contents = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .trim()
      .split('\n')
      .map((l) => {
        const f = l.split(/\s+/);
        return {
          mode: f[0],
          owner: f[1],
          path: f
            .slice(5)
            .join(' ')
            .replace(/^\.\//, '/')
            .replace(/ -> .*$/, ''),
        };
      });
  });

  test('it is named nlbridge_<version>_amd64.deb and its control says what it needs', () => {
    assert.equal(path.basename(deb), `nlbridge_${pkg.version}_amd64.deb`);
    const info = execFileSync('dpkg-deb', ['-I', deb], { encoding: 'utf8' });
    assert.match(info, /^ Package: nlbridge$/m);
    assert.match(info, new RegExp(`^ Version: ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(info, /^ Architecture: amd64$/m);
    const depends = /^ Depends: (.*)$/m.exec(info)?.[1] ?? '';
    for (const d of ['nodejs (>= 20)', 'dkms', 'kmod', 'libc6', 'libstdc++6'])
      assert.ok(depends.includes(d), `Depends: ${depends} lacks ${d}`);
    for (const script of ['postinst', 'prerm', 'postrm', 'conffiles', 'md5sums']) assert.match(info, new RegExp(`\\s${script}\\s`), script);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-debctl-'));
    execFileSync('dpkg-deb', ['-e', deb, dir]);
    assert.deepEqual(readFileSync(path.join(dir, 'conffiles'), 'utf8').trim().split('\n'), [
      '/etc/modprobe.d/dummy_netlink.conf',
      '/etc/nlbridge/nlbridge.json',
    ]);
    const postinst = readFileSync(path.join(dir, 'postinst'), 'utf8');
    assert.match(postinst, /dkms add -m dummy_netlink -v "\$VERSION"/);
    assert.match(postinst, new RegExp(`^VERSION=${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
    assert.match(postinst, /\/etc\/credstore\/nlbridge\.token/);
    assert.match(
      readFileSync(path.join(dir, 'postrm'), 'utf8'),
      /purge[\s\S]*rm -f \/etc\/credstore\/nlbridge\.token[\s\S]*rm -rf \/etc\/nlbridge/,
    );
  });

  test('its files: the daemon and client under /usr/lib/nlbridge, the command, man page, completion, units, module sources for DKMS; no .ko and no token', () => {
    const paths = new Set(contents.map((c) => c.path));
    for (const p of [
      '/usr/bin/nlbridge',
      '/usr/bin/rr_nlk',
      '/usr/bin/ww_nlk',
      '/usr/lib/nlbridge/dist/bin/nlbridge.js',
      '/usr/lib/nlbridge/dist/cli/main.js',
      '/usr/lib/nlbridge/dist/daemon/main.js',
      '/usr/lib/nlbridge/build/Release/nlbridge_netlink.node',
      '/usr/lib/nlbridge/node_modules/fastify/package.json',
      '/usr/lib/nlbridge/openapi.yaml',
      '/usr/share/man/man8/nlbridge.8.gz',
      '/usr/share/bash-completion/completions/nlbridge',
      '/usr/share/doc/nlbridge/copyright',
      '/lib/systemd/system/nlbridge.service',
      '/lib/systemd/system/nlbridge.socket',
      '/lib/udev/rules.d/60-nlbridge.rules',
      '/usr/lib/modules-load.d/dummy_netlink.conf',
      '/etc/modprobe.d/dummy_netlink.conf',
      '/etc/nlbridge/nlbridge.json',
      `/usr/src/dummy_netlink-${pkg.version}/dkms.conf`,
      `/usr/src/dummy_netlink-${pkg.version}/dummy_netlink.c`,
    ])
      assert.ok(paths.has(p), `missing ${p}`);
    assert.deepEqual(
      contents.filter((c) => /\.ko$|credstore|token$|\/node_modules\/(typescript|eslint|fast-check)\//.test(c.path)).map((c) => c.path),
      [],
    );
    assert.deepEqual(
      contents.filter((c) => c.owner !== 'root/root').map((c) => c.path),
      [],
      "every file is root's",
    );
    assert.equal(contents.find((c) => c.path === '/usr/bin/nlbridge')?.mode, '-rwxr-xr-x');
  });

  test('lintian finds no error', () => {
    const r = spawnSync('lintian', ['--tag-display-limit', '0', deb], { encoding: 'utf8', timeout: 300_000 });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
    assert.deepEqual(errors, [], r.stdout);
    // What is left is listed in packaging/deb/README.md; a new warning is a change to look at.
    const warnings = r.stdout
      .split('\n')
      .filter((l) => l.startsWith('W:'))
      .map((l) => l.replace(/^W: nlbridge: /, ''));
    assert.deepEqual(warnings, ['no-manual-page [usr/bin/rr_nlk]', 'no-manual-page [usr/bin/ww_nlk]']);
  });

  test('the extracted package runs: the daemon (its stripped addon) on NETLINK_USERSOCK, and the client asking it for /status', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-debx-'));
    execFileSync('dpkg-deb', ['-x', deb, dir]);
    const bin = path.join(dir, 'usr/lib/nlbridge/dist/bin/nlbridge.js');
    assert.equal(execFileSync(process.execPath, [bin, '--version'], { encoding: 'utf8' }), `nlbridge ${pkg.version}\n`);
    const daemon = spawn(process.execPath, [bin, '--protocol', 'usersock', '--host', '127.0.0.1', '--port', '0', '--auth', 'none'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        onJsonLines(daemon.stdout!, (l) => {
          const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(l.msg));
          if (m) resolve(Number(m[1]));
        });
        daemon.on('exit', (code) => reject(new Error(`the packaged daemon exited ${code}`)));
      });
      const r = spawnSync(process.execPath, [bin, 'status', '--json', '--url', `http://127.0.0.1:${port}`], { encoding: 'utf8', cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { version: string }).version, pkg.version);
    } finally {
      daemon.kill('SIGTERM');
    }
  });
});

describe('packaging/deb/build.sh --version', { skip }, () => {
  test('refuses a version a native package, npm or DKMS cannot take, before building anything', () => {
    for (const bad of ['0.1.0-1', 'v1', '1.0 beta', '']) {
      const r = spawnSync(path.join(ROOT, 'packaging/deb/build.sh'), ['--version', bad, os.tmpdir()], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(r.status, 1, `--version '${bad}': ${r.stderr}`);
      assert.match(r.stderr, /package:deb: error: --version/);
    }
  });
});

// systemd/nlbridge.service: the shape the unit promises (networkd's
// conventions, every left-out hardening option explained). The exposure score
// systemd itself computes needs systemd-analyze: tests/host/systemd_analyze.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../../..');
const UNIT = path.join(ROOT, 'systemd', 'nlbridge.service');

function serviceKeys(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = m[1];
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}

test('[Service] keys are in alphabetical order (as systemd-networkd.service)', () => {
  const keys = serviceKeys(fs.readFileSync(UNIT, 'utf8')).map(([k]) => k);
  assert.ok(keys.length > 20);
  const sorted = [...keys].sort((a, b) => a.localeCompare(b, 'en', { sensitivity: 'base' }));
  assert.deepEqual(keys, sorted);
});

test('least privilege: unprivileged user, CAP_NET_ADMIN only, notify + watchdog, restart on failure', () => {
  const kv = new Map<string, string[]>();
  for (const [k, v] of serviceKeys(fs.readFileSync(UNIT, 'utf8'))) kv.set(k, [...(kv.get(k) ?? []), v]);
  const one = (k: string): string | undefined => kv.get(k)?.at(-1);
  assert.equal(one('DynamicUser'), 'yes');
  assert.equal(one('AmbientCapabilities'), 'CAP_NET_ADMIN');
  assert.equal(one('CapabilityBoundingSet'), 'CAP_NET_ADMIN');
  assert.equal(one('Type'), 'notify');
  assert.equal(one('NotifyAccess'), 'main');
  assert.match(one('WatchdogSec') ?? '', /^\d+s$/);
  assert.equal(one('Restart'), 'on-failure');
  assert.equal(one('RestartPreventExitStatus'), '2');
  assert.equal(one('ProtectSystem'), 'strict');
  assert.equal(one('NoNewPrivileges'), 'yes');
  assert.deepEqual((one('RestrictAddressFamilies') ?? '').split(/\s+/).sort(), ['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
  assert.ok(kv.get('SystemCallFilter')?.includes('@system-service'));
  // Relative: looked up in the credential store, skipped when missing (no 243/CREDENTIALS).
  assert.equal(one('LoadCredential'), 'token:nlbridge.token');
  assert.match(
    one('ExecStart') ?? '',
    /^\/usr\/bin\/node \/usr\/lib\/nlbridge\/dist\/daemon\/main\.js --config \/etc\/nlbridge\/nlbridge\.json$/,
  );
});

test('each hardening option left out is named in a comment with its reason', () => {
  const text = fs.readFileSync(UNIT, 'utf8');
  const keys = new Set(serviceKeys(text).map(([k]) => k));
  for (const [opt, why] of [
    ['MemoryDenyWriteExecute', /55509/],
    ['PrivateNetwork', /namespace/],
    ['PrivateUsers', /user\s+#?\s*namespace/],
    ['ProcSubset', /os\.cpus\(\)/],
  ] as const) {
    assert.ok(!keys.has(opt), `${opt} is set`);
    // The entry's line and its continuation lines ("#" then 2+ spaces).
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`# ${opt}=`));
    assert.ok(at >= 0, `no comment for ${opt}`);
    let end = at + 1;
    while (end < lines.length && /^#\s{2,}\S/.test(lines[end])) end++;
    const block = lines.slice(at, end).join('\n');
    assert.match(block, why, `${opt}'s comment gives no reason`);
  }
});

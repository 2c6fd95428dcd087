// --protocol resolution against a fake /sys: auto follows the module, and
// under --netns (where the module's kernel socket does not exist) it is
// USERSOCK, and dummy is refused with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProtocolError, resolveProtocol } from '../../daemon/netlink/protocol';

/** A sysfs root with dummy_netlink's parameters (unit 25), or without the module. */
function sysfs(loaded: boolean): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-sysfs-'));
  if (loaded) {
    const dir = path.join(root, 'module/dummy_netlink/parameters');
    fs.mkdirSync(dir, { recursive: true });
    for (const [k, v] of Object.entries({ unit: '25', ngroups: '64', r_grps: '3', b_grp: '1', period_ms: '1000', allow_unpriv: '0' }))
      fs.writeFileSync(path.join(dir, k), `${v}\n`);
  }
  return root;
}

test('auto: dummy when the module is loaded, usersock when not', () => {
  assert.equal(resolveProtocol('auto', sysfs(true)).name, 'dummy');
  assert.equal(resolveProtocol('auto', sysfs(false)).name, 'usersock');
});

test('under --netns, auto is usersock even with the module loaded, saying why', () => {
  const p = resolveProtocol('auto', sysfs(true), '/run/netns/a');
  assert.equal(p.name, 'usersock');
  assert.equal(p.number, 2);
  assert.equal(p.kernelEndpoint, false);
  assert.match(p.reason, /--netns \/run\/netns\/a .*initial network namespace only/);
});

test("under --netns, dummy (by name or by the module's unit) is refused naming both flags; usersock is fine", () => {
  for (const setting of ['dummy', 25] as const) {
    assert.throws(
      () => resolveProtocol(setting, sysfs(true), '/run/netns/a'),
      (e: unknown) =>
        e instanceof ProtocolError && /--netns \/run\/netns\/a: dummy_netlink's kernel socket exists in the initial/.test(e.message),
    );
  }
  assert.equal(resolveProtocol('usersock', sysfs(true), '/run/netns/a').name, 'usersock');
});

// Which netlink unit the bridge speaks, decided once at start-up.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { NETLINK_USERSOCK } from '../../addon/codec';
import { DNL_NGROUPS_MIN } from '../../addon/dummy_netlink';

/** --protocol: pick by what is loaded, one of the two by name, or a unit number. */
export type ProtocolSetting = 'auto' | 'usersock' | 'dummy' | number;

export interface ModuleParams {
  unit: number;
  r_grps: number;
  b_grp: number;
  period_ms: number;
  ngroups: number;
  allow_unpriv: boolean;
}

export interface ProtocolInfo {
  name: 'usersock' | 'dummy' | 'custom';
  number: number;
  /** A kernel socket answers on port 0 (acks, RELAY, BCAST, STATS). */
  kernelEndpoint: boolean;
  /** dummy_netlink's parameters when the module is loaded. */
  module: ModuleParams | null;
  /** Highest group number usable on this unit. */
  maxGroup: number;
  /** Why this protocol was chosen, for the log and /status. */
  reason: string;
}

export class ProtocolError extends Error {}

/** Reads /sys/module/dummy_netlink/parameters (under `sysfsRoot`), or null. */
export function readModuleParams(sysfsRoot: string): ModuleParams | null {
  const dir = path.join(sysfsRoot, 'module/dummy_netlink/parameters');
  const read = (name: string): string | null => {
    try {
      return fs.readFileSync(path.join(dir, name), 'utf8').trim();
    } catch {
      return null;
    }
  };
  const unit = read('unit');
  if (unit === null || !/^[0-9]+$/.test(unit)) return null;
  const num = (name: string, dflt: number): number => {
    const v = read(name);
    return v !== null && /^[0-9]+$/.test(v) ? Number(v) : dflt;
  };
  const unpriv = read('allow_unpriv');
  return {
    unit: Number(unit),
    r_grps: num('r_grps', 0),
    b_grp: num('b_grp', 0),
    period_ms: num('period_ms', 0),
    ngroups: num('ngroups', DNL_NGROUPS_MIN),
    allow_unpriv: unpriv === 'Y' || unpriv === '1',
  };
}

export function resolveProtocol(setting: ProtocolSetting, sysfsRoot: string, netns: string | null = null): ProtocolInfo {
  const mod = readModuleParams(sysfsRoot);
  // dummy_netlink makes its kernel socket in the initial network namespace
  // only (netlink_kernel_create(&init_net, …)): inside another one nothing
  // answers its unit, so auto means USERSOCK there and dummy is refused.
  const foreignNetns = (what: string): ProtocolError =>
    new ProtocolError(
      `${what} with --netns ${netns}: dummy_netlink's kernel socket exists in the initial network namespace only; use --protocol usersock (or auto)`,
    );
  const dummy = (reason: string): ProtocolInfo => ({
    name: 'dummy',
    number: mod!.unit,
    kernelEndpoint: true,
    module: mod,
    maxGroup: Math.max(mod!.ngroups, 32),
    reason,
  });
  const usersock = (reason: string): ProtocolInfo => ({
    name: 'usersock',
    number: NETLINK_USERSOCK,
    kernelEndpoint: false,
    module: mod,
    maxGroup: 32,
    reason,
  });
  const modPath = path.join(sysfsRoot, 'module/dummy_netlink/parameters/unit');
  switch (setting) {
    case 'auto':
      if (netns !== null)
        return usersock(`auto: --netns ${netns} (dummy_netlink answers in the initial network namespace only), using NETLINK_USERSOCK`);
      return mod
        ? dummy(`auto: dummy_netlink is loaded (${modPath} = ${mod.unit})`)
        : usersock(`auto: dummy_netlink is not loaded (no ${modPath}), using NETLINK_USERSOCK`);
    case 'usersock':
      return usersock('configured: usersock');
    case 'dummy':
      if (netns !== null) throw foreignNetns('--protocol dummy');
      if (!mod) throw new ProtocolError(`--protocol dummy: the dummy_netlink module is not loaded (no ${modPath})`);
      return dummy('configured: dummy');
    default:
      if (mod && setting === mod.unit && netns !== null) throw foreignNetns(`--protocol ${setting} (dummy_netlink's unit)`);
      if (mod && setting === mod.unit) return dummy(`configured: ${setting} is dummy_netlink's unit`);
      if (setting === NETLINK_USERSOCK) return usersock('configured: 2 is NETLINK_USERSOCK');
      // Any other unit: assume a kernel socket answers (true for every unit in <linux/netlink.h> but USERSOCK).
      return {
        name: 'custom',
        number: setting,
        kernelEndpoint: true,
        module: mod,
        maxGroup: 32,
        reason: `configured: protocol ${setting}`,
      };
  }
}

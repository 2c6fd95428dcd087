// Who is listening on a NETLINK_USERSOCK group, read from /proc/net/netlink,
// so the runner starts a sender only once every receiver has joined.

import * as fs from 'node:fs';
import { sleep } from './proc';

/** Sockets of `protocol` whose group bitmap (first 32 groups) has `group`. */
export function groupMembers(protocol: number, group: number): number {
  let text: string;
  try {
    text = fs.readFileSync('/proc/net/netlink', 'utf8');
  } catch {
    return 0;
  }
  const bit = 1 << (group - 1);
  let n = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    if (f.length < 10 || Number(f[1]) !== protocol) continue;
    if ((parseInt(f[3], 16) & bit) !== 0) n++;
  }
  return n;
}

/** Wait until at least `count` sockets are on the group; false on timeout. */
export async function waitForMembers(protocol: number, group: number, count: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (groupMembers(protocol, group) >= count) return true;
    await sleep(20);
  }
  return groupMembers(protocol, group) >= count;
}

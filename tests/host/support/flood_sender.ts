// An in-process NETLINK_USERSOCK sender for the resume and SSE tests: numbered
// messages to one group, in bursts, so the daemon's receive queue never overruns.

import { NetlinkSocket } from '../../../addon/socket';
import { encodeMessage } from '../../../addon/codec';
import { USERSOCK, bit } from './daemon_harness';

export class Sender {
  readonly sock = NetlinkSocket.open({ protocol: USERSOCK });
  private seq = 0;

  /** Sends `prefix-<i>` for i in [from, to) to `group`, `burst` per macrotask. */
  async run(group: number, prefix: string, from: number, to: number, burst = 50): Promise<void> {
    for (let i = from; i < to; i++) {
      const buf = encodeMessage({ type: 16, flags: 1, seq: ++this.seq, pid: this.sock.portId, payload: Buffer.from(`${prefix}-${i}`) });
      this.sock.send(buf, { portId: 0, groups: bit(group) });
      if ((i - from) % burst === burst - 1) await new Promise((r) => setTimeout(r, 1));
    }
  }

  close(): void {
    this.sock.close();
  }
}

/** The index of a payload `prefix-<i>`, or -1. */
export function indexOf(prefix: string, data: unknown): number {
  const s = String(data);
  return s.startsWith(`${prefix}-`) ? Number(s.slice(prefix.length + 1)) : -1;
}

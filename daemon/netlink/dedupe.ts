// One logical message sent to several groups arrives once per joined group
// (senders send one copy per group, all with the same seq: the kernel only
// broadcasts to ffs(nl_groups)). A receiver must hand it to each of its
// consumers once. Copies arrive microseconds apart; the live window is
// bounded both in time and in size so a flood cannot grow it. A read of the
// ring (resume, /recent) uses the same window without bounds: one read, one
// window.

import type { RxMessage } from './message';

/** Identity of a logical message: the sender's real port id, nlmsg_pid, seq and type. */
export function copyKey(senderPortId: number, nlmsgPid: number, seq: number, type: number): string {
  return `${senderPortId}:${nlmsgPid}:${seq}:${type}`;
}

export function messageKey(m: RxMessage): string {
  return copyKey(m.portId, m.header.pid, m.header.seq, m.header.type);
}

interface Entry<T> {
  at: number;
  served: Set<T>;
  /** Groups this key arrived on: a copy comes on another group, never on the same one. */
  groups: Set<number>;
}

export class DedupeWindow<T> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    readonly windowMs = 1000,
    readonly maxEntries = 8192,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * The consumers that already got the message with this key, to be added to
   * by the caller. A key older than the window starts over: senders reuse
   * sequence numbers (each ww_nlk run starts at 1).
   */
  served(key: string, now: number, group?: number): { served: Set<T>; repeat: boolean } {
    this.expire(now);
    const e = this.entries.get(key);
    // The same key again on a group it already came on is a new message from
    // a sender that does not vary its seq (many leave it at 0), not a copy.
    if (e !== undefined && now - e.at <= this.windowMs && (group === undefined || !e.groups.has(group))) {
      if (group !== undefined) e.groups.add(group);
      return { served: e.served, repeat: true };
    }
    const fresh: Entry<T> = { at: now, served: new Set<T>(), groups: new Set(group === undefined ? [] : [group]) };
    this.entries.delete(key);
    this.entries.set(key, fresh);
    if (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return { served: fresh.served, repeat: false };
  }

  /** Forgets a consumer (it closed), so the window holds no reference to it. */
  forget(consumer: T): void {
    for (const e of this.entries.values()) e.served.delete(consumer);
  }

  private expire(now: number): void {
    // Map iterates in insertion order, which is arrival order.
    for (const [key, e] of this.entries) {
      if (now - e.at <= this.windowMs) break;
      this.entries.delete(key);
    }
  }
}

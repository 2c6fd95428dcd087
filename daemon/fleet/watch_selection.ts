// What one /fleet stream watches: which hosts (?hosts=, read here) and which
// groups. Apart from watch.ts so that the route reads ?hosts= with this alone.

import { MAX_HOST_ID_LENGTH, isSubjectToken } from './subjects';

/** The most hosts one stream may name in ?hosts= (each costs two NATS subscriptions). */
export const MAX_WATCH_HOSTS = 32;

export interface WatchSelection {
  /** null: every host. */
  hosts: readonly string[] | null;
  groups: readonly number[];
}

/** Parses ?hosts=A,B; throws Error with what is wrong (the route makes it a 400 naming `hosts`). */
export function parseHosts(text: string): string[] {
  const hosts = text.split(',').map((s) => s.trim());
  if (hosts.some((h) => h === '')) throw new Error('an empty host id (write hosts=A,B)');
  for (const h of hosts) {
    if (h.length > MAX_HOST_ID_LENGTH) throw new Error(`host id "${h.slice(0, 20)}…" is longer than ${MAX_HOST_ID_LENGTH} characters`);
    if (!isSubjectToken(h)) throw new Error(`${JSON.stringify(h)} is not a host id (no ".", "*", ">", whitespace or control characters)`);
  }
  const unique = [...new Set(hosts)];
  if (unique.length > MAX_WATCH_HOSTS) throw new Error(`${unique.length} hosts, at most ${MAX_WATCH_HOSTS}`);
  return unique;
}

// The fleet's names on NATS, and the --nats-publish value: pure functions.
//
//   nlbridge.<host>.g.<group>   received messages of <group> on <host>: one, or a run
//                               of them back to back (publisher.ts says when)
//   nlbridge.<host>.events      JSON notices: dropped, overrun
//   nlbridge.<host>.send        requests: a POST /send body; the reply is its answer
//   nlbridge.<host>.claim       the daemons using <host> as --host-id announce
//                               themselves: one holds it (host_claim.ts)
//
// So `nlbridge.*.g.2` is group 2 of every host, `nlbridge.A.g.*` every group
// of host A, `nlbridge.>` everything. Host and group sit in the subject (a
// NATS wildcard can select them; a header cannot); the rest of a message's
// metadata travels in a few short headers (HEADERS below).

import { GroupSpecError, parseGroupList, parseMaskText } from '../netlink/groups';

export const SUBJECT_ROOT = 'nlbridge';

export function groupSubject(host: string, group: number): string {
  return `${SUBJECT_ROOT}.${host}.g.${group}`;
}

/** Request-reply sends to this host (--nats-send on): the body of POST /send, its answer. */
export function sendSubject(host: string): string {
  return `${SUBJECT_ROOT}.${host}.send`;
}

/** Where the daemons using one --host-id find each other (host_claim.ts). */
export function claimSubject(host: string): string {
  return `${SUBJECT_ROOT}.${host}.claim`;
}

export function eventsSubject(host: string): string {
  return `${SUBJECT_ROOT}.${host}.events`;
}

/**
 * The header names, one or two letters each: every header is encoded per
 * message and costs throughput (the issue measured 2–3× with two headers).
 */
export const HEADERS = {
  /** The daemon's cursor of the (first) message ("<epoch>-<seq>", as in WebSocket frames): its epoch names the daemon's run. */
  cursor: 'c',
  /** Arrival group (also in the subject). */
  group: 'g',
  /** The sender's real port id. */
  port: 'p',
  /**
   * This host's publish sequence of the (first) message: 1, 2, 3… per daemon
   * run, one per message meant for NATS, dropped or not. A receiver that sees
   * n jump knows how many it missed; one that sees n again (a resend after a
   * reconnect) drops it.
   */
  number: 'n',
  /**
   * How many netlink messages the payload holds, back to back (absent: one).
   * They are numbered n, n+1, …; nlmsg_seq, type and flags are in each one's
   * own header.
   */
  count: 'k',
} as const;

/** The longest host id: what a /fleet stream's ?hosts= takes, so every host can be watched alone. */
export const MAX_HOST_ID_LENGTH = 64;

/** A NATS subject token: what a host id must be (no separators, wildcards, whitespace or control characters). */
// eslint-disable-next-line no-control-regex
const SUBJECT_TOKEN = /^[^.*>\s\x00-\x1f\x7f]+$/;

export function isSubjectToken(s: string): boolean {
  return SUBJECT_TOKEN.test(s);
}

/** The default host id: the hostname up to its first dot (a dot would split the subject). */
export function defaultHostId(hostname: string): string {
  return hostname.split('.')[0];
}

/**
 * --nats-publish: a mask as /groups/{mask} takes it ("10", "0b1010", "0xa"),
 * or, with a comma, a list of group numbers ("2,4"; "2," is group 2 alone).
 * Throws GroupSpecError.
 */
export function parsePublishGroups(text: string): number[] {
  if (text.includes(',')) {
    const parts = text
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    if (parts.length === 0) throw new GroupSpecError('the group list is empty');
    return [...parseGroupList(parts.join(','))];
  }
  return [...parseMaskText(text.trim())];
}

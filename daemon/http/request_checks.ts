// What one request presents: its bearer token (header or WebSocket
// subprotocol), its Host and its Origin, checked by pure functions (no
// state, no I/O) that admission.ts and scopes.ts call.

import { createHash, timingSafeEqual } from 'node:crypto';

/** Constant-time token comparison (hashing first equalizes the lengths). */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** The token from `Authorization: Bearer …`, or null. */
export function bearerFromHeader(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

export const TOKEN_SUBPROTOCOL_PREFIX = 'bearer.';
/** Subprotocol a browser client offers alongside bearer.<token>; chosen when offered. */
export const APP_SUBPROTOCOL = 'nlbridge';

/** Subprotocols offered in Sec-WebSocket-Protocol. */
export function offeredSubprotocols(header: string | string[] | undefined): string[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function tokenFromSubprotocols(offered: string[]): string | null {
  const p = offered.find((s) => s.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
  return p ? p.slice(TOKEN_SUBPROTOCOL_PREFIX.length) : null;
}

/**
 * Whether a Host header names this daemon. Entries without a port match only
 * with the listening port (or bare when it is 80). Compared literally, so
 * `127.1`, `0x7f.1`, `localhost6` or a rebinding name never pass unless listed.
 */
export function hostAllowed(host: string | undefined, allowed: readonly string[], port: number | null): boolean {
  if (!host) return false;
  const h = host.toLowerCase();
  for (const entry of allowed) {
    const e = entry.toLowerCase();
    if (e === '*') return true;
    if (h === e) {
      // An entry with its own port, or a bare name when we listen on 80.
      if (hasPort(e) || port === 80) return true;
      continue;
    }
    if (!hasPort(e) && port !== null && h === `${e}:${port}`) return true;
  }
  return false;
}

function hasPort(hostEntry: string): boolean {
  return hostEntry.startsWith('[') ? /\]:\d+$/.test(hostEntry) : /:\d+$/.test(hostEntry);
}

/**
 * Whether an Origin may use the API: absent (not a browser), exactly listed,
 * or the same origin as an allowed Host. `null` and anything else are refused.
 */
export function originAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowedOrigins: readonly string[],
  hostOk: boolean,
): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  if (allowedOrigins.some((a) => a.toLowerCase() === o)) return true;
  if (hostOk && host && (o === `http://${host.toLowerCase()}` || o === `https://${host.toLowerCase()}`)) return true;
  return false;
}

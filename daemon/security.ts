// Who may talk to the bridge: the Host allow-list (DNS rebinding), the Origin
// check (other web sites), and the bearer token (other local users).

import { randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AuthMode, Config } from './config';
import { resolveTokens, type ScopedToken } from './scopes';

/** CAP_NET_ADMIN is capability 12. */
const CAP_NET_ADMIN = 12;

/** Whether this process holds CAP_NET_ADMIN (CapEff of /proc/self/status). */
export function holdsNetAdmin(statusText?: string): boolean {
  let text = statusText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/status', 'utf8');
    } catch {
      return false;
    }
  }
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(text);
  if (!m) return false;
  return ((BigInt('0x' + m[1]) >> BigInt(CAP_NET_ADMIN)) & 1n) === 1n;
}

export interface AuthSetup {
  mode: AuthMode;
  /** null = no token needed. */
  token: string | null;
  /** Where the token came from (a path, never the token). */
  source: string | null;
  /** True when the daemon generated it. */
  generated: boolean;
  /** Scoped tokens (config "tokens"), accepted besides the main token. */
  scoped?: ScopedToken[];
}

/**
 * Decides whether a token is required and finds or makes it:
 * --token-file, else $CREDENTIALS_DIRECTORY/token (systemd LoadCredential=),
 * else (auth auto/token) a fresh random token written 0600 to --token-out,
 * $RUNTIME_DIRECTORY/token or .cache/nlbridge/token under the cwd.
 */
export function setupAuth(config: Config, env: NodeJS.ProcessEnv, netAdmin: boolean, cwd = process.cwd()): AuthSetup {
  const scoped = resolveTokens(config.tokens, env);
  // Configured scoped tokens make `auto` require a token: they exist to limit access.
  const required = config.auth === 'token' || (config.auth === 'auto' && (netAdmin || scoped.length > 0));
  if (!required) return { mode: config.auth, token: null, source: null, generated: false, scoped: [] };
  const candidates: string[] = [];
  if (config.tokenFile) candidates.push(config.tokenFile);
  else if (env.CREDENTIALS_DIRECTORY) candidates.push(path.join(env.CREDENTIALS_DIRECTORY, 'token'));
  for (const file of candidates) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (config.tokenFile) throw new Error(`--token-file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
      continue;
    }
    const token = text.trim();
    if (!/^[\x21-\x7e]{16,}$/.test(token)) {
      throw new Error(`--token-file: the token in ${file} must be at least 16 printable ASCII characters without spaces`);
    }
    return { mode: config.auth, token, source: file, generated: false, scoped };
  }
  const out = config.tokenOut ?? (env.RUNTIME_DIRECTORY ? path.join(env.RUNTIME_DIRECTORY.split(':')[0], 'token') : path.join(cwd, '.cache/nlbridge/token'));
  const token = randomBytes(32).toString('hex');
  fs.mkdirSync(path.dirname(out), { recursive: true, mode: 0o700 });
  // Replace, never follow: a stale file or symlink in its place is removed first.
  try {
    fs.unlinkSync(out);
  } catch {
    /* absent */
  }
  const fd = fs.openSync(out, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, token + '\n');
  } finally {
    fs.closeSync(fd);
  }
  return { mode: config.auth, token, source: out, generated: true, scoped };
}

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
  return text.split(',').map((s) => s.trim()).filter(Boolean);
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
export function originAllowed(origin: string | undefined, host: string | undefined, allowedOrigins: readonly string[], hostOk: boolean): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  if (allowedOrigins.some((a) => a.toLowerCase() === o)) return true;
  if (hostOk && host && (o === `http://${host.toLowerCase()}` || o === `https://${host.toLowerCase()}`)) return true;
  return false;
}

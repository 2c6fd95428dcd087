// Who may talk to the bridge: the bearer token (other local users) — chosen,
// generated and read here; its files are written by token_files.ts. The
// per-request checks (token, Host allow-list against DNS rebinding, Origin
// against other web sites) are pure functions in http/request_checks.ts.

import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AuthMode, Config } from './config';
import { resolveTokens, type ScopedToken } from './scopes';
import {
  HEADER_FILE,
  keptToken,
  modeText,
  openTokenDir,
  TOKEN_FILE,
  TOKEN_RE,
  TokenStoreError,
  writeTokenFiles,
  type PendingTokenFiles,
} from './token_files';

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
  /** True when the daemon made it (at this start, or kept from an earlier one: see `kept`). */
  generated: boolean;
  /** True when a token the daemon made at an earlier start is used again. */
  kept?: boolean;
  /** Scoped tokens (config "tokens"), accepted besides the main one. */
  scoped?: ScopedToken[];
  /** The ready header file for `curl -H @FILE` (written by saveTokenFiles), or null. */
  headerFile?: string | null;
  /** What to write once the daemon listens (saveTokenFiles); null = nothing. */
  pending?: PendingTokenFiles | null;
  /** Things to tell the operator (a token file others can read). */
  warnings?: string[];
}

/** A warning when a file holding a secret may be read by every local user. */
function worldReadable(file: string, what: string): string | null {
  try {
    const st = fs.statSync(file);
    if ((st.mode & 0o004) !== 0)
      return `${what} ${file} may be read by every local user (mode ${modeText(st.mode)}): chmod o-r it, or use a systemd credential (LoadCredential=)`;
  } catch {
    /* unreadable files fail where they are read */
  }
  return null;
}

/**
 * Refuses a config file that holds a secret inline ("tokens"[].token) while
 * every local user may read it. Under systemd's DynamicUser the daemon reads
 * the config as "others", so such a secret would be readable by all: secrets
 * belong in a credential ("credential") or a file only the daemon can read.
 */
export function configSecretProblem(config: Config, configFile: string | null): string | null {
  const inline = config.tokens.filter((t) => t.token !== undefined).map((t) => t.name);
  if (configFile === null || inline.length === 0) return null;
  let mode: number;
  try {
    mode = fs.statSync(configFile).mode;
  } catch {
    return null;
  }
  if ((mode & 0o004) === 0) return null;
  return (
    `${configFile}: "tokens" ${inline.map((n) => JSON.stringify(n)).join(', ')} hold their secret inline in a file every local user may read (mode ${modeText(mode)}): ` +
    'move each secret to a systemd credential ("credential": NAME, with /etc/credstore/NAME) or a 0600 "tokenFile", or chmod o-r the config file'
  );
}

/**
 * Decides whether a token is required and finds or makes it:
 * --token-file, else $CREDENTIALS_DIRECTORY/token (systemd LoadCredential=),
 * else (auth auto/token) the token kept in --token-out, $RUNTIME_DIRECTORY/token
 * or .cache/nlbridge/token under the cwd from an earlier start, else a new
 * random one. Nothing is written here: saveTokenFiles() writes a new token
 * and the header file once the daemon listens, so a start that fails (the
 * port in use by a running daemon) leaves that daemon's files alone.
 */
export function setupAuth(config: Config, env: NodeJS.ProcessEnv, netAdmin: boolean, cwd = process.cwd()): AuthSetup {
  const scoped = resolveTokens(config.tokens, env);
  // Configured scoped tokens make `auto` require a token: they exist to limit access.
  const required = config.auth === 'token' || (config.auth === 'auto' && (netAdmin || scoped.length > 0));
  if (!required)
    return { mode: config.auth, token: null, source: null, generated: false, scoped: [], pending: null, headerFile: null, warnings: [] };
  const warnings: string[] = [];
  for (const t of config.tokens) {
    const w = t.tokenFile !== undefined ? worldReadable(t.tokenFile, `tokens "${t.name}": tokenFile`) : null;
    if (w) warnings.push(w);
  }
  const candidates: string[] = [];
  if (config.tokenFile) candidates.push(config.tokenFile);
  else if (env.CREDENTIALS_DIRECTORY) candidates.push(path.join(env.CREDENTIALS_DIRECTORY, 'token'));
  const runtimeDir = env.RUNTIME_DIRECTORY ? env.RUNTIME_DIRECTORY.split(':')[0] : null;
  const out = path.resolve(cwd, config.tokenOut ?? (runtimeDir ? path.join(runtimeDir, TOKEN_FILE) : '.cache/nlbridge/token'));
  const defaultDir = config.tokenOut === null && runtimeDir === null;
  // The header file is written beside the token under its own fixed name.
  if (path.basename(out) === HEADER_FILE)
    throw new TokenStoreError(`--token-out ${out}: ${HEADER_FILE} is the header file's name; pick another`);
  for (const file of candidates) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (config.tokenFile) throw new Error(`--token-file: cannot read ${file}: ${(err as Error).message}`, { cause: err });
      continue;
    }
    const token = text.trim();
    if (!TOKEN_RE.test(token)) {
      throw new Error(`--token-file: the token in ${file} must be at least 16 printable ASCII characters without spaces`);
    }
    if (config.tokenFile) {
      const w = worldReadable(file, '--token-file');
      if (w) warnings.push(w);
      // The admin's file: no header copy is made (another daemon's directory may be shared).
      return { mode: config.auth, token, source: file, generated: false, scoped, pending: null, headerFile: null, warnings };
    }
    // A systemd credential: its header goes to the service's own runtime directory.
    if (!runtimeDir && config.tokenOut === null)
      return { mode: config.auth, token, source: file, generated: false, scoped, pending: null, headerFile: null, warnings };
    const dirFd = openTokenDir(out, defaultDir, cwd);
    const dir = path.dirname(out);
    return {
      mode: config.auth,
      token,
      source: file,
      generated: false,
      scoped,
      headerFile: path.join(dir, HEADER_FILE),
      pending: { dirFd, dir, name: path.basename(out), token, writeToken: false },
      warnings,
    };
  }
  const dirFd = openTokenDir(out, defaultDir, cwd);
  const dir = path.dirname(out);
  let kept: string | null;
  try {
    kept = keptToken(dirFd, out);
  } catch (err) {
    fs.closeSync(dirFd);
    throw err;
  }
  const token = kept ?? randomBytes(32).toString('hex');
  return {
    mode: config.auth,
    token,
    source: out,
    generated: true,
    kept: kept !== null,
    scoped,
    headerFile: path.join(dir, HEADER_FILE),
    pending: { dirFd, dir, name: path.basename(out), token, writeToken: kept === null },
    warnings,
  };
}

/**
 * Writes the token files setupAuth() left pending (once the daemon listens):
 * token_files.ts's writeTokenFiles() says how.
 */
export function saveTokenFiles(auth: AuthSetup): void {
  const p = auth.pending;
  if (!p) return;
  auth.pending = null;
  writeTokenFiles(p);
}

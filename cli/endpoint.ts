// Where the daemon is and which token to show it, found the way Docker's CLI
// finds dockerd: the unix socket when one exists, else TCP on
// 127.0.0.1:8080. A connection over the unix socket needs no token (the
// daemon authorizes it by the socket's file mode); over TCP the token is read
// from a file, never from argv, where every local user could read it (ps).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, EXIT } from './exit_status';

export type Endpoint = { kind: 'unix'; socketPath: string; shown: string } | { kind: 'tcp'; host: string; port: number; shown: string };

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/**
 * Sockets tried in this order when no --url or NLBRIDGE_URL is given: the
 * one daemon/README.md starts with `npm start -- --unix-socket
 * .cache/nlbridge/nlbridge.sock`, then one in the installed service's
 * runtime directory.
 */
export function defaultSockets(cwd: string): string[] {
  return [path.join(cwd, '.cache/nlbridge/nlbridge.sock'), '/run/nlbridge/nlbridge.sock'];
}

/**
 * Token files tried in this order when no --token-file or
 * NLBRIDGE_TOKEN_FILE is given: the one `npm start` keeps under its working
 * directory, the installed service's credential (install.sh, the .deb), and
 * the one that service makes when the credential is missing.
 */
export function defaultTokenFiles(cwd: string): string[] {
  return [path.join(cwd, '.cache/nlbridge/token'), '/etc/credstore/nlbridge.token', '/run/nlbridge/token'];
}

function isSocket(p: string): boolean {
  try {
    return fs.statSync(p).isSocket();
  } catch {
    return false;
  }
}

export function parseUrl(text: string, what: string): Endpoint {
  if (text.startsWith('unix:')) {
    const socketPath = path.resolve(text.slice('unix:'.length));
    if (text.length === 'unix:'.length) throw new CliError(`${what}: "unix:" needs a path (unix:/run/nlbridge/nlbridge.sock)`, EXIT.usage);
    return { kind: 'unix', socketPath, shown: `unix:${socketPath}` };
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new CliError(`${what}: "${text}" is not a URL (http://127.0.0.1:8080 or unix:PATH)`, EXIT.usage);
  }
  if (u.protocol !== 'http:' || u.pathname !== '/' || u.search !== '' || u.username !== '') {
    throw new CliError(`${what}: "${text}" must be http://HOST:PORT (no path) or unix:PATH`, EXIT.usage);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return { kind: 'tcp', host, port: u.port === '' ? 80 : Number(u.port), shown: `http://${u.host}` };
}

/** --url, else NLBRIDGE_URL, else the first default socket that exists, else http://127.0.0.1:8080. */
export function resolveEndpoint(url: string | undefined, env: NodeJS.ProcessEnv, cwd: string): Endpoint {
  if (url !== undefined) return parseUrl(url, '--url');
  if (env.NLBRIDGE_URL) return parseUrl(env.NLBRIDGE_URL, 'NLBRIDGE_URL');
  const socket = defaultSockets(cwd).find(isSocket);
  if (socket !== undefined) return { kind: 'unix', socketPath: socket, shown: `unix:${socket}` };
  return parseUrl(DEFAULT_URL, 'default');
}

export interface TokenLookup {
  token: string | null;
  /** The file it came from. */
  source: string | null;
  /** Where it was looked for, and why a file was passed over: for the message when the daemon wants one. */
  tried: string[];
}

/**
 * The token for a TCP endpoint: --token-file, else NLBRIDGE_TOKEN_FILE (the
 * daemon's own name for the file it reads), else the first default file
 * that exists. A file named explicitly must be readable; a default one that
 * is not (another user's) is passed over and named if the daemon refuses.
 */
export function findToken(endpoint: Endpoint, tokenFile: string | undefined, env: NodeJS.ProcessEnv, cwd: string): TokenLookup {
  if (endpoint.kind === 'unix') return { token: null, source: null, tried: [] };
  const explicit = tokenFile ?? (env.NLBRIDGE_TOKEN_FILE || undefined);
  if (explicit !== undefined) {
    const what = tokenFile !== undefined ? '--token-file' : 'NLBRIDGE_TOKEN_FILE';
    let text: string;
    try {
      text = fs.readFileSync(explicit, 'utf8');
    } catch (err) {
      throw new CliError(`${what}: cannot read ${explicit} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, EXIT.usage);
    }
    const token = text.trim();
    if (token === '') throw new CliError(`${what}: ${explicit} is empty`, EXIT.usage);
    return { token, source: explicit, tried: [explicit] };
  }
  const tried: string[] = [];
  for (const file of defaultTokenFiles(cwd)) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      tried.push(code === 'ENOENT' ? file : `${file} (${code}: not readable by you)`);
      continue;
    }
    const token = text.trim();
    if (token === '') {
      tried.push(`${file} (empty)`);
      continue;
    }
    return { token, source: file, tried: [...tried, file] };
  }
  return { token: null, source: null, tried };
}

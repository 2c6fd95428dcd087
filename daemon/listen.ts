// The daemon's listeners: sockets from systemd (LISTEN_FDS), else TCP
// (--host/--port) and/or the unix socket (--unix-socket, born with its mode
// and group). Every listener feeds the same fastify router. Errors an
// operator can fix are ListenError: a message without a stack, and an exit code.

import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import type { Config } from './config/schema';
import { createHttpServer } from './http_server';

/** fds handed over by systemd socket activation (sd_listen_fds(3)), starting at 3. */
function listenFds(env: NodeJS.ProcessEnv): number[] {
  if (!env.LISTEN_FDS || Number(env.LISTEN_PID) !== process.pid) return [];
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n < 1) return [];
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  return Array.from({ length: n }, (_, i) => 3 + i);
}

function listenOn(server: net.Server, target: net.ListenOptions | { fd: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(target, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A second HTTP server feeding the same fastify router (and its WebSocket upgrades), under the same bounds. */
function extraServer(app: FastifyInstance, config: Config): http.Server {
  const s = createHttpServer(config, app.nlbridge.metrics, (req, res) => app.routing(req, res));
  s.on('upgrade', (req, socket, head) => app.server.emit('upgrade', req, socket, head));
  // Malformed and timed-out requests get the same problem answer, and are counted.
  s.on('clientError', (err, socket) => app.server.emit('clientError', err, socket));
  return s;
}

function groupId(group: string): number {
  if (/^[0-9]+$/.test(group)) return Number(group);
  let out: string;
  try {
    out = execFileSync('getent', ['group', group], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    throw new ListenError(`--unix-socket-group: no group named ${group}`, 2);
  }
  return Number(out.split(':')[2]);
}

/** A listener the daemon could not set up, with what to tell the operator (no stack) and the exit code. */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function tcpListenError(err: unknown, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new ListenError(`${where} is in use (another nlbridge?); use --port`, 1);
    case 'EACCES':
      return new ListenError(`${where}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE); use --port`, 1);
    case 'EADDRNOTAVAIL':
      return new ListenError(`${where}: ${host} is not an address of this machine; use --host`, 2);
    default:
      return err as Error;
  }
}

/** Whether something accepts connections on the unix socket at `p`. */
function socketAnswers(p: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/**
 * Binds the unix socket so that it is born with its mode (and group): the
 * kernel creates the file with 0777 & ~umask, so the umask is set for the
 * bind (Node binds synchronously inside listen()), and, for a group, the
 * effective gid too (files take the creator's fsgid). Nothing is changed by
 * path afterwards, so a name swapped for a symlink after the bind cannot
 * redirect a chmod or chown. Without CAP_SETGID (setegid refused) the group
 * is set with lchown, which never follows a symlink; what remains then is
 * that someone who may write the socket's directory can swap the file
 * between the bind and the lchown and have their own file (not a target of
 * theirs) given the group: put the socket in a directory only the daemon
 * writes (its RuntimeDirectory), or use nlbridge.socket's SocketMode=/SocketGroup=.
 */
async function listenUnixSocket(server: http.Server, p: string, mode: number, group: string | null): Promise<void> {
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(p);
  } catch {
    /* absent */
  }
  if (st !== null) {
    if (!st.isSocket())
      throw new ListenError(
        `--unix-socket: ${p} exists and is not a socket (${st.isSymbolicLink() ? 'a symbolic link' : 'a file'}); remove it or choose another path`,
        2,
      );
    if (await socketAnswers(p))
      throw new ListenError(`--unix-socket: ${p} is in use (another nlbridge?); stop it or choose another path`, 1);
    fs.unlinkSync(p); // a stale socket left by a daemon that died
  }
  const gid = group === null ? null : groupId(group);
  const savedGid = process.getegid?.() ?? 0;
  let gidAtBind = gid === null || gid === savedGid;
  await new Promise<void>((resolve, reject) => {
    const savedMask = process.umask(0o777 & ~mode);
    try {
      if (!gidAtBind) {
        try {
          process.setegid?.(gid!);
          gidAtBind = true;
        } catch {
          /* no CAP_SETGID: lchown below */
        }
      }
      server.once('error', reject);
      server.listen({ path: p }, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(savedMask);
      if ((process.getegid?.() ?? savedGid) !== savedGid) process.setegid?.(savedGid);
    }
  }).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ListenError(`--unix-socket: ${p} is in use; choose another path`, 1);
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR')
      throw new ListenError(`--unix-socket: cannot create ${p} (${code}): its directory must exist and be writable by the daemon`, 2);
    throw err;
  });
  if (!gidAtBind) fs.lchownSync(p, process.geteuid?.() ?? 0, gid!);
}

export interface Listening {
  extra: http.Server[];
  /** What to log once the token files are written: [fields, message]. */
  announce: [Record<string, unknown>, string][];
}

export async function listen(app: FastifyInstance, config: Config): Promise<Listening> {
  const extra: http.Server[] = [];
  const announce: Listening['announce'] = [];
  const fds = listenFds(process.env);
  await app.ready();
  if (fds.length > 0) {
    await listenOn(app.server, { fd: fds[0] });
    for (const fd of fds.slice(1)) {
      const s = extraServer(app, config);
      await listenOn(s, { fd });
      extra.push(s);
    }
    announce.push([{ fds, address: app.server.address() }, 'listening on sockets from systemd (LISTEN_FDS)']);
    return { extra, announce };
  }
  const unixPath = config.unixSocket;
  const listenUnix = async (server: http.Server, p: string): Promise<void> => {
    await listenUnixSocket(server, p, config.unixSocketMode, config.unixSocketGroup);
    announce.push([
      { path: p, mode: config.unixSocketMode.toString(8), group: config.unixSocketGroup },
      'listening on unix socket (access by file mode and group, no token)',
    ]);
  };
  if (config.port !== null) {
    try {
      await listenOn(app.server, { host: config.host, port: config.port });
    } catch (err) {
      throw tcpListenError(err, config.host, config.port);
    }
    announce.push([
      { address: app.server.address() },
      `listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${(app.server.address() as net.AddressInfo).port}`,
    ]);
    if (unixPath) {
      const s = extraServer(app, config);
      extra.push(s);
      await listenUnix(s, unixPath);
    }
  } else if (unixPath) {
    await listenUnix(app.server, unixPath);
  }
  return { extra, announce };
}

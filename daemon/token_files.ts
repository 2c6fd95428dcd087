// The token's files on disk: the directory the daemon keeps its token in
// (entered by fd, refused when another uid or group/others could write it),
// the token kept from an earlier start, and the token and `auth.header`
// written without a window in which a name swapped for a symlink could
// redirect a write. security.ts decides which token is used; this file only
// stores it.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The token directory, held open, and what goes into it. */
export interface PendingTokenFiles {
  dirFd: number;
  dir: string;
  /** The token file's name in `dir`: --token-out's last component (default "token"). */
  name: string;
  token: string;
  /** Write `token` (a new one); false when it is kept or comes from elsewhere. */
  writeToken: boolean;
}

/** A token file or directory the daemon refuses to use (exit 2: the operator has to act). */
export class TokenStoreError extends Error {}

export const TOKEN_FILE = 'token';
/** `Authorization: Bearer <token>` and a newline: what `curl -H @FILE` reads (one header per line, LF or CRLF). */
export const HEADER_FILE = 'auth.header';
export const TOKEN_RE = /^[\x21-\x7e]{16,}$/;

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;

/**
 * A path naming `name` inside the directory open as `dirFd`. Node has no
 * openat(2); resolving through the /proc/self/fd magic link gives the same
 * thing: the lookup starts at the directory the fd holds, whatever has been
 * renamed or planted along the path by name since it was opened.
 */
function at(dirFd: number, name: string): string {
  return `/proc/self/fd/${dirFd}/${name}`;
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

export function modeText(mode: number): string {
  return '0' + (mode & 0o7777).toString(8);
}

/**
 * Enters (creating it 0700 when missing) the directory `name` below `parentFd`
 * and returns its fd. Refused: a symlink, anything but a directory, a
 * directory of another uid, one that group or others may write.
 */
function enterOwnDir(parentFd: number, shown: string, name: string): number {
  try {
    fs.mkdirSync(at(parentFd, name), { mode: 0o700 });
  } catch (err) {
    if (errCode(err) !== 'EEXIST') throw new TokenStoreError(`cannot create ${shown}: ${(err as Error).message}`);
  }
  let fd: number;
  try {
    fd = fs.openSync(at(parentFd, name), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    let st: fs.Stats | null = null;
    try {
      st = fs.lstatSync(at(parentFd, name));
    } catch {
      /* gone meanwhile */
    }
    if (st?.isSymbolicLink()) {
      let target = '?';
      try {
        target = fs.readlinkSync(at(parentFd, name));
      } catch {
        /* unreadable */
      }
      throw new TokenStoreError(
        `${shown} is a symbolic link (to ${target}); the token is never written through one: remove it, or pass --token-out`,
      );
    }
    if (st && !st.isDirectory()) throw new TokenStoreError(`${shown} is not a directory: remove it, or pass --token-out`);
    throw new TokenStoreError(`cannot open ${shown}: ${(err as Error).message}`);
  }
  const st = fs.fstatSync(fd);
  const problem =
    st.uid !== euid()
      ? `is owned by uid ${st.uid}, not by this daemon's uid ${euid()}`
      : (st.mode & 0o022) !== 0
        ? `may be written by group or others (mode ${modeText(st.mode)})`
        : null;
  if (problem) {
    fs.closeSync(fd);
    throw new TokenStoreError(`${shown} ${problem}: the token is not written there; remove it, or pass --token-out`);
  }
  return fd;
}

/**
 * Opens the directory a generated token lives in, checking it as above. The
 * default, `.cache/nlbridge` under the working directory, is walked component
 * by component from the working directory; for --token-out and
 * $RUNTIME_DIRECTORY the directories above the token's own are the admin's
 * choice and are followed as they are, the token's own directory is checked.
 *
 * The walk holds each directory by fd and looks up the next name from it, so
 * nothing renamed or planted along the path after a check changes where the
 * file lands, and the file is created in a directory only this uid can write.
 * What remains: the *path* the log gives to readers (curl -H @FILE, cat) is
 * resolved by name again when they use it, so whoever can write the working
 * directory can point a reader at another file; the secret itself stays in
 * the directory checked here.
 */
export function openTokenDir(out: string, defaultDir: boolean, cwd: string): number {
  if (!fs.existsSync('/proc/self/fd'))
    throw new TokenStoreError(
      `the token directory is walked through /proc/self/fd, and /proc is not mounted: mount it, or give a token with --token-file`,
    );
  const dir = path.dirname(out);
  let parentFd: number;
  let parentPath: string;
  let names: string[];
  if (defaultDir) {
    parentPath = cwd;
    names = path.relative(cwd, dir).split(path.sep);
  } else {
    parentPath = path.dirname(dir);
    names = [path.basename(dir)];
    try {
      fs.mkdirSync(parentPath, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new TokenStoreError(`cannot create ${parentPath}: ${(err as Error).message}`);
    }
  }
  try {
    parentFd = fs.openSync(parentPath, O_RDONLY | O_DIRECTORY);
  } catch (err) {
    throw new TokenStoreError(`cannot open ${parentPath}: ${(err as Error).message}`);
  }
  for (const name of names) {
    parentPath = path.join(parentPath, name);
    let fd: number;
    try {
      fd = enterOwnDir(parentFd, parentPath, name);
    } finally {
      fs.closeSync(parentFd);
    }
    parentFd = fd;
  }
  return parentFd;
}

/** The token made at an earlier start, when the directory holds a usable one; null when there is none. */
export function keptToken(dirFd: number, shown: string): string | null {
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO in its place must not hang the start.
    fd = fs.openSync(at(dirFd, path.basename(shown)), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    if (errCode(err) === 'ENOENT') return null;
    if (errCode(err) === 'ELOOP') throw new TokenStoreError(`${shown} is a symbolic link: remove it (a new token is then made)`);
    throw new TokenStoreError(`cannot read ${shown}: ${(err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new TokenStoreError(`${shown} is not a regular file: remove it (a new token is then made)`);
    if (st.uid !== euid())
      throw new TokenStoreError(
        `${shown} is owned by uid ${st.uid}, not by this daemon's uid ${euid()}: remove it (a new token is then made)`,
      );
    if ((st.mode & 0o077) !== 0)
      throw new TokenStoreError(
        `${shown} may be read by others (mode ${modeText(st.mode)}), so the token in it may have leaked: remove it (a new token is then made)`,
      );
    const token = fs.readFileSync(fd, 'utf8').trim();
    if (!TOKEN_RE.test(token))
      throw new TokenStoreError(`${shown} holds no token (16 or more printable ASCII characters): remove it (a new token is then made)`);
    return token;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Once the daemon listens: writes a new token (never over an existing file:
 * link(2) fails if one appeared meanwhile) and the header file, both 0600, in
 * the directory setupAuth checked and holds open. A second daemon sharing the
 * directory finds and keeps the same token, so neither makes the other's
 * file wrong.
 */
export function writeTokenFiles(p: PendingTokenFiles): void {
  try {
    if (p.writeToken) {
      const tmp = writeTemp(p.dirFd, p.name, p.token + '\n');
      try {
        fs.linkSync(at(p.dirFd, tmp), at(p.dirFd, p.name));
      } catch (err) {
        if (errCode(err) === 'EEXIST') {
          throw new TokenStoreError(
            `${path.join(p.dir, p.name)} was made by another nlbridge starting at the same moment: start this one again (it then uses that token)`,
          );
        }
        throw err;
      } finally {
        fs.unlinkSync(at(p.dirFd, tmp));
      }
    }
    writeHeader(p);
  } catch (err) {
    if (err instanceof TokenStoreError) throw err;
    throw new TokenStoreError(`cannot write the token files in ${p.dir}: ${(err as Error).message}`);
  } finally {
    fs.closeSync(p.dirFd);
  }
}

/** Writes `text` 0600 under a temporary name in the directory and returns that name. */
function writeTemp(dirFd: number, base: string, text: string): string {
  const tmp = `.${base}.${process.pid}.tmp`;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(at(dirFd, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      // Left by an earlier process with this pid that died mid-write.
      if (errCode(err) === 'EEXIST' && attempt === 0) {
        fs.unlinkSync(at(dirFd, tmp));
        continue;
      }
      throw err;
    }
    try {
      fs.writeSync(fd, text);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return tmp;
  }
}

/** auth.header, replaced (rename) only when it does not hold this token's header already. */
function writeHeader(p: PendingTokenFiles): void {
  const header = `Authorization: Bearer ${p.token}\n`;
  let current: string | null = null;
  try {
    const fd = fs.openSync(at(p.dirFd, HEADER_FILE), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    try {
      current = fs.fstatSync(fd).isFile() ? fs.readFileSync(fd, 'utf8') : null;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    /* absent, or not a file: replaced below */
  }
  if (current !== header) {
    const tmp = writeTemp(p.dirFd, HEADER_FILE, header);
    fs.renameSync(at(p.dirFd, tmp), at(p.dirFd, HEADER_FILE));
  }
}

// The daemon's logger: pino JSON on stdout. Under journald each line starts
// with its syslog priority (<3> for error, …), which journald strips and
// stores as PRIORITY, so `journalctl -u nlbridge -p err` finds the errors
// (without it, every line is stored at the stream's default, info).

import * as fs from 'node:fs';
import * as util from 'node:util';
import pino from 'pino';

/** pino level → syslog priority (sd-daemon(3) prefixes). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2; // fatal → crit
  if (level >= 50) return 3; // error → err
  if (level >= 40) return 4; // warn → warning
  if (level >= 30) return 6; // info → info
  return 7; // debug, trace → debug
}

/**
 * Whether stdout is the journal's stream: JOURNAL_STREAM holds the
 * "device:inode" of that stream, and it is ours only if fd 1 is that very
 * stream (a child's redirected stdout inherits the variable, not the stream).
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv, stat: () => fs.Stats = () => fs.fstatSync(1)): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m) return false;
  try {
    const s = stat();
    return s.dev === Number(m[1]) && s.ino === Number(m[2]);
  } catch {
    return false;
  }
}

const LEVEL_AT_START = /^\{"level":(\d+)/;

/** Prefixes a pino line with its priority; pino writes "level" first. */
export function withPriorityPrefix(line: string): string {
  const m = LEVEL_AT_START.exec(line);
  return m ? `<${syslogPriority(Number(m[1]))}>${line}` : line;
}

/**
 * Sends what libraries print with console.* into the log as one JSON field.
 * The NATS client prints `reader closed` with the server's own bytes when it
 * cannot parse them: on stdout, next to the JSON lines, a server could write
 * a line of its own making into the daemon's log (an outside audit forged a
 * level-60 line that way). A library's console output is a warning here.
 */
export function routeConsole(log: pino.Logger): void {
  const say = (...args: unknown[]): void => log.warn({ console: util.format(...args) }, 'a library printed to the console');
  console.log = say;
  console.info = say;
  console.warn = say;
  console.error = say;
  console.debug = say;
}

export function createLogger(level: string, env: NodeJS.ProcessEnv = process.env): pino.Logger {
  return pino(
    {
      level,
      base: { pid: process.pid, name: 'nlbridge' },
      redact: ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]'],
      ...(stdoutIsJournal(env) ? { hooks: { streamWrite: withPriorityPrefix } } : {}),
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

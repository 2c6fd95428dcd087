// Child processes of the bench: every load generator and every receiver runs
// in its own process and talks to the runner in JSON lines on stdout (and,
// for Node agents, commands as JSON lines on stdin). A child that dies is a
// result, not a crash of the bench: its exit code and signal are kept.

import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Repository root, from dist/bench/lib/. */
export const ROOT = path.resolve(__dirname, '../../..');
/** Where the bench builds its C programs. */
export const CACHE_DIR = path.join(ROOT, '.cache', 'bench');

export type JsonObject = Record<string, unknown>;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Waiter {
  match: (line: JsonObject) => boolean;
  resolve: (line: JsonObject) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** A running child whose stdout is parsed as JSON lines. */
export class Proc {
  readonly child: ChildProcess;
  readonly name: string;
  /** Every JSON line seen so far, in order. */
  readonly lines: JsonObject[] = [];
  readonly exited: Promise<ExitInfo>;
  private exitInfo: ExitInfo | null = null;
  private stderrTail = '';
  private pending = '';
  private waiters: Waiter[] = [];

  constructor(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.name = name;
    this.child = spawn(command, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: env ?? process.env,
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
    });
    // A child that exits early closes its stdin under us: not an error here.
    this.child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': stdout is fully read by then, so a result line
      // printed just before exiting is never missed.
      this.child.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) ${this.stderr()}`));
        }
        resolve(this.exitInfo);
      });
      this.child.on('error', (err) => {
        this.stderrTail += String(err);
        if (!this.exitInfo) {
          this.exitInfo = { code: -1, signal: null };
          for (const w of this.waiters.splice(0)) {
            clearTimeout(w.timer);
            w.reject(err);
          }
          resolve(this.exitInfo);
        }
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get exit(): ExitInfo | null {
    return this.exitInfo;
  }

  stderr(): string {
    return this.stderrTail.trim();
  }

  private onStdout(chunk: string): void {
    this.pending += chunk;
    let nl: number;
    while ((nl = this.pending.indexOf('\n')) >= 0) {
      const text = this.pending.slice(0, nl).trim();
      this.pending = this.pending.slice(nl + 1);
      if (!text.startsWith('{')) continue;
      let line: JsonObject;
      try {
        line = JSON.parse(text) as JsonObject;
      } catch {
        continue;
      }
      this.lines.push(line);
      for (const w of [...this.waiters]) {
        if (w.match(line)) {
          clearTimeout(w.timer);
          this.waiters.splice(this.waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  }

  /** The first line (seen or to come) for which match() is true. */
  waitFor(match: (line: JsonObject) => boolean, timeoutMs: number): Promise<JsonObject> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    if (this.exitInfo) {
      return Promise.reject(new Error(`${this.name} already exited ${this.stderr()}`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms ${this.stderr()}`));
      }, timeoutMs);
      const waiter: Waiter = { match, resolve, reject, timer };
      this.waiters.push(waiter);
    });
  }

  waitForKey(key: string, timeoutMs: number): Promise<JsonObject> {
    return this.waitFor((l) => key in l, timeoutMs);
  }

  /** Send one command line to a Node agent. */
  command(cmd: JsonObject): void {
    if (!this.exitInfo) this.child.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  /** Last line carrying `key`, if any. */
  last(key: string): JsonObject | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--) if (key in this.lines[i]) return this.lines[i];
    return undefined;
  }

  /** Wait for exit up to timeoutMs, then SIGTERM, then SIGKILL. */
  async stop(timeoutMs = 2000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    const timeout = (ms: number) => new Promise<null>((r) => setTimeout(() => r(null), ms).unref());
    let info = await Promise.race([this.exited, timeout(timeoutMs)]);
    if (info) return info;
    this.child.kill('SIGTERM');
    info = await Promise.race([this.exited, timeout(1000)]);
    if (info) return info;
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** Path of a compiled bench agent, e.g. agent('node_sink') → dist/bench/agents/node_sink.js. */
export function agentPath(name: string): string {
  return path.join(ROOT, 'dist', 'bench', 'agents', `${name}.js`);
}

/** Start a compiled Node agent with its configuration as one JSON argument. */
export function startAgent(name: string, config: JsonObject, nodeArgs: string[] = []): Proc {
  return new Proc(name, process.execPath, [...nodeArgs, agentPath(name), JSON.stringify(config)]);
}

/** Start one of the bench's C programs from .cache/bench/. */
export function startC(name: string, args: (string | number)[]): Proc {
  return new Proc(name, path.join(CACHE_DIR, name), args.map(String));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The fields of /proc/PID/stat from field 3 on (index 0 is field 3), or null when the process is gone. */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** User + system CPU seconds a process has used (/proc/PID/stat fields 14 and 15), or null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  return fields === null ? null : (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ: 100 on Linux
}

/** Minor page faults a process has taken (/proc/PID/stat field 10), or null when it is gone. */
export function minorFaults(pid: number | 'self'): number | null {
  const fields = statFields(pid);
  return fields === null ? null : Number(fields[7]);
}

/** VmRSS of a process in bytes, or null when it is gone. */
export function rssBytes(pid: number): number | null {
  return statusField(pid, /VmRSS:\s+(\d+) kB/);
}

/** Proportional set size in bytes (shared pages divided among their sharers), or null. */
export function pssBytes(pid: number): number | null {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function statusField(pid: number, re: RegExp): number | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = re.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

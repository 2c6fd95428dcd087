// A real daemon process (node dist/daemon/main.js) on NETLINK_USERSOCK for the
// reliability cases: spawned, its pino JSON log collected, stopped with SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './report';

export const MAIN = path.join(REPO_ROOT, 'dist', 'daemon', 'main.js');
const LISTEN_DEADLINE_MS = 30_000;

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface DaemonProc {
  proc: ChildProcess;
  pid: number;
  port: number;
  base: string;
  wsBase: string;
  token: string | null;
  dir: string;
  logs: LogLine[];
  /** SIGTERM, then the exit code (SIGKILL after 8 s). */
  stop(): Promise<number | null>;
  alive(): boolean;
}

/**
 * Starts the daemon with `args` added to `--protocol usersock --host 127.0.0.1
 * --port 0`. As root with `--auth auto` it generates a token into its
 * directory (read back here).
 */
export async function spawnDaemon(args: string[] = [], env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): Promise<DaemonProc> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-rel-'));
  const tokenOut = path.join(dir, 'token');
  const proc = spawn(
    process.execPath,
    [...nodeArgs, MAIN, '--protocol', 'usersock', '--host', '127.0.0.1', '--port', '0', '--token-out', tokenOut, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, NOTIFY_SOCKET: '', WATCHDOG_USEC: '' } },
  );
  const logs: LogLine[] = [];
  let out = '';
  let err = '';
  let exited: number | null | undefined;
  const exit = new Promise<number | null>((resolve) =>
    proc.on('exit', (code) => {
      exited = code;
      resolve(code);
    }),
  );
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  let deadline: NodeJS.Timeout | undefined;
  const listening = new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        if (!line.trim()) continue;
        let j: LogLine;
        try {
          j = JSON.parse(line) as LogLine;
        } catch {
          j = { msg: line };
        }
        logs.push(j);
        const m = /^listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(String(j.msg ?? ''));
        if (m) resolve(Number(m[1]));
      }
    });
    void exit.then((code) =>
      reject(new Error(`daemon exited ${code} before listening: ${err}${logs.map((l) => JSON.stringify(l)).join('\n')}`)),
    );
    // A deadline, not a measure (case 8 measures the start): generous, since
    // on a loaded 2-CPU host a start took over 10 s. A daemon that missed it
    // is killed, or it would keep this test process alive.
    deadline = setTimeout(() => {
      reject(
        new Error(
          `daemon did not listen within ${LISTEN_DEADLINE_MS / 1000} s; its log so far: ${logs
            .map((l) => JSON.stringify(l))
            .join('\n')
            .slice(0, 2000)}; stderr: ${err}`,
        ),
      );
      proc.kill('SIGKILL');
    }, LISTEN_DEADLINE_MS);
    deadline.unref();
  });
  const port = await listening.finally(() => clearTimeout(deadline));
  let token: string | null = null;
  if (logs.some((l) => /bearer token is required/.test(String(l.msg)))) {
    const f = logs.find((l) => typeof l.tokenFile === 'string')?.tokenFile as string;
    token = readFileSync(f, 'utf8').trim();
  }
  return {
    proc,
    pid: proc.pid!,
    port,
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    token,
    dir,
    logs,
    alive: () => exited === undefined,
    stop: async () => {
      if (exited !== undefined) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
      const code = await exit;
      clearTimeout(t);
      return code;
    },
  };
}

/** RSS of a process in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Rows of /proc/net/netlink (Inode → Drops etc.). */
export function procNetlink(): { eth: number; pid: number; groups: string; rmem: number; drops: number; inode: number }[] {
  const lines = readFileSync('/proc/net/netlink', 'utf8').trim().split('\n').slice(1);
  return lines.map((l) => {
    const f = l.trim().split(/\s+/);
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    return { eth: Number(f[1]), pid: Number(f[2]), groups: f[3], rmem: Number(f[4]), drops: Number(f[8]), inode: Number(f[9]) };
  });
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

/**
 * A preload (node -r) that measures the daemon's event-loop delay with
 * perf_hooks.monitorEventLoopDelay: on SIGUSR2 it writes {p50, p99, max (ms),
 * count} to `out` and starts a fresh histogram.
 */
export function eventLoopProbe(dir: string): {
  nodeArgs: string[];
  read(pid: number): Promise<{ p50: number; p99: number; max: number; count: number }>;
} {
  const preload = path.join(dir, 'eld_probe.js');
  const out = path.join(dir, 'eld.json');
  writeFileSync(
    preload,
    `const { monitorEventLoopDelay } = require('node:perf_hooks');
let h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
process.on('SIGUSR2', () => {
  const r = { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, count: h.count };
  h.disable(); h = monitorEventLoopDelay({ resolution: 1 }); h.enable();
  // Written aside and renamed: the reader polls for the file and must never see it half written.
  require('node:fs').writeFileSync(${JSON.stringify(out + '.tmp')}, JSON.stringify(r));
  require('node:fs').renameSync(${JSON.stringify(out + '.tmp')}, ${JSON.stringify(out)});
});
`,
  );
  return {
    nodeArgs: ['-r', preload],
    read: async (pid: number) => {
      rmSync(out, { force: true });
      process.kill(pid, 'SIGUSR2');
      for (let i = 0; i < 200 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 10));
      return JSON.parse(readFileSync(out, 'utf8')) as { p50: number; p99: number; max: number; count: number };
    },
  };
}

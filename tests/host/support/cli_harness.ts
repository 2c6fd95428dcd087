// Helpers of the CLI host tests: the `nlbridge` command (dist/bin/nlbridge.js,
// what package.json's bin and /usr/bin/nlbridge run) as a child process, run
// to its end or kept running (watch) with its output read line by line.

import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT, sleep } from './daemon_harness';

export const BIN = path.join(ROOT, 'dist/bin/nlbridge.js');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The environment a command runs in: none of the caller's NLBRIDGE_* (a test
 * says where the daemon is), and a cwd the test chooses, so the default
 * token files and sockets are the test's own.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('NLBRIDGE_')) env[k] = v;
  return { ...env, ...extra };
}

/** Runs `nlbridge ARGS…` to its end (killed after `timeoutMs`). */
export function runCli(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, env: cliEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 15000);
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin.end(opts.input ?? '');
  });
}

/** A command that keeps running (watch), its stdout and stderr as lines. */
export class LiveCli {
  readonly out: string[] = [];
  readonly err: string[] = [];
  readonly proc: ChildProcess;
  readonly exit: Promise<number | null>;

  constructor(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
    this.proc = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? ROOT,
      env: cliEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => this.out.push(l));
    createInterface({ input: this.proc.stderr! }).on('line', (l) => this.err.push(l));
    this.exit = new Promise((resolve) => this.proc.on('close', (code) => resolve(code)));
  }

  /** Waits until `pred` holds of the output so far. */
  async until(pred: () => boolean, ms: number, what: string): Promise<void> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end)
        throw new Error(`timed out waiting for ${what}; stdout: ${this.out.slice(-5).join(' | ')}; stderr: ${this.err.join(' | ')}`);
      await sleep(20);
    }
  }

  stop(): Promise<number | null> {
    this.proc.kill('SIGINT');
    return this.exit;
  }
}

/** No line of a failed command looks like a stack trace. */
export function hasStack(text: string): boolean {
  return /^\s+at .+\(.*:\d+:\d+\)$/m.test(text) || /^\s+at .+:\d+:\d+$/m.test(text);
}

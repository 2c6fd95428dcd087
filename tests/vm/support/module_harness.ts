// Runs tests/vm/module/run.sh (dummy_netlink under QEMU in a busybox
// initramfs) for the module test and the reliability abuse case: the guest's
// console is streamed to stderr, so a slow or stuck run shows where it is,
// and the harness is killed when it outlives its budget.
import { spawn } from 'node:child_process';
import path from 'node:path';

const REPO_ROOT = path.resolve(__dirname, '../../../..');
const HARNESS = path.join(REPO_ROOT, 'tests', 'vm', 'module', 'run.sh');

/** run.sh with `env` added to this process's environment; its exit code and everything it printed. */
export function runModuleHarness(env: NodeJS.ProcessEnv, budgetMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(HARNESS, [], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let output = '';
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      output += text;
      process.stderr.write(text);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => child.kill('SIGKILL'), budgetMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

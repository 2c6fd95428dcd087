// Test-only guest agent for the nlbridge end-to-end test (compiled by tsc to
// dist/tests/vm/e2e/guest/agent.js; image.sh copies it into the guest, where
// nlbridge-test-agent.service runs it). Listens on TCP (QEMU forwards a host
// port to it); each connection carries one JSON request line and gets one
// JSON response line:
//   {"cmd": "shell text", "timeoutMs": 10000}   run to completion
//     → {"code": 0, "signal": null, "stdout": "...", "stderr": "...", "timedOut": false}
//   {"spawn": "shell text", "id": "name"}       start in the background → {"pid": 123}
//   {"output": "name"}  → {"stdout": "...", "stderr": "...", "code": null | N | "SIGTERM"}
//   {"kill": "name", "signal": "SIGTERM"}       → {"ok": true}
// Commands run as root with bash -c.
import * as net from 'node:net';
import { spawn, type ChildProcess } from 'node:child_process';

interface Job {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  code: number | string | null;
}

interface Request {
  cmd?: string;
  timeoutMs?: number;
  spawn?: string;
  id?: string;
  output?: string;
  kill?: string;
  signal?: NodeJS.Signals;
}

const jobs = new Map<string, Job>();

function run(cmd: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut: signal === 'SIGKILL' });
    });
  });
}

async function handle(req: Request): Promise<Record<string, unknown>> {
  if (typeof req.cmd === 'string') return run(req.cmd, req.timeoutMs ?? 30_000);
  if (typeof req.spawn === 'string' && typeof req.id === 'string') {
    const old = jobs.get(req.id);
    if (old && old.code === null) old.child.kill('SIGKILL');
    const child = spawn('/bin/bash', ['-c', req.spawn], { stdio: ['ignore', 'pipe', 'pipe'] });
    const job: Job = { child, stdout: '', stderr: '', code: null };
    child.stdout?.on('data', (d: Buffer) => (job.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (job.stderr += d.toString()));
    child.on('close', (code, signal) => (job.code = code ?? signal));
    jobs.set(req.id, job);
    return { pid: child.pid };
  }
  if (typeof req.output === 'string') {
    const job = jobs.get(req.output);
    if (!job) return { error: 'no such job' };
    return { stdout: job.stdout, stderr: job.stderr, code: job.code };
  }
  if (typeof req.kill === 'string') {
    const job = jobs.get(req.kill);
    if (!job) return { error: 'no such job' };
    job.child.kill(req.signal ?? 'SIGTERM');
    return { ok: true };
  }
  return { error: 'unknown request' };
}

const port = Number(process.argv[2] ?? 7000);
net
  .createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req: Request;
      try {
        req = JSON.parse(buf.slice(0, nl)) as Request;
      } catch (err) {
        sock.end(JSON.stringify({ error: String(err) }) + '\n');
        return;
      }
      handle(req).then(
        (res) => sock.end(JSON.stringify(res) + '\n'),
        (err: unknown) => sock.end(JSON.stringify({ error: String(err) }) + '\n'),
      );
    });
    sock.on('error', () => {});
  })
  .listen(port, '0.0.0.0', () => {
    process.stdout.write(`nlbridge-test-agent: listening on ${port}\n`);
  });

#!/usr/bin/node
// Test-only guest agent for the nlbridge end-to-end test. Listens on TCP
// (QEMU forwards a host port to it); each connection carries one JSON
// request line and gets one JSON response line:
//   {"cmd": "shell text", "timeoutMs": 10000}            run to completion
//   → {"code": 0, "signal": null, "stdout": "...", "stderr": "..."}
//   {"spawn": "shell text", "id": "name"}                 start in background
//   → {"pid": 123}
//   {"output": "name"}  → {"stdout": "...", "stderr": "...", "code": null|N}
//   {"kill": "name", "signal": "SIGTERM"}  → {"ok": true}
// Commands run as root with bash -c.
'use strict';
const net = require('node:net');
const { spawn } = require('node:child_process');

const port = Number(process.argv[2] || 7000);
const jobs = new Map();

function run(cmd, timeoutMs) {
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut: signal === 'SIGKILL' });
    });
  });
}

async function handle(req) {
  if (typeof req.cmd === 'string') return run(req.cmd, req.timeoutMs || 30000);
  if (typeof req.spawn === 'string') {
    const old = jobs.get(req.id);
    if (old && old.code === null) old.child.kill('SIGKILL');
    const child = spawn('/bin/bash', ['-c', req.spawn], { stdio: ['ignore', 'pipe', 'pipe'] });
    const job = { child, stdout: '', stderr: '', code: null };
    child.stdout.on('data', (d) => (job.stdout += d));
    child.stderr.on('data', (d) => (job.stderr += d));
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
    job.child.kill(req.signal || 'SIGTERM');
    return { ok: true };
  }
  return { error: 'unknown request' };
}

net
  .createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let req;
      try {
        req = JSON.parse(buf.slice(0, nl));
      } catch (err) {
        sock.end(JSON.stringify({ error: String(err) }) + '\n');
        return;
      }
      handle(req).then(
        (res) => sock.end(JSON.stringify(res) + '\n'),
        (err) => sock.end(JSON.stringify({ error: String(err) }) + '\n'),
      );
    });
    sock.on('error', () => {});
  })
  .listen(port, '0.0.0.0', () => {
    // The console line the host waits for.
    console.log(`nlbridge-test-agent: listening on ${port}`);
  });

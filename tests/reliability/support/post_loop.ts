// Runs inside the VM of case 8 (the test copies the compiled file there):
//   node post_loop.js TOKEN WORKERS LOG STOPFILE
// WORKERS loops POST /send to group 3 of the daemon on 127.0.0.1:8080, one
// connection per request, until STOPFILE exists. One line per request in LOG:
//   START_MS END_MS OUTCOME STATUS
// OUTCOME is "ok" (an HTTP answer, STATUS its code), or the error code:
// ECONNREFUSED (no listener: the request never was in flight), ECONNRESET
// (an accepted connection closed without an answer), TIMEOUT.
import * as fs from 'node:fs';
import * as http from 'node:http';

const [token, workersArg, logPath, stopPath] = process.argv.slice(2);
const log = fs.createWriteStream(logPath, { flags: 'a' });
const PAUSE_MS = 20; // between requests, so the guest's CPUs are not all ours
const RETRY_MS = 100; // after a refused or failed request

function post(worker: number, i: number): Promise<boolean> {
  const body = JSON.stringify({ groups: [3], data: `post-${worker}-${i}` });
  const start = Date.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: 8080,
        method: 'POST',
        path: '/send',
        agent: false,
        timeout: 20_000,
        headers: {
          host: '127.0.0.1:8080',
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          log.write(`${start} ${Date.now()} ok ${res.statusCode}\n`);
          resolve(true);
        });
        res.on('error', () => {
          log.write(`${start} ${Date.now()} ECONNRESET ${res.statusCode}\n`);
          resolve(false);
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => {
      log.write(`${start} ${Date.now()} ${err.code ?? 'ERROR'} 000\n`);
      resolve(false);
    });
    req.end(body);
  });
}

async function loop(worker: number): Promise<void> {
  for (let i = 1; !fs.existsSync(stopPath); i++) {
    const ok = await post(worker, i);
    await new Promise((r) => setTimeout(r, ok ? PAUSE_MS : RETRY_MS));
  }
}

void Promise.all(Array.from({ length: Number(workersArg) }, (_, w) => loop(w + 1))).then(() => log.end());

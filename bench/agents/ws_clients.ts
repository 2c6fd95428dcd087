// A process holding many WebSocket clients, counting the bench messages each
// receives and, on request, each message's send→receive latency. The runner
// spreads large client counts over a few of these.
//
// argv[2]: {"url":..., "clients":N, "expectPerClient":N, "maxSeconds":S,
//           "idleMs":MS, "latency":bool, "pauseFirst":bool, "connectParallel":N}
// Probes (bench/c/nlb_common.h) are not counted; once every client here has
// seen one, {"probed":true} goes out: the whole path is up.
// stdin commands: {"cmd":"report"} → print the result now and exit.

import * as readline from 'node:readline';
import WebSocket from 'ws';
import { FrameDecoder, type BenchMsg } from '../lib/frames';
import { summarizeNs } from '../lib/stats';

interface Config {
  url: string;
  clients: number;
  expectPerClient: number;
  maxSeconds: number;
  idleMs: number;
  latency?: boolean;
  /** The first client stops reading (its TCP socket is paused) once connected. */
  pauseFirst?: boolean;
  connectParallel?: number;
}

const cfg = JSON.parse(process.argv[2]) as Config;
const decoder = new FrameDecoder();
const counts = new Array<number>(cfg.clients).fill(0);
const probed = new Array<boolean>(cfg.clients).fill(false);
let probedClients = 0;
const sockets: WebSocket[] = [];
const latNs: number[] = [];
const closes: Record<string, number> = {};
let frames = 0;
let received = 0;
let firstNs = 0n;
let lastNs = 0n;
let errors = 0;
let connected = 0;
let failed = 0;
let doneClients = 0;
let finished = false;
const scratch: BenchMsg[] = [];
let cpuAtReady = process.cpuUsage();

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function onMessage(i: number, data: WebSocket.RawData, isBinary: boolean): void {
  const now = process.hrtime.bigint();
  frames++;
  scratch.length = 0;
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  if (isBinary) decoder.fromBinary(buf, scratch);
  else decoder.fromText(buf.toString('utf8'), scratch);
  let n = 0;
  for (const m of scratch) {
    if (m.probe) {
      if (!probed[i]) {
        probed[i] = true;
        if (++probedClients === cfg.clients) out({ probed: true });
      }
      continue;
    }
    n++;
    if (cfg.latency) latNs.push(Number(now - m.sendNs));
  }
  if (n === 0) return;
  if (firstNs === 0n) firstNs = now;
  lastNs = now;
  received += n;
  const before = counts[i];
  counts[i] += n;
  if (before < cfg.expectPerClient && counts[i] >= cfg.expectPerClient) doneClients++;
  if (doneClients >= cfg.clients) finish('complete');
}

function connectOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(cfg.url, { perMessageDeflate: false });
    sockets[i] = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      connected++;
      if (i === 0 && cfg.pauseFirst) {
        // Stop reading at the TCP level: the server sees a client that does not drain.
        (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      }
      resolve();
    });
    ws.on('message', (data, isBinary) => onMessage(i, data, isBinary));
    ws.on('error', () => {
      errors++;
      if (!opened) {
        failed++;
        resolve();
      }
    });
    ws.on('close', (code) => {
      closes[code] = (closes[code] ?? 0) + 1;
    });
  });
}

function finish(reason: string): void {
  if (finished) return;
  finished = true;
  const seconds = lastNs > firstNs ? Number(lastNs - firstNs) / 1e9 : 0;
  let min = Infinity;
  let max = 0;
  for (const c of counts) {
    if (c < min) min = c;
    if (c > max) max = c;
  }
  out({
    result: {
      reason,
      clients: cfg.clients,
      connected,
      failed,
      frames,
      received,
      minPerClient: cfg.clients ? min : 0,
      maxPerClient: max,
      seconds,
      rate: seconds > 0 ? received / seconds : 0,
      latency: cfg.latency ? summarizeNs(latNs) : undefined,
      // This client process's CPU (user + system) since it was ready: when it
      // nears `seconds`, the client, not the server, set the pace.
      cpuSeconds: (() => {
        const c = process.cpuUsage(cpuAtReady);
        return (c.user + c.system) / 1e6;
      })(),
      closes,
      errors,
    },
  });
  for (const ws of sockets) ws?.terminate();
  setTimeout(() => process.exit(0), 50).unref();
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const parallel = cfg.connectParallel ?? 50;
  for (let i = 0; i < cfg.clients; i += parallel) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(cfg.clients, i + parallel); j++) batch.push(connectOne(j));
    await Promise.all(batch);
  }
  out({ ready: true, connected, failed, connectMs: Date.now() - t0 });
  cpuAtReady = process.cpuUsage();
  const startNs = process.hrtime.bigint();
  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    if (firstNs !== 0n && Number(now - lastNs) / 1e6 > cfg.idleMs) finish('idle');
    else if (Number(now - startNs) / 1e9 > cfg.maxSeconds) finish('timeout');
    if (finished) clearInterval(timer);
  }, 20);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  try {
    const cmd = JSON.parse(line) as { cmd?: string };
    if (cmd.cmd === 'report') finish('report');
  } catch {
    // not a command
  }
});

void main();

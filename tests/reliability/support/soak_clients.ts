// Agent process of the soak case (tests/reliability/soak.test.ts): holds N
// WebSocket clients for as long as the test runs and checks, per client, that
// the bench messages of the current flood arrive exactly once and in order
// (the C sender numbers them 0, 1, 2, ...; nlb_common.h). Unlike the bench's
// ws_clients agent it does not exit when a count is reached: the test resets
// and reads the counters between phases.
//
// argv[2]: {"url": ws URL, "clients": N, "connectParallel"?: N}
// stdout: {"ready":…} once connected; {"probed":true} once every client saw a
//         probe since the last reset; answers to commands (below).
// stdin:  {"cmd":"reset","id":K} → counters to zero (a new flood starts at
//         index 0), then {"reset":true,"id":K}
//         {"cmd":"report","id":K} → {"report":{…},"id":K}
//         {"cmd":"exit"} → close every client (1000) and exit

import * as readline from 'node:readline';
import WebSocket from 'ws';
import { FrameDecoder, type BenchMsg } from '../../../bench/lib/frames';

interface Config {
  url: string;
  clients: number;
  connectParallel?: number;
}

const cfg = JSON.parse(process.argv[2]) as Config;
const decoder = new FrameDecoder();
const sockets: WebSocket[] = [];
const counts = new Array<number>(cfg.clients).fill(0);
/** Index the next message of client i must carry. */
const next = new Array<number>(cfg.clients).fill(0);
const probed = new Array<boolean>(cfg.clients).fill(false);
let probedClients = 0;
/** Messages whose index was not the one expected (lost, repeated or reordered before them). */
let disorder = 0;
let firstDisorder: { client: number; expected: number; got: number } | null = null;
/** Non-message frames other than hello (dropped, overrun, gap, error ...), by type. */
let events: Record<string, number> = {};
const closes: Record<string, number> = {};
let errors = 0;
let connected = 0;
let lastRecvMs = 0;
const scratch: BenchMsg[] = [];

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function countEvents(text: string): void {
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('{"type":"message"')) continue;
    let type = 'unparsable';
    try {
      type = String((JSON.parse(line) as { type?: unknown }).type);
    } catch {
      // counted as unparsable
    }
    if (type !== 'hello') events[type] = (events[type] ?? 0) + 1;
  }
}

function onMessage(i: number, data: WebSocket.RawData, isBinary: boolean): void {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  scratch.length = 0;
  if (isBinary) {
    decoder.fromBinary(buf, scratch);
  } else {
    const text = buf.toString('utf8');
    // Message frames start with their type; anything else is an event worth counting.
    if (!text.startsWith('{"type":"message"') || text.includes('\n')) countEvents(text);
    decoder.fromText(text, scratch);
  }
  for (const m of scratch) {
    if (m.probe) {
      if (!probed[i]) {
        probed[i] = true;
        if (++probedClients === cfg.clients) out({ probed: true });
      }
      continue;
    }
    if (m.index !== next[i]) {
      disorder++;
      firstDisorder ??= { client: i, expected: next[i], got: m.index };
    }
    next[i] = m.index + 1;
    counts[i]++;
  }
  lastRecvMs = Date.now();
}

function connectOne(i: number): Promise<void> {
  return new Promise((resolve) => {
    const ws = new WebSocket(cfg.url, { perMessageDeflate: false });
    sockets[i] = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      connected++;
      resolve();
    });
    ws.on('message', (data, isBinary) => onMessage(i, data, isBinary));
    ws.on('error', () => {
      errors++;
      if (!opened) resolve();
    });
    ws.on('close', (code) => {
      closes[code] = (closes[code] ?? 0) + 1;
    });
  });
}

function report(): object {
  let min = Infinity;
  let max = 0;
  let total = 0;
  for (const c of counts) {
    min = Math.min(min, c);
    max = Math.max(max, c);
    total += c;
  }
  const cpu = process.cpuUsage();
  return {
    clients: cfg.clients,
    connected,
    open: sockets.filter((ws) => ws.readyState === WebSocket.OPEN).length,
    min: cfg.clients ? min : 0,
    max,
    total,
    disorder,
    firstDisorder,
    events,
    closes,
    errors,
    idleMs: lastRecvMs ? Date.now() - lastRecvMs : null,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

function reset(): void {
  counts.fill(0);
  next.fill(0);
  probed.fill(false);
  probedClients = 0;
  disorder = 0;
  firstDisorder = null;
  events = {};
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const parallel = cfg.connectParallel ?? 50;
  for (let i = 0; i < cfg.clients; i += parallel) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(cfg.clients, i + parallel); j++) batch.push(connectOne(j));
    await Promise.all(batch);
  }
  out({ ready: true, connected, connectMs: Date.now() - t0 });
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let cmd: string | undefined;
  let id: unknown;
  try {
    ({ cmd, id } = JSON.parse(line) as { cmd?: string; id?: unknown });
  } catch {
    return;
  }
  if (cmd === 'reset') {
    reset();
    out({ reset: true, id });
  } else if (cmd === 'report') {
    out({ report: report(), id });
  } else if (cmd === 'exit') {
    for (const ws of sockets) ws?.close(1000);
    setTimeout(() => process.exit(0), 300).unref();
  }
});

void main();

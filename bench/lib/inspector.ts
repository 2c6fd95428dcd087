// A full garbage collection in another Node process, through its inspector
// (the process runs with `--inspect=127.0.0.1:0`). The memory-per-client
// figure needs it: an RSS delta taken without one measures how much free heap
// the daemon happened to have when the clients arrived, not what each client
// keeps (two builds whose heap snapshots differ by 5 % per client read
// 5.1–5.8 KiB and 16.6–22.7 KiB without a GC, 10.3 and 10.5 KiB after one).

import WebSocket from 'ws';
import type { Proc } from './proc';
import { sleep } from './proc';

/** The inspector's WebSocket URL, from the line Node prints on stderr. */
async function inspectorUrl(proc: Proc, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(proc.stderr());
    if (m) return m[1];
    if (Date.now() > deadline) throw new Error(`${proc.name}: no inspector URL on stderr within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Collect garbage in `proc` (twice: weak callbacks free more on the second pass). */
export async function collectGarbage(proc: Proc, timeoutMs = 10_000): Promise<void> {
  const ws = new WebSocket(await inspectorUrl(proc, timeoutMs));
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    let id = 0;
    const call = (method: string): Promise<void> =>
      new Promise((resolve, reject) => {
        const mine = ++id;
        const timer = setTimeout(() => reject(new Error(`${proc.name}: inspector ${method} timed out`)), timeoutMs);
        const onMessage = (data: WebSocket.RawData): void => {
          const reply = JSON.parse(data.toString()) as { id?: number; error?: { message: string } };
          if (reply.id !== mine) return;
          clearTimeout(timer);
          ws.off('message', onMessage);
          if (reply.error) reject(new Error(`${proc.name}: inspector ${method}: ${reply.error.message}`));
          else resolve();
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id: mine, method }));
      });
    await call('HeapProfiler.collectGarbage');
    await call('HeapProfiler.collectGarbage');
  } finally {
    ws.close();
  }
}

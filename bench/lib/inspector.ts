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

/** A session on `proc`'s inspector: protocol calls, answered in order of their ids. */
export interface InspectorSession {
  call(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

export async function openInspector(proc: Proc, timeoutMs = 10_000): Promise<InspectorSession> {
  const ws = new WebSocket(await inspectorUrl(proc, timeoutMs));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let id = 0;
  return {
    call: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const mine = ++id;
        const timer = setTimeout(() => reject(new Error(`${proc.name}: inspector ${method} timed out`)), timeoutMs);
        const onMessage = (data: WebSocket.RawData): void => {
          const reply = JSON.parse(data.toString()) as { id?: number; error?: { message: string }; result?: Record<string, unknown> };
          if (reply.id !== mine) return;
          clearTimeout(timer);
          ws.off('message', onMessage);
          if (reply.error) reject(new Error(`${proc.name}: inspector ${method}: ${reply.error.message}`));
          else resolve(reply.result ?? {});
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id: mine, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Collect garbage in `proc` (twice: weak callbacks free more on the second pass). */
export async function collectGarbage(proc: Proc, timeoutMs = 10_000): Promise<void> {
  const s = await openInspector(proc, timeoutMs);
  try {
    await s.call('HeapProfiler.collectGarbage');
    await s.call('HeapProfiler.collectGarbage');
  } finally {
    s.close();
  }
}

// process.memoryUsage(), and the size of V8's young and old generations: a
// peak that differs in heapTotal is told apart as young-generation growth
// (the scavenger enlarges new space after enough bytes survive it) or old.
const MEMORY_EXPRESSION = `JSON.stringify((() => {
  const spaces = process.mainModule.require('v8').getHeapSpaceStatistics();
  const size = (name) => spaces.find((s) => s.space_name === name)?.space_size ?? null;
  return { ...process.memoryUsage(), newSpace: size('new_space'), oldSpace: size('old_space') };
})())`;

/** `process.memoryUsage()` of `proc` with its new and old space sizes, read through its inspector session. */
export async function memoryUsage(s: InspectorSession): Promise<Record<string, number>> {
  const r = (await s.call('Runtime.evaluate', { expression: MEMORY_EXPRESSION, returnByValue: true })) as {
    result?: { value?: string };
  };
  return JSON.parse(r.result?.value ?? '{}') as Record<string, number>;
}

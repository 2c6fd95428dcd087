// Flood scenarios, run by addon_flood.test.ts in a child process inside a
// fresh network namespace (`unshare --net`): netlink groups belong to a
// namespace, so no other program on the host can add to or take from the
// counts. Each scenario prints one JSON line.

import type { Datagram, OverrunEvent } from '../../../addon/types';
import type { NetlinkSocket } from '../../../addon/socket';
import { G, RUN_TAG, bit, flood, isOurs, open, sleep, type FloodResult } from './netlink';

export interface Tally {
  received: number;
  foreign: number;
  lost: number;
  overruns: OverrunEvent[];
  batches: number;
  largestBatch: number;
  truncated: number;
  sentinels: number;
}

const SENTINEL_TAG = ~RUN_TAG >>> 0;

function isSentinel(d: Datagram): boolean {
  return d.data.length >= 16 && d.data.readUInt32LE(12) === SENTINEL_TAG;
}

/**
 * Resolves once everything queued on `reader` before now has been read. A
 * unicast sentinel joins the same receive queue behind the flood (retried
 * while the queue is full), so its arrival means the flood's datagrams were
 * read and their drops counted. A quiet period would not do: a descheduled
 * process runs its expired timers before it polls again.
 */
async function drained(reader: NetlinkSocket): Promise<void> {
  const writer = open();
  const sentinel = Buffer.alloc(16);
  sentinel.writeUInt32LE(16, 0);
  sentinel.writeUInt16LE(0x10, 4);
  sentinel.writeUInt32LE(SENTINEL_TAG, 12);
  const seen = new Promise<void>((resolve) => {
    const onBatch = (batch: Datagram[]): void => {
      if (batch.some(isSentinel)) {
        reader.off('datagrams', onBatch);
        resolve();
      }
    };
    reader.on('datagrams', onBatch);
  });
  for (;;) {
    try {
      writer.send(sentinel, { portId: reader.portId });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
      await sleep(2);
    }
  }
  await seen;
  writer.close();
}

function tally(sock: NetlinkSocket): Tally {
  const t: Tally = {
    received: 0,
    foreign: 0,
    lost: 0,
    overruns: [],
    batches: 0,
    largestBatch: 0,
    truncated: 0,
    sentinels: 0,
  };
  sock.on('datagrams', (batch: Datagram[]) => {
    t.batches++;
    t.largestBatch = Math.max(t.largestBatch, batch.length);
    for (const d of batch) {
      if (isOurs(d)) t.received++;
      else if (isSentinel(d)) t.sentinels++;
      else t.foreign++;
      if (d.truncated) t.truncated++;
    }
  });
  sock.on('overrun', (ev) => {
    t.overruns.push(ev);
    t.lost += ev.lost;
  });
  return t;
}

/** Largest gap between 5 ms ticks while `work` runs, and how many ticks ran. */
async function maxTimerLag<T>(work: Promise<T>): Promise<{ result: T; maxLagMs: number; ticks: number }> {
  let last = performance.now();
  let maxLagMs = 0;
  let ticks = 0;
  const iv = setInterval(() => {
    const now = performance.now();
    maxLagMs = Math.max(maxLagMs, now - last - 5);
    last = now;
    ticks++;
  }, 5);
  try {
    const result = await work;
    return { result, maxLagMs, ticks };
  } finally {
    clearInterval(iv);
  }
}

export interface ScenarioResult {
  flood: FloodResult;
  tally: Tally;
  drops: number;
  dropsBeforeListening?: number;
  maxLagMs?: number;
  ticks?: number;
  afterFlood?: { text: string; fromWriter: boolean };
  netns: string;
}

type Scenario = () => Promise<Omit<ScenarioResult, 'netns'>>;

export const scenarios: Record<string, Scenario> = {
  /** 1,000,000 broadcasts at full speed into a 64 KiB buffer, read as they come. */
  async million() {
    const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024 });
    const t = tally(reader);
    const { result, maxLagMs } = await maxTimerLag(flood(1_000_000, 0, bit(G.flood)));
    await drained(reader);
    const drops = reader.drops();
    const counted = structuredClone(t);
    // The socket still works after the flood.
    const writer = open();
    const got = new Promise<Datagram[]>((resolve) => reader.once('datagrams', resolve));
    writer.send(Buffer.from('after the flood'), { portId: reader.portId });
    const [d] = await got;
    const afterFlood = { text: d.data.toString(), fromWriter: d.portId === writer.portId };
    writer.close();
    reader.close();
    return { flood: result, tally: counted, drops, maxLagMs, afterFlood };
  },

  /** 100,000 into a 64 KiB buffer nobody reads yet, then a listener attaches. */
  async enobufs() {
    const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024 });
    const result = await flood(100_000, 0, bit(G.flood));
    const dropsBeforeListening = reader.drops();
    const t = tally(reader);
    await drained(reader);
    const drops = reader.drops();
    reader.close();
    return { flood: result, tally: t, drops, dropsBeforeListening };
  },

  /** As million, 200,000 messages, with NETLINK_NO_ENOBUFS. */
  async noEnobufs() {
    const reader = open({ groups: bit(G.flood), receiveBufferBytes: 64 * 1024, noEnobufs: true });
    const t = tally(reader);
    const result = await flood(200_000, 0, bit(G.flood));
    await drained(reader);
    const drops = reader.drops();
    reader.close();
    return { flood: result, tally: t, drops };
  },

  /** 1,000,000 into a 32 MiB buffer: long drains, bounded per wake-up. */
  async bigBuffer() {
    const reader = open({ groups: bit(G.flood), receiveBufferBytes: 32 * 1024 * 1024 });
    const t = tally(reader);
    const { result, maxLagMs, ticks } = await maxTimerLag(flood(1_000_000, 0, bit(G.flood)));
    await drained(reader);
    const drops = reader.drops();
    reader.close();
    return { flood: result, tally: t, drops, maxLagMs, ticks };
  },
};

if (require.main === module) {
  const name = process.argv[2];
  const scenario = scenarios[name];
  if (!scenario) {
    process.stderr.write(`unknown scenario ${name}\n`);
    process.exit(2);
  }
  void (async () => {
    const { readlinkSync } = await import('node:fs');
    const out: ScenarioResult = { ...(await scenario()), netns: readlinkSync('/proc/self/ns/net') };
    process.stdout.write(JSON.stringify(out) + '\n');
  })();
}

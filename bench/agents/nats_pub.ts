// The bare NATS publisher (issue 18's ceiling): what the daemon's fleet
// publisher puts on NATS, without the daemon. Each message is the bench
// netlink message (16-byte nlmsghdr, type 0x10, nlmsg_seq = index, then the
// 36-byte payload with the send time) with the four one-letter headers the
// daemon sets on a NATS message of one netlink message (daemon/fleet/
// subjects.ts HEADERS: n g p c). One NATS message per netlink message: the
// daemon sends a run of what waits as one (k), and the ceiling is NATS's own
// per-message rate, not a batching rate.
// Unconfirmed messages are bounded as the daemon bounds them (a flush every
// FLUSH_EVERY messages, at most one outstanding).
//
// argv[2]: {"url":…,"subject":…,"group":N,"count":N,"seconds":S,"rate":R (0 = flood),
//           "warmup":[{"count":N,"rate":R}, …] (probes first, phase by phase)}
// stdout: {"ready":true}, then {"sent":N,"seconds":S,"rate":R}

import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { NLB_MSG_TYPE, NLB_PROBE_MAGIC, payloadText } from '../lib/nlmsg';
import { HEADERS } from '../../daemon/fleet/subjects';

interface Config {
  url: string;
  subject: string;
  group: number;
  count: number;
  seconds: number;
  rate?: number;
  warmup?: { count: number; rate: number }[];
}

const cfg = JSON.parse(process.argv[2]) as Config;
const FLUSH_EVERY = 4096;
// A cursor as the daemon writes it ("<epoch>-<seq>").
const EPOCH = Date.now().toString(16);

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let number = 0;

function message(index: number, probe: boolean): Uint8Array {
  let text = payloadText(index, process.hrtime.bigint());
  if (probe) text = NLB_PROBE_MAGIC + text.slice(4);
  const b = Buffer.alloc(16 + text.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt16LE(NLB_MSG_TYPE, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(index >>> 0, 8);
  b.writeUInt32LE(0, 12);
  b.write(text, 16, 'latin1');
  return b;
}

function publish(nc: NatsConnection, index: number, probe: boolean): void {
  const n = ++number;
  const h = headers();
  h.set(HEADERS.number, String(n));
  h.set(HEADERS.group, String(cfg.group));
  h.set(HEADERS.port, '0');
  h.set(HEADERS.cursor, `${EPOCH}-${n}`);
  nc.publish(cfg.subject, message(index, probe), { headers: h });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** count messages, paced at rate (0: as fast as the client takes them), bounded by seconds. */
async function send(nc: NatsConnection, count: number, seconds: number, rate: number, probe: boolean): Promise<number> {
  const t0 = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
  let sent = 0;
  let pending: Promise<void> | null = null;
  while (sent < count && elapsed() < seconds) {
    if (rate > 0) {
      const due = Math.min(count, Math.floor(elapsed() * rate) + 1);
      while (sent < due) publish(nc, sent++, probe);
      const next = (sent / rate - elapsed()) * 1000;
      if (next > 0) await sleep(Math.max(0, next - 0.05));
      continue;
    }
    const end = Math.min(count, sent + FLUSH_EVERY);
    while (sent < end) publish(nc, sent++, probe);
    if (pending) await pending;
    pending = nc.flush();
  }
  if (pending) await pending;
  await nc.flush();
  return sent;
}

async function main(): Promise<void> {
  const nc = await connect({ servers: cfg.url, name: 'bench-nats-pub' });
  out({ ready: true });
  for (const phase of cfg.warmup ?? []) {
    if (phase.count === 0) continue;
    await send(nc, phase.count, 30, phase.rate, true);
    await sleep(300);
  }
  const t0 = process.hrtime.bigint();
  const sent = await send(nc, cfg.count, cfg.seconds, cfg.rate ?? 0, false);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  out({ sent, seconds, rate: sent / seconds });
  await nc.close();
}

main().catch((err) => {
  process.stderr.write(`nats_pub: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

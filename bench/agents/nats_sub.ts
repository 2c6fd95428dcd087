// One NATS subscriber (issue 18): counts the bench messages that reach a
// subject, by payload (netlink messages: each a 16-byte nlmsghdr, then the
// bench payload; k of them back to back when the `k` header says so) and by
// the `n` header (the publisher's sequence, one per
// message meant for NATS, so a gap is a message lost on the way: dropped by
// the daemon's buffer bound or by the server). With `latency`, the send time
// read from the payload gives send→receive on the clock of process.hrtime.
//
// argv[2]: {"url":"nats://…","subject":"…","expect":N,"maxSeconds":S,"idleMs":MS,"latency":bool}
// stdout: {"ready":…} once the server has the subscription, {"probed":true}
// at the first probe, {"result":{…}} at the end; stdin {"cmd":"report"} ends it early.

import * as readline from 'node:readline';
import { connect } from '@nats-io/transport-node';
import { parsePayload } from '../lib/nlmsg';
import { summarizeNs } from '../lib/stats';

interface Config {
  url: string;
  subject: string;
  expect: number;
  maxSeconds: number;
  idleMs: number;
  latency?: boolean;
}

const cfg = JSON.parse(process.argv[2]) as Config;

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let received = 0;
let probes = 0;
let other = 0;
let firstNs = 0n;
let lastNs = 0n;
let minN = Infinity;
let maxN = -Infinity;
let withN = 0;
let repeatsOrDisorder = 0;
let prevN = 0;
const latNs: number[] = [];
let done = false;
/** Header names of the first bench message: that the daemon and the bare publisher send the same set. */
let headerNames: string[] | null = null;

async function main(): Promise<void> {
  const nc = await connect({ servers: cfg.url, name: 'bench-nats-sub' });
  const sub = nc.subscribe(cfg.subject);
  // The server has the subscription once a flush after it comes back: a publisher may start.
  await nc.flush();
  out({ ready: true, subject: cfg.subject });
  const cpu0 = process.cpuUsage();
  const startNs = process.hrtime.bigint();

  const finish = async (why: string): Promise<void> => {
    if (done) return;
    done = true;
    clearInterval(timer);
    const seconds = lastNs > firstNs ? Number(lastNs - firstNs) / 1e9 : 0;
    const cpu = process.cpuUsage(cpu0);
    const spanN = withN > 0 ? maxN - minN + 1 : 0;
    out({
      result: {
        received,
        probes,
        other,
        seconds,
        rate: seconds > 0 ? received / seconds : 0,
        // Sequence numbers between the first and the last seen that never came.
        nFirst: withN > 0 ? minN : null,
        nLast: withN > 0 ? maxN : null,
        lostByN: spanN - (withN - repeatsOrDisorder),
        repeatsOrDisorder,
        ended: why,
        headers: headerNames,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        latency: cfg.latency ? summarizeNs(latNs) : undefined,
      },
    });
    await nc.close().catch(() => undefined);
    process.exit(0);
  };

  const timer = setInterval(() => {
    const now = process.hrtime.bigint();
    if (received >= cfg.expect) void finish('count');
    else if (firstNs !== 0n && Number(now - lastNs) / 1e6 > cfg.idleMs) void finish('idle');
    else if (Number(now - startNs) / 1e9 > cfg.maxSeconds) void finish('time');
  }, 20);
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.includes('"report"')) void finish('asked');
  });

  for await (const m of sub) {
    const now = process.hrtime.bigint();
    // A NATS message of the daemon holds k netlink messages (k absent: one), numbered n…n+k-1.
    const k = Number(m.headers?.get('k') || 1);
    const nText = m.headers?.get('n');
    if (nText) {
      const n = Number(nText);
      withN += k;
      if (n <= prevN) repeatsOrDisorder += k;
      prevN = Math.max(prevN, n + k - 1);
      if (n < minN) minN = n;
      if (n + k - 1 > maxN) maxN = n + k - 1;
    }
    if (firstNs === 0n) headerNames = m.headers ? [...m.headers.keys()].filter((h) => h !== 'k').sort() : [];
    const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.length);
    let at = 0;
    for (let i = 0; i < k; i++) {
      const len = data.length - at >= 16 ? data.readUInt32LE(at) : 0;
      const p = len >= 16 && at + len <= data.length ? parsePayload(data.subarray(at + 16, at + len)) : null;
      at += (len + 3) & ~3;
      if (!p) {
        other++;
        if (len < 16) break;
        continue;
      }
      if (p.probe) {
        if (probes++ === 0) out({ probed: true });
        continue;
      }
      if (firstNs === 0n) firstNs = now;
      lastNs = now;
      received++;
      if (cfg.latency) latNs.push(Number(now - p.sendNs));
    }
  }
}

main().catch((err) => {
  process.stderr.write(`nats_sub: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

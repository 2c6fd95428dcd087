// What one publish of a 64 KB run costs this process (issue 18's on ÷ off),
// apart from the daemon: `node dist/bench/publish_cost.js [publishes] [rounds]`.
//
// Three ways of putting the same bytes on a connection to one nats-server,
// one per event-loop turn, alternating round by round:
//   nats   - @nats-io/transport-node's publish with two headers, as the
//            daemon's publisher calls it;
//   fresh  - a raw socket write of a new Uint8Array holding PUB, the bytes
//            and CRLF: what the client does at each flush (its outbound
//            buffer packs what was published into a new array, zero-filled);
//   reused - the same write from one of 16 arrays allocated once.
// Prints CPU (user + system) and page faults per publish for each. Where
// `fresh` costs as much as `nats` and `reused` far less, the price is the
// new array per flush, not the protocol or the kernel's write.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { connect, headers } from '@nats-io/transport-node';
import { natsServerPath, startNatsServer } from './lib/nats_server';

const RUN_BYTES = 64 * 1024;
const SUBJECT = 'nlbridge.bench.g.10';

/** Minor page faults of this process so far (field 10 of /proc/self/stat). */
function minorFaults(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function rawConnection(port: number): Promise<net.Socket> {
  const s = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
  // Verbose off: the server answers nothing per PUB (its INFO and PINGs are read and dropped).
  s.on('data', () => undefined);
  s.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  return s;
}

async function main(): Promise<void> {
  const publishes = Number(process.argv[2] ?? 2000);
  const rounds = Number(process.argv[3] ?? 3);
  if (!Number.isInteger(publishes) || publishes < 1 || !Number.isInteger(rounds) || rounds < 1) {
    console.error('usage: node dist/bench/publish_cost.js [publishes ≥ 1] [rounds ≥ 1]');
    process.exit(2);
  }
  const program = natsServerPath();
  if (program === null) {
    console.error('nats-server not found (Debian: apt-get install nats-server)');
    process.exit(1);
  }
  const server = await startNatsServer(program);
  const nc = await connect({ servers: server.url });
  const raw = await rawConnection(Number(new URL(server.url).port));
  const data = Buffer.alloc(RUN_BYTES, 7);
  const proto = Buffer.from(`PUB ${SUBJECT} ${data.length}\r\n`);
  const frameBytes = proto.length + data.length + 2;
  const ring = Array.from({ length: 16 }, () => new Uint8Array(frameBytes));
  const frameInto = (out: Uint8Array): Uint8Array => {
    out.set(proto, 0);
    out.set(data, proto.length);
    out[frameBytes - 2] = 13;
    out[frameBytes - 1] = 10;
    return out;
  };
  const ways: Record<string, (i: number) => unknown> = {
    nats: (i) => {
      const h = headers();
      h.set('n', String(i));
      h.set('g', '10');
      nc.publish(SUBJECT, data, { headers: h });
    },
    fresh: () => raw.write(frameInto(new Uint8Array(frameBytes))),
    // An array goes back into use only once the socket has handed everything to the kernel (below).
    reused: (i) => raw.write(frameInto(ring[i % ring.length])),
  };
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const [name, publish] of Object.entries(ways)) {
        await nc.flush();
        const cpu0 = process.cpuUsage();
        const faults0 = minorFaults();
        let waits = 0;
        for (let i = 0; i < publishes; i++) {
          publish(i);
          await nextTurn();
          // A raw write the kernel did not take at once waits in the socket: wait for it, so that
          // every way pays for its writes within the loop (and no array is reused while queued).
          if (raw.writableLength > 0) {
            waits++;
            await new Promise((resolve) => raw.once('drain', resolve));
          }
        }
        const cpu = process.cpuUsage(cpu0);
        const faults = minorFaults() - faults0;
        console.log(
          `round ${r} ${name.padEnd(6)} cpu ${((cpu.user + cpu.system) / publishes).toFixed(1)} µs/publish` +
            ` (system ${(cpu.system / publishes).toFixed(1)}), page faults ${(faults / publishes).toFixed(1)}/publish` +
            (name === 'nats' ? '' : `, ${waits} waits for the socket`),
        );
      }
    }
  } finally {
    raw.destroy();
    await nc.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

// What one publish of a 64 KB run costs a process that does little else
// (measured for issue 18, bench/README.md: the daemon's cost is not this):
// `node dist/bench/publish_cost.js [publishes] [rounds]`.
//
// Three ways of putting the same bytes on a connection to one nats-server,
// one per event-loop turn, alternating round by round:
//   nats   - @nats-io/transport-node's publish with two short headers (the
//            daemon's publisher sends three to five);
//   fresh  - a raw socket write of a new Uint8Array holding PUB, the bytes
//            and CRLF: what the client does at each flush (its outbound
//            buffer packs what was published into a new array, zero-filled);
//   reused - the same write from one of 16 arrays allocated once.
// A raw write waits for the socket to drain before the next turn, and each
// way ends with a PING the server must answer (it read every publish and
// refused none). Prints CPU (user + system) and page faults per publish for
// each: `fresh` over `reused` is the price of the new array, `nats` over
// `fresh` the client's own work.

import * as net from 'node:net';
import { connect, headers } from '@nats-io/transport-node';
import { natsServerPath, startNatsServer } from './lib/nats_server';
import { minorFaults } from './lib/proc';

const RUN_BYTES = 64 * 1024;
const SUBJECT = 'nlbridge.bench.g.10';
const PONG_WAIT_MS = 5000;

/** Minor page faults of this process so far. */
const ownFaults = (): number => minorFaults('self') ?? NaN;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A bare connection that speaks just enough NATS to publish: CONNECT, PUB, and PING to see the server took it all. */
interface RawConnection {
  socket: net.Socket;
  /** Resolves at the server's PONG: it parsed every PUB before the PING (a bad one is -ERR and a close). */
  ping(): Promise<void>;
  /** Resolves once the socket has handed everything written to the kernel; rejects if the connection goes first. */
  drained(): Promise<void>;
}

async function rawConnection(port: number): Promise<RawConnection> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.once('error', reject);
  });
  const waiting: { resolve(): void; reject(err: Error): void }[] = [];
  let text = '';
  const fail = (err: Error): void => {
    for (const w of waiting.splice(0)) w.reject(err);
  };
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
    let eol: number;
    while ((eol = text.indexOf('\r\n')) >= 0) {
      const line = text.slice(0, eol);
      text = text.slice(eol + 2);
      if (line === 'PONG') waiting.shift()?.resolve();
      else if (line === 'PING') socket.write('PONG\r\n');
      else if (line.startsWith('-ERR')) fail(new Error(`nats-server refused the raw connection: ${line}`));
      // INFO and +OK need nothing.
    }
  });
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('nats-server closed the raw connection')));
  // Verbose off: the server answers nothing per PUB.
  socket.write('CONNECT {"verbose":false,"pedantic":false}\r\n');
  const ping = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      // A PUB whose length or CRLF is off can leave the server parsing the PING as payload: no answer at all.
      const timer = setTimeout(() => reject(new Error(`no PONG from nats-server within ${PONG_WAIT_MS} ms`)), PONG_WAIT_MS);
      const settle = (err?: Error): void => {
        clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      waiting.push({ resolve: () => settle(), reject: settle });
      socket.write('PING\r\n');
    });
  await ping();
  const drained = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (socket.writableLength === 0) {
        resolve();
        return;
      }
      const done = (err?: Error): void => {
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err);
        else resolve();
      };
      const onDrain = (): void => done();
      const onClose = (): void => done(new Error('nats-server closed the raw connection'));
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  return { socket, ping, drained };
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
  const rawLink = await rawConnection(Number(new URL(server.url).port));
  const raw = rawLink.socket;
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
        const faults0 = ownFaults();
        let waits = 0;
        for (let i = 0; i < publishes; i++) {
          publish(i);
          await nextTurn();
          // A raw write the kernel did not take at once waits in the socket: wait for it, so that
          // every way pays for its writes within the loop (and no array is reused while queued).
          if (raw.writableLength > 0) {
            waits++;
            await rawLink.drained();
          }
        }
        const cpu = process.cpuUsage(cpu0);
        const faults = ownFaults() - faults0;
        // Outside the measurement: the server has read every publish of this way, and refused none.
        await (name === 'nats' ? nc.flush() : rawLink.ping());
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

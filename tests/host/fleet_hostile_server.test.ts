// Issue 18, "the NATS side can never hurt the local bridge", against a server
// that misbehaves (an outside audit's fake servers). A server that floods
// PINGs and reads nothing: the client answers each with a PONG that waits to
// be written, with no bound, and the daemon grew to 4 GB and aborted (heap
// out of memory) 110 s after connecting. Now the daemon drops a connection
// whose write queue passes WRITE_QUEUE_MAX (daemon/fleet/write_queue.ts),
// and dials again. The check reads the client's socket from its internals,
// so a test also makes sure it finds it on a real nats-server connection.
// A server that sends one line the client cannot parse: the client's reader
// stopped, printed the server's bytes raw among the JSON log lines (a forged
// log line), and the connection looked up for 6 minutes (PINGs 2 minutes
// apart). Now the library's print is a JSON field, and the connection is
// found stale within 40 s (PINGs 10 s apart, 3 unanswered).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { connect as natsConnect } from '@nats-io/transport-node';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { NatsServer } from './support/nats_server';
import { canBoundWriteQueue } from '../../daemon/fleet/write_queue';

const INFO = `INFO ${JSON.stringify({ server_id: 'FAKE', server_name: 'fake', version: '2.9.0', proto: 1, headers: true, max_payload: 1048576 })}\r\n`;
const PINGS = Buffer.from('PING\r\n'.repeat(10_000));

/**
 * A fake NATS server: sends INFO, answers the client's CONNECT + PING with a
 * PONG, then does what `then` says with the socket.
 */
class FakeServer {
  private readonly server = net.createServer((s) => this.serve(s));
  private readonly sockets = new Set<net.Socket>();
  connections = 0;

  constructor(private readonly then: (s: net.Socket) => void) {}

  async start(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  private serve(s: net.Socket): void {
    this.connections++;
    this.sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
    s.write(INFO);
    s.once('data', () => {
      s.write('PONG\r\n');
      this.then(s);
    });
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** After the handshake: PINGs as fast as the daemon reads them, and nothing more is read. */
const pingFlooder = (): FakeServer =>
  new FakeServer((s) => {
    s.pause();
    const flood = (): void => {
      while (!s.destroyed && s.write(PINGS));
      if (!s.destroyed) s.once('drain', flood);
    };
    flood();
  });

/** After the handshake: one line no client can parse, then nothing (and no PING answered). */
const garbageSender = (): FakeServer => new FakeServer((s) => setTimeout(() => s.write(`X\n${FORGED}\nY\r\n`), 500));

const FORGED = JSON.stringify({ level: 60, time: 1, pid: 1, name: 'nlbridge', msg: 'FORGED line from the NATS server' });

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

describe('fleet: a NATS server that floods PINGs and reads nothing', () => {
  const flooder = pingFlooder();
  let daemon: DaemonProc;

  before(async () => {
    const port = await flooder.start();
    daemon = await spawnDaemon(['--nats', `nats://127.0.0.1:${port}`, '--host-id', 'A', '--nats-publish', '2']);
  });

  after(async () => {
    await daemon?.stop();
    await flooder.stop();
  });

  test('the daemon drops the connection at the write bound, again at each dial, and its memory stays bounded', async (t) => {
    const said = (): number => daemon.logs.filter((l) => /reads nothing of what this daemon writes/.test(String(l.msg))).length;
    let peak = 0;
    await waitFor(
      'two connections dropped',
      () => {
        peak = Math.max(peak, rssMiB(daemon.pid));
        return said();
      },
      { timeoutMs: 40000, until: (n) => n >= 2 },
    );
    assert.ok(daemon.alive(), 'alive');
    assert.ok(flooder.connections >= 2, 'dialled again');
    // Unbounded, the audit saw 848 MB, then 2.2 GB, within the first minute.
    t.diagnostic(`peak RSS ${peak.toFixed(0)} MiB over ${flooder.connections} connections`);
    assert.ok(peak < 400, `peak RSS ${peak.toFixed(0)} MiB`);
    const res = await fetch(`${daemon.base}/status`, { headers: daemon.token ? { authorization: `Bearer ${daemon.token}` } : {} });
    assert.equal(res.status, 200, 'the local bridge answers');
  });
});

describe('fleet: a NATS server that sends one unparsable line, then nothing', () => {
  const server = garbageSender();
  let daemon: DaemonProc;

  before(async () => {
    const port = await server.start();
    daemon = await spawnDaemon(['--nats', `nats://127.0.0.1:${port}`, '--host-id', 'A', '--nats-publish', '2']);
  });

  after(async () => {
    await daemon?.stop();
    await server.stop();
  });

  test('the server bytes the client prints stay inside one JSON field, and the connection is found stale and dialled again', async () => {
    await waitFor('the client printed', () => daemon.logs.find((l) => typeof l.console === 'string'), { timeoutMs: 10000 });
    assert.ok(!daemon.logs.some((l) => l.msg === 'FORGED line from the NATS server'), 'no line of the server making in the log');
    await waitFor('found stale', () => daemon.logs.some((l) => /NATS connection stale/.test(String(l.msg))), { timeoutMs: 60000 });
    await waitFor('dialled again', () => server.connections, { timeoutMs: 15000, until: (n) => n >= 2 });
    assert.ok(daemon.alive());
  });
});

describe('fleet: the write bound finds the client socket', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  before(() => server.start());
  after(() => server.stop());

  test('on a real nats-server connection (an upgrade of the client that moved it would fail here)', async () => {
    const nc = await natsConnect({ servers: server.url });
    try {
      assert.equal(canBoundWriteQueue(nc), true);
    } finally {
      await nc.close();
    }
  });
});

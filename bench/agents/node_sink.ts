// A Node process receiving the bench flood at the socket level, either with
// nlbridge's addon or with npm `netlink` 0.3.0, so the two face the same
// sender in the same conditions. Progress goes out every 20 ms while data flows: npm
// `netlink` may abort the process under a flood, and the runner then keeps
// what was counted up to the abort.
//
// argv[2]: {"impl":"addon"|"npm-netlink","group":N,"expect":N,"maxSeconds":S,"idleMs":MS,"rcvbuf":BYTES}

import * as path from 'node:path';
import { countBenchMessages, parsePayload, procNetlinkDrops } from '../lib/nlmsg';
import { summarizeNs } from '../lib/stats';
import type { Datagram, NetlinkSocketOptions, OverrunEvent } from '../../addon/types';

interface Config {
  impl: 'addon' | 'npm-netlink';
  protocol?: number;
  group: number;
  expect: number;
  maxSeconds: number;
  idleMs: number;
  rcvbuf: number;
  /** Record each message's send→receive latency (paced runs). */
  latency?: boolean;
}

const cfg = JSON.parse(process.argv[2]) as Config;
const protocol = cfg.protocol ?? 2;

let received = 0;
let overruns = 0;
let lost = 0;
let errors = 0;
let firstNs = 0n;
let lastNs = 0n;
let portId = 0;
let close: () => void = () => undefined;

function out(obj: object): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const latNs: number[] = [];

/** Bench messages in one datagram; with cfg.latency, their latencies too. */
function take(buf: Buffer): number {
  if (!cfg.latency) return countBenchMessages(buf);
  const now = process.hrtime.bigint();
  const p = buf.length >= 16 ? parsePayload(buf.subarray(16)) : null;
  if (!p || p.probe) return 0;
  latNs.push(Number(now - p.sendNs));
  return 1;
}

function counted(n: number): void {
  if (n === 0) return;
  const now = process.hrtime.bigint();
  if (firstNs === 0n) firstNs = now;
  lastNs = now;
  received += n;
}

let cpuAtReady = process.cpuUsage();

function snapshot(withDrops: boolean) {
  const seconds = lastNs > firstNs ? Number(lastNs - firstNs) / 1e9 : 0;
  const cpu = process.cpuUsage(cpuAtReady);
  const drops = withDrops ? procNetlinkDrops(portId) : null;
  return {
    impl: cfg.impl,
    received,
    seconds,
    rate: seconds > 0 ? received / seconds : 0,
    overruns,
    lostReported: lost,
    drops,
    errors,
    // CPU the receiving process spent per message (user + system): its cost
    // independent of how fast the sender went.
    cpuNsPerMsg: received > 0 ? ((cpu.user + cpu.system) * 1000) / received : null,
    latency: cfg.latency && withDrops ? summarizeNs(latNs) : undefined,
  };
}

function openAddon(): void {
  // The compiled addon sits in dist/addon/; loaded at run time so the bench
  // still builds while the addon is being written.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.resolve(__dirname, '../../addon/socket.js')) as {
    NetlinkSocket: {
      open(o: NetlinkSocketOptions): {
        portId: number;
        join(g: number): void;
        on(ev: 'datagrams', f: (b: Datagram[]) => void): void;
        on(ev: 'overrun', f: (e: OverrunEvent) => void): void;
        on(ev: 'error', f: (e: Error) => void): void;
        close(): void;
      };
    };
  };
  const sock = mod.NetlinkSocket.open({ protocol, receiveBufferBytes: cfg.rcvbuf });
  sock.on('error', () => {
    errors++;
  });
  sock.on('overrun', (ev) => {
    overruns++;
    lost += ev.lost;
  });
  sock.on('datagrams', (batch) => {
    let n = 0;
    for (const d of batch) n += take(d.data);
    counted(n);
  });
  sock.join(cfg.group);
  portId = sock.portId;
  close = () => sock.close();
}

function openNpmNetlink(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RawNetlinkSocket } = require('netlink') as typeof import('netlink');
  const sock = new RawNetlinkSocket(protocol, { recvBufferSize: cfg.rcvbuf, sendBufferSize: 1 << 20 });
  sock.on('message', (msg: Buffer) => counted(take(msg)));
  sock.on('error', (err: { code?: string }) => {
    if (err.code === 'ENOBUFS') overruns++;
    else errors++;
  });
  sock.addMembership(cfg.group);
  portId = sock.address().port;
  close = () => sock.close();
}

if (cfg.impl === 'addon') openAddon();
else openNpmNetlink();

out({ ready: true, impl: cfg.impl, portId });
cpuAtReady = process.cpuUsage();
const startNs = process.hrtime.bigint();
let lastReported = -1;
const timer = setInterval(() => {
  const now = process.hrtime.bigint();
  const done =
    received >= cfg.expect || (firstNs !== 0n && Number(now - lastNs) / 1e6 > cfg.idleMs) || Number(now - startNs) / 1e9 > cfg.maxSeconds;
  if (done) {
    clearInterval(timer);
    out({ result: snapshot(true) });
    close();
    return;
  }
  if (received !== lastReported) {
    lastReported = received;
    out({ progress: snapshot(false) });
  }
}, 20);

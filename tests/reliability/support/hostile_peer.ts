// A hostile NETLINK_USERSOCK peer for reliability case 2, run as its own
// process: for `seconds` it sends random and malformed datagrams to the
// daemon's groups and port ids at about `rate` datagrams/s, then prints one
// JSON line of what it sent. Each datagram is classified with the daemon's own
// rule: malformed when the codec faults on the part the daemon can read
// (its read buffer is `readBytes`) or when the datagram is longer than that.
//
// argv[2]: {"groups":[25,26],"ports":[123,456],"seconds":60,"rate":20000,"seed":1,"readBytes":65536}

import { NetlinkSocket, type NetlinkError } from '../../../addon/socket';
import { NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, decodeDatagram, encodeMessage, encodeMessages } from '../../../addon/codec';

interface Config {
  groups: number[];
  ports: number[];
  seconds: number;
  rate: number;
  seed: number;
  readBytes: number;
}

export const KINDS = [
  'short-header',
  'len-zero',
  'len-below-header',
  'len-too-large',
  'misaligned',
  'random-type-flags',
  'control-types',
  'huge',
  'bad-tail',
  'random-bytes',
] as const;
export type Kind = (typeof KINDS)[number];

/** What one destination kind received, as the sender saw it. */
export interface Tally {
  /** Datagrams the kernel took. */
  sent: number;
  /** Of those, malformed for the daemon (codec fault in the first readBytes, or longer than readBytes). */
  malformed: number;
  /** Of those, longer than readBytes. */
  huge: number;
  /** Well-formed messages inside the datagrams taken (delivered as messages by the daemon). */
  messages: number;
  bytes: number;
}

export interface HostileResult {
  seconds: number;
  /** Datagrams built. */
  built: number;
  byKind: Record<string, number>;
  groups: Tally;
  ports: Tally;
  /** sendto failures by code (EAGAIN: a daemon port's queue was full). */
  errors: Record<string, number>;
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeGenerator(seed: number): () => { kind: Kind; data: Buffer } {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const bytes = (n: number): Buffer => {
    const b = Buffer.allocUnsafe((n + 3) & ~3);
    for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((rnd() * 4294967296) >>> 0, i);
    return b.subarray(0, n);
  };
  const header = (len: number, type: number, flags: number, extra: number): Buffer => {
    const b = Buffer.alloc(16 + extra);
    b.writeUInt32LE(len >>> 0, 0);
    b.writeUInt16LE(type, 4);
    b.writeUInt16LE(flags, 6);
    b.writeUInt32LE(int(0, 0xffffffff), 8);
    b.writeUInt32LE(int(0, 0xffffffff), 12);
    if (extra > 0) bytes(extra).copy(b, 16);
    return b;
  };
  const good = (): { type: number; flags: number; seq: number; pid: number; payload: Buffer } => ({
    type: int(0, 0xffff),
    flags: int(0, 0xffff),
    seq: int(0, 0xffffffff),
    pid: int(0, 0xffffffff),
    payload: bytes(int(0, 256)),
  });
  return () => {
    // Huge datagrams are rare (each is up to 200 kB); the rest share the draw.
    const kind: Kind = rnd() < 0.01 ? 'huge' : KINDS.filter((k) => k !== 'huge')[int(0, KINDS.length - 2)];
    switch (kind) {
      case 'short-header':
        return { kind, data: bytes(int(1, 15)) };
      case 'len-zero':
        return { kind, data: header(0, int(0, 0xffff), int(0, 0xffff), int(0, 64)) };
      case 'len-below-header':
        return { kind, data: header(int(1, 15), int(0, 0xffff), int(0, 0xffff), int(0, 64)) };
      case 'len-too-large': {
        const extra = int(0, 256);
        return { kind, data: header(rnd() < 0.3 ? 0xffffffff : int(17 + extra, 1 << 20), int(0, 0xffff), int(0, 0xffff), extra) };
      }
      case 'misaligned': {
        // Messages packed back to back with odd lengths and no padding: the
        // reader's aligned offset lands inside the next header.
        const parts: Buffer[] = [];
        for (let i = int(2, 6); i > 0; i--) {
          const extra = int(1, 40) | 1;
          const b = header(16 + extra, int(0x10, 0xffff), int(0, 0xffff), extra);
          parts.push(b);
        }
        return { kind, data: Buffer.concat(parts) };
      }
      case 'random-type-flags':
        return { kind, data: encodeMessages(Array.from({ length: int(1, 4) }, good)) };
      case 'control-types': {
        const type = [NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN][int(0, 3)];
        // NLMSG_ERROR with too short a payload, a forged ack, or random bytes.
        const payload = type === NLMSG_ERROR && rnd() < 0.5 ? bytes(int(0, 3)) : bytes(int(0, 40));
        return { kind, data: encodeMessage({ type, flags: int(0, 0xffff), seq: int(0, 0xffffffff), pid: int(0, 0xffffffff), payload }) };
      }
      case 'huge': {
        const total = int(70_000, 200_000) & ~3;
        const shape = int(0, 2);
        if (shape === 0) return { kind, data: header(total, 0x10, 0, total - 16) }; // one message, cut by the reader
        if (shape === 1) return { kind, data: bytes(total) };
        const ms = [];
        let n = 0;
        while (n < total) {
          const m = good();
          ms.push(m);
          n += 16 + ((m.payload.length + 3) & ~3);
        }
        return { kind, data: encodeMessages(ms) }; // many small messages, the tail past the read buffer lost
      }
      case 'bad-tail': {
        const head = encodeMessages(Array.from({ length: int(1, 20) }, good));
        const tail = rnd() < 0.5 ? bytes(int(1, 15)) : header(rnd() < 0.5 ? 0 : int(1 << 16, 0xffffffff), int(0, 0xffff), 0, int(0, 32));
        return { kind, data: Buffer.concat([head, tail]) };
      }
      case 'random-bytes':
      default:
        return { kind: 'random-bytes', data: bytes(int(1, 2000)) };
    }
  };
}

const tally = (): Tally => ({ sent: 0, malformed: 0, huge: 0, messages: 0, bytes: 0 });

function main(): void {
  const cfg = JSON.parse(process.argv[2]) as Config;
  const sock = NetlinkSocket.open({ protocol: 2 });
  const next = makeGenerator(cfg.seed);
  const result: HostileResult = { seconds: 0, built: 0, byKind: {}, groups: tally(), ports: tally(), errors: {} };
  const dests: { groups?: number; portId?: number }[] = [
    ...cfg.groups.map((g) => ({ groups: (1 << (g - 1)) >>> 0, portId: 0 })),
    ...cfg.ports.map((p) => ({ portId: p })),
  ];
  const t0 = performance.now();
  const end = t0 + cfg.seconds * 1000;
  const tick = (): void => {
    const now = performance.now();
    // Paced in 5 ms slices; a late slice catches up, at most 50 ms worth per slice.
    let budget = Math.min(Math.floor(((now - t0) / 1000) * cfg.rate) - result.built, cfg.rate / 20);
    for (; budget > 0; budget--) {
      const { kind, data } = next();
      result.built++;
      result.byKind[kind] = (result.byKind[kind] ?? 0) + 1;
      const dest = dests[result.built % dests.length];
      const readable = data.subarray(0, cfg.readBytes);
      const dec = decodeDatagram(readable);
      const huge = data.length > cfg.readBytes;
      try {
        sock.send(data, dest);
      } catch (err) {
        const code = (err as NetlinkError).code ?? 'EIO';
        result.errors[code] = (result.errors[code] ?? 0) + 1;
        continue;
      }
      const t = dest.groups !== undefined ? result.groups : result.ports;
      t.sent++;
      t.bytes += data.length;
      t.messages += dec.messages.length;
      if (dec.error || huge) t.malformed++;
      if (huge) t.huge++;
    }
    if (now < end) setTimeout(tick, 5);
    else {
      result.seconds = (performance.now() - t0) / 1000;
      sock.close();
      process.stdout.write(JSON.stringify({ result }) + '\n');
    }
  };
  tick();
}

if (require.main === module) main();

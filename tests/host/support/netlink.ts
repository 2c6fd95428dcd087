// Shared helpers of the addon host tests (real sockets on NETLINK_USERSOCK).

import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Datagram } from '../../../addon/types';
import { NETLINK_USERSOCK, NetlinkSocket, type NetlinkSocketOptions } from '../../../addon/index';

export { NETLINK_USERSOCK };

/** Repo root, from dist/tests/host/support/. */
export const ROOT = path.resolve(__dirname, '../../../..');

/** The compiled addon index, for child processes and workers. */
export const ADDON_INDEX = path.join(ROOT, 'dist/addon/index.js');

/**
 * Groups these tests broadcast on. USERSOCK groups are global to the host;
 * the high ones are less likely to meet another program's traffic, and every
 * message carries a per-run tag in nlmsg_pid so stray traffic is recognisable.
 */
export const G = { a: 21, b: 22, c: 23, d: 24, flood: 29 } as const;
export const bit = (group: number): number => (1 << (group - 1)) >>> 0;

/** A per-run tag written into nlmsg_pid by our senders. */
export const RUN_TAG = (process.pid ^ 0x5a5a0000) >>> 0;

export function open(opts: Partial<NetlinkSocketOptions> = {}): NetlinkSocket {
  return NetlinkSocket.open({ protocol: NETLINK_USERSOCK, ...opts });
}

/** nlmsghdr + payload, with the run tag in nlmsg_pid. */
export function message(seq: number, payload: Buffer = Buffer.alloc(0), type = 0x10): Buffer {
  const len = 16 + payload.length;
  const buf = Buffer.alloc((len + 3) & ~3);
  buf.writeUInt32LE(len, 0);
  buf.writeUInt16LE(type, 4);
  buf.writeUInt16LE(0, 6);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(RUN_TAG, 12);
  payload.copy(buf, 16);
  return buf;
}

export function isOurs(d: Datagram): boolean {
  return d.data.length >= 16 && d.data.readUInt32LE(12) === RUN_TAG;
}

/** Collects datagrams until `until` says enough or the timeout passes. */
export function collect(sock: NetlinkSocket, until: (all: Datagram[]) => boolean, timeoutMs = 2000): Promise<Datagram[]> {
  return new Promise((resolve) => {
    const all: Datagram[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      sock.off('datagrams', onBatch);
      resolve(all);
    };
    const onBatch = (batch: Datagram[]): void => {
      for (const d of batch) all.push(d);
      if (until(all)) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.on('datagrams', onBatch);
  });
}

/** Resolves after `ms` milliseconds with no datagram arriving on `sock`. */
export function quiet(sock: NetlinkSocket, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let timer = setTimeout(done, ms);
    function onBatch(): void {
      clearTimeout(timer);
      timer = setTimeout(done, ms);
    }
    function done(): void {
      sock.off('datagrams', onBatch);
      resolve();
    }
    sock.on('datagrams', onBatch);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let floodPath: string | null = null;

/** Builds tests/host/support/flood.c into .cache/ once. */
export function buildFlood(): string {
  if (floodPath !== null) return floodPath;
  const out = path.join(ROOT, '.cache/host-support/flood');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, path.join(ROOT, 'tests/host/support/flood.c')]);
  floodPath = out;
  return out;
}

export interface FloodResult {
  sent: number;
  failed: number;
  lastErrno: number;
  seconds: number;
}

/** Runs the C sender without blocking this event loop. */
export function flood(count: number, portId: number, groups: number, payloadBytes = 0): Promise<FloodResult> {
  const bin = buildFlood();
  return new Promise((resolve, reject) => {
    execFile(bin, [String(count), String(portId), String(groups), String(payloadBytes), String(RUN_TAG)], (err, stdout, stderr) => {
      if (err && !stdout) {
        reject(new Error(`flood failed: ${err.message} ${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as FloodResult);
    });
  });
}

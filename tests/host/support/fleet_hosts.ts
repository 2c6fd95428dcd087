// Helpers of the fleet host tests: the spawned daemon of host A with
// JetStream on, the fleet part of a daemon's /status, its /metrics, and reading the fleet's
// NATS messages and cursors. Each test file had its own copy of the first
// two, and copies drift apart; one here keeps the hosts and the reading alike.

import { createHash } from 'node:crypto';
import type { FleetStatus } from '../../../daemon/fleet/index';
import { spawnDaemon, type DaemonProc } from '../../reliability/support/daemon_proc';
import { assertMatchesSpec } from './daemon_spec';
import { waitFor } from '../../support/wait';

/** Host A's daemon on `natsUrl`, publishing group 2 into the JetStream stream `stream` (--nats-jetstream on). */
export function spawnJetStreamHost(natsUrl: string, stream: string): Promise<DaemonProc> {
  return spawnDaemon(['--nats', natsUrl, '--host-id', 'A', '--nats-publish', '2', '--nats-jetstream', 'on', '--nats-stream', stream]);
}

/**
 * The `fleet` object of a daemon's GET /status (spawned or in-process, with its
 * token if it has one): the fleet's status() as the daemon serves it. A plain
 * fetch, as the copies it replaces were; the tests that assert on /status
 * itself use `call`, which also checks the answer against openapi.yaml.
 */
export async function fleetStatus(d: Pick<DaemonProc, 'base' | 'token'>, opts: { spec?: boolean } = {}): Promise<FleetStatus> {
  const r = await fetch(`${d.base}/status`, { headers: authOf(d) });
  const body = (await r.json()) as { fleet: FleetStatus };
  // With `spec`: the whole answer checked against openapi.yaml's Status too (a test of a field of the contract).
  if (opts.spec && r.status !== 200) throw new Error(`GET /status: ${r.status}`);
  if (opts.spec) assertMatchesSpec('GET', '/status', r.status, r.headers.get('content-type') ?? '', body);
  return body.fleet;
}

/** Waits until daemon `d` (`who` in messages) says its JetStream stream is ready; its fleet status then. */
export function streamReady(d: Pick<DaemonProc, 'base' | 'token'>, who: string): Promise<FleetStatus> {
  return waitFor(`${who} has its stream`, () => fleetStatus(d), { timeoutMs: 10000, until: (s) => s.jetstream?.state === 'ready' });
}

/** A daemon's GET /metrics text (with its token if it has one). */
export async function fleetMetrics(d: Pick<DaemonProc, 'base' | 'token'>): Promise<string> {
  return (await fetch(`${d.base}/metrics`, { headers: authOf(d) })).text();
}

const authOf = (d: Pick<DaemonProc, 'token'>): Record<string, string> => (d.token ? { authorization: `Bearer ${d.token}` } : {});

/** One netlink message of a NATS message on nlbridge.<host>.g.<group>, with its number on the host. */
export interface RunMessage {
  n: number;
  bytes: Buffer;
  /** Its payload as text, NUL padding removed. */
  text: string;
}

/**
 * The netlink messages a NATS message of the fleet holds: k of them back to
 * back at NLMSG_ALIGN (header k; absent, one), numbered n, n+1, … (header n).
 * Written here from the contract in daemon/README.md, not with the daemon's
 * code, so a test reads the subject as any subscriber would.
 */
export function runMessages(data: Uint8Array, headers: { get(k: string): string } | undefined): RunMessage[] {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const k = Number(headers?.get('k') || 1);
  const n = Number(headers?.get('n'));
  const out: RunMessage[] = [];
  let at = 0;
  for (let i = 0; i < k; i++) {
    const len = buf.readUInt32LE(at);
    const bytes = buf.subarray(at, at + len);
    out.push({ n: n + i, bytes, text: bytes.subarray(16).toString().replace(/\0+$/, '') });
    at += (len + 3) & ~3;
  }
  if (at < buf.length - 3) throw new Error(`${buf.length - at} bytes after the ${k} messages the headers name`);
  return out;
}

/** A fleet frame's cursor ("ID-S", or "ID-S.i" inside a run) as [S, i], the last of a run (or a message alone) i = Infinity: for ordering in one stream. */
export function cursorPlace(cursor: unknown): [number, number] {
  const m = /^[0-9a-f]{8}-([0-9]+)(?:\.([0-9]+))?$/.exec(String(cursor));
  if (!m) throw new Error(`${String(cursor)} is not a fleet cursor`);
  return [Number(m[1]), m[2] === undefined ? Infinity : Number(m[2])];
}

/**
 * The id a fleet cursor gives the JetStream stream `name` created at
 * `created` (its STREAM.INFO), as daemon/README.md states it: the first 8
 * hex digits of sha256(name "\n" created). Written from the contract, not
 * with the daemon's code.
 */
export function fleetStreamId(name: string, created: string): string {
  return createHash('sha256').update(`${name}\n${created}`).digest('hex').slice(0, 8);
}

// Helpers of the fleet host tests (fleet_jetstream, fleet_jetstream_permissions,
// fleet_permissions): the spawned daemon of host A with JetStream on, and the
// fleet part of a daemon's /status. Each test file had its own copy of these,
// and copies drift apart; one here keeps the hosts and the reading alike.

import type { FleetStatus } from '../../../daemon/fleet/index';
import { spawnDaemon, type DaemonProc } from '../../reliability/support/daemon_proc';

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
export async function fleetStatus(d: Pick<DaemonProc, 'base' | 'token'>): Promise<FleetStatus> {
  const r = await fetch(`${d.base}/status`, { headers: d.token ? { authorization: `Bearer ${d.token}` } : {} });
  return ((await r.json()) as { fleet: FleetStatus }).fleet;
}

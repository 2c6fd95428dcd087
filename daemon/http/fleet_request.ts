// What a /fleet/groups/{mask} request asks for (groups, hosts), read the same
// way by its WebSocket and SSE routes, and the source its Subscription reads
// from: the fleet's NATS subscriptions instead of the local bus.

import type { FastifyRequest } from 'fastify';
import { Problem } from '../errors';
import type { Fleet, FleetWatch } from '../fleet/index';
import type { ReplayFrom } from '../fleet/cursor';
import type { Bus } from '../netlink/bus';
import type { GroupList } from '../netlink/groups';
import { checkRead } from '../scopes';
import type { StreamBus, Subscription } from '../streams/subscription';
import type { StreamWriter } from '../streams/writer';
import { streamGroups } from './stream_request';

export interface FleetSelection {
  groups: GroupList;
  hosts: string[] | null;
  /** ?since= (or SSE's Last-Event-ID): the cursor of the last message seen, read; null = from now on. */
  since: ReplayFrom | null;
}

/** ?since= of a fleet stream: needs --nats-jetstream on and a fleet frame's cursor; else 400 naming `field`. */
function fleetSince(text: string | undefined, fleet: Fleet, field: string): ReplayFrom | null {
  if (text === undefined) return null;
  if (!fleet.replayable)
    throw new Problem('VALIDATION', `${field}: a fleet stream resumes only with --nats-jetstream on (this daemon keeps no stream)`, {
      field,
    });
  // Loaded only once a fleet exists (see fleetSelection).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseFleetCursor } = require('../fleet/cursor') as typeof import('../fleet/cursor');
  const since = parseFleetCursor(text);
  if (since === null)
    throw new Problem(
      'VALIDATION',
      `${field}: must be a fleet message's cursor (ID-S, or ID-S.i inside a run: the stream's id, 8 hex digits, and a stream sequence; a bare S or S.i of earlier versions), got ${JSON.stringify(text.slice(0, 40))}`,
      { field },
    );
  return since;
}

/** The fleet, or 404 FLEET_NOT_CONFIGURED: a daemon started without --nats has none (a setting, not a passing state: hence not 503). */
export function requireFleet(fleet: Fleet | null): Fleet {
  if (fleet === null)
    throw new Problem('FLEET_NOT_CONFIGURED', 'the fleet is not configured on this daemon: start it with --nats URL to watch other hosts');
  return fleet;
}

/** Query parameters of /groups/{mask} that /fleet/groups/{mask} does not take. */
const LOCAL_ONLY = ['format', 'batch', 'unicast'] as const;

/** Checks and reads a /fleet request: the fleet, the mask, ?hosts=, the token's read scope. Throws Problem. */
export function fleetSelection(request: FastifyRequest, fleet: Fleet | null, bus: Bus): FleetSelection {
  const present = requireFleet(fleet);
  // Loaded only once a fleet exists: a daemon without --nats loads nothing of daemon/fleet/ (fleet_publish.test.ts).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseHosts } = require('../fleet/watch_selection') as typeof import('../fleet/watch_selection');
  // Options of local streams a fleet stream does not offer: refused, not ignored
  // (a client asking for binary frames would otherwise get JSON, unsaid).
  for (const name of LOCAL_ONLY) {
    if ((request.query as Record<string, unknown>)[name] !== undefined)
      throw new Problem('VALIDATION', `${name}: not offered on /fleet streams (JSON frames, one message each, from NATS)`, { field: name });
  }
  const groups = streamGroups(request);
  bus.checkGroups(groups, 'mask');
  const text = (request.query as { hosts?: string }).hosts;
  let hosts: string[] | null = null;
  if (text !== undefined) {
    try {
      hosts = parseHosts(text);
    } catch (err) {
      throw new Problem('VALIDATION', `hosts: ${(err as Error).message}`, { field: 'hosts' });
    }
  }
  checkRead(request.nlbridgeScope, groups, 'mask');
  // Last-Event-ID is what an EventSource sends on reconnect: newer than the URL's since.
  // Both are read, so a bad ?since= is refused even beside a good Last-Event-ID.
  const last = request.headers['last-event-id'];
  const fromQuery = fleetSince((request.query as { since?: string }).since, present, 'since');
  const since = typeof last === 'string' && last !== '' ? fleetSince(last, present, 'Last-Event-ID') : fromQuery;
  return { groups, hosts, since };
}

/**
 * A fleet stream: a Subscription whose source is the fleet. Its hello names
 * the local bridge (its protocol decodes the messages' types) and the hosts;
 * closing it drops its NATS subscriptions, as closing a local one leaves the bus.
 */
export function fleetStream<W extends StreamWriter>(
  fleet: Fleet,
  bus: Bus,
  selection: FleetSelection,
  make: (source: StreamBus) => Subscription<W>,
): { stream: Subscription<W>; watch: () => void } {
  let held: FleetWatch | null = null;
  let closed = false;
  const source: StreamBus = {
    protocol: bus.protocol,
    tx: bus.tx,
    unsubscribe: () => {
      closed = true;
      held?.close();
    },
    closeClientEndpoint: () => undefined,
  };
  const stream = make(source);
  return {
    stream,
    // After the hello: frames from NATS follow it.
    watch: () => {
      if (!closed) held = fleet.watch({ hosts: selection.hosts, groups: selection.groups }, stream, selection.since);
    },
  };
}

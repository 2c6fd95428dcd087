// GET /status and GET /kernel/stats.

import type { FastifyInstance } from 'fastify';
import type { Bus } from '../netlink/bus';
import type { Metrics } from '../metrics';
import type { AuthSetup } from '../security';
import { DNL_STATS_COUNTERS } from '../../addon/dummy_netlink';

export function statusRoutes(app: FastifyInstance, bus: Bus, metrics: Metrics, auth: AuthSetup, version: string, wsClients: () => number): void {
  app.get('/status', async () => {
    const p = bus.protocol;
    return {
      version,
      protocol: { name: p.name, number: p.number, kernelEndpoint: p.kernelEndpoint, maxGroup: p.maxGroup, reason: p.reason },
      module: p.module,
      portIds: { tx: bus.tx.portId, rx: bus.rx.portId },
      groups: { joined: bus.joinedGroups(), subscribers: bus.subscriberCounts() },
      clients: { websocket: wsClients(), unicast: bus.clientEndpointCount },
      auth: { mode: auth.mode, tokenRequired: auth.token !== null },
      counters: {
        sent: metrics.sent.total(),
        received: metrics.received.total(),
        duplicates: metrics.duplicates.total(),
        rejected: metrics.rejected.total(),
        overruns: metrics.overruns.total(),
        overrunLost: metrics.overrunLost.total(),
        sendErrors: metrics.sendErrors.total(),
        wsFramesSent: metrics.wsFrames.total(),
        wsFramesDropped: metrics.wsDropped.total(),
        wsClosedSlow: metrics.wsClosedSlow.total(),
      },
      uptimeSeconds: Math.round((Date.now() - bus.startedAt) / 100) / 10,
    };
  });

  app.get('/kernel/stats', async () => {
    const s = await bus.kernelStats();
    const out: Record<string, number> = { version: s.version, unit: s.unit };
    for (const k of DNL_STATS_COUNTERS) out[k] = Number(s[k]);
    return out;
  });
}

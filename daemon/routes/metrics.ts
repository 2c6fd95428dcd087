// GET /metrics: the Prometheus text of the app's own prom-client Registry.

import type { FastifyInstance } from 'fastify';
import type { Bus } from '../bus';
import type { Metrics } from '../metrics';

export function metricsRoutes(app: FastifyInstance, bus: Bus, metrics: Metrics): void {
  metrics.readBus({
    joinedGroups: () => bus.joinedGroups().length,
    unicastClients: () => bus.clientEndpointCount,
    rxSocketDrops: () => {
      try {
        return bus.isClosed ? 0 : bus.rx.drops();
      } catch {
        // The socket went away under the scrape (shutdown): nothing more was dropped.
        return 0;
      }
    },
    ringMessages: () => bus.ring.size,
    ringBytes: () => bus.ring.bytes,
    ringMaxBytes: () => bus.ring.opts.maxBytes,
    ringEvicted: () => bus.ring.evicted,
  });
  app.get('/metrics', async (_request, reply) => {
    // Age eviction otherwise waits for the next append: a quiet ring would
    // report messages it no longer holds for resume.
    bus.ring.evict(Date.now());
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

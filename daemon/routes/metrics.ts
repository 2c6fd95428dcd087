// GET /metrics (Prometheus text).

import type { FastifyInstance } from 'fastify';
import type { Bus } from '../netlink/bus';
import type { Metrics } from '../metrics';

export function metricsRoutes(app: FastifyInstance, bus: Bus, metrics: Metrics): void {
  app.get('/metrics', async (_request, reply) => {
    let drops: number;
    try {
      drops = bus.isClosed ? 0 : bus.rx.drops();
    } catch {
      drops = 0;
    }
    for (const reason of ['count', 'age', 'bytes'] as const) {
      const n = bus.ring.evicted[reason];
      if (n > 0) metrics.ringEvicted.set({ reason }, n);
    }
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metrics.render({
      nlbridge_joined_groups: { help: 'Groups the receive socket belongs to', value: bus.joinedGroups().length },
      nlbridge_unicast_clients: { help: 'WebSocket clients with a netlink socket of their own', value: bus.clientEndpointCount },
      nlbridge_rx_socket_drops: { help: 'SK_MEMINFO_DROPS of the shared receive socket', value: drops },
      nlbridge_ring_messages: { help: 'Messages held in the resume ring', value: bus.ring.size },
      nlbridge_ring_bytes: { help: 'Accounted bytes of the resume ring', value: bus.ring.bytes },
      nlbridge_ring_max_bytes: { help: 'Memory cap of the resume ring (--ring-max-bytes)', value: bus.ring.opts.maxBytes },
    });
  });
}

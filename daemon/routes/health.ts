// GET /healthz: no token needed (the Host check still applies).

import type { FastifyInstance } from 'fastify';
import type { Bus } from '../netlink/bus';

export function healthRoutes(app: FastifyInstance, bus: Bus, stopping: () => boolean): void {
  app.get('/healthz', async (_request, reply) => {
    const status = stopping() ? 'stopping' : bus.isClosed || bus.rx.isClosed ? 'failed' : 'ok';
    if (status !== 'ok') reply.code(503);
    return { status, protocol: `${bus.protocol.name} (${bus.protocol.number})` };
  });
}

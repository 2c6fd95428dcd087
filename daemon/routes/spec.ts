// GET /openapi.yaml: the contract, as served.

import type { FastifyInstance } from 'fastify';
import { loadSpec } from '../spec';

export function specRoutes(app: FastifyInstance): void {
  app.get('/openapi.yaml', async (_request, reply) => {
    reply.type('application/yaml; charset=utf-8');
    return loadSpec().text;
  });
}

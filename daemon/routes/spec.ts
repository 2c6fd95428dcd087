// GET /openapi.yaml and /asyncapi.yaml: the contracts, as served.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadSpec } from '../spec';

/** asyncapi.yaml at the repo root (dist/daemon/routes/spec.js → ../../..). */
export const ASYNCAPI_PATH = path.resolve(__dirname, '../../../asyncapi.yaml');

export function specRoutes(app: FastifyInstance): void {
  app.get('/openapi.yaml', async (_request, reply) => {
    reply.type('application/yaml; charset=utf-8');
    return loadSpec().text;
  });
  let asyncapi: string | null = null;
  app.get('/asyncapi.yaml', async (_request, reply) => {
    asyncapi ??= fs.readFileSync(ASYNCAPI_PATH, 'utf8');
    reply.type('application/yaml; charset=utf-8');
    return asyncapi;
  });
}

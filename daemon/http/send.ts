// POST /send: a JSON request → the bus (the planner) → the addon's sendto.

import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { checkSend } from '../scopes';
import { requestBodySchema } from '../spec';
import { toSendRequest, type SendBody } from './send_body';

export const sendRoutesPlugin = fp(
  async (app: FastifyInstance) => {
    const { bus } = app.nlbridge;
    app.post<{ Body: SendBody }>('/send', { schema: { body: requestBodySchema('/send', 'post') } }, async (request) => {
      const req = toSendRequest(request.body);
      checkSend(request.nlbridgeScope, req);
      const report = await bus.send(req);
      request.log.debug({ seq: report.seq, results: report.results.length }, 'sent');
      return report;
    });
  },
  { name: 'nlbridge-send', dependencies: ['nlbridge-state'] },
);

// Request bodies: JSON in UTF-8 only, by the rules every transport shares (request_json.ts).

import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { parseRequestJson } from '../request_json';

export const jsonBodyPlugin = fp(
  async (app: FastifyInstance) => {
    // JSON only: a browser can send text/plain cross-site without a preflight.
    app.removeContentTypeParser('text/plain');
    // JSON that is not UTF-8: a string parser decodes it with U+FFFD in place
    // of the bad bytes, and the message would go out altered. So the bytes.
    const limit = app.initialConfig.bodyLimit ?? 1024 * 1024;
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      // No route, nothing to read: the not-found handler answers 404 or 405,
      // whatever the body (a parse problem would otherwise answer first).
      if (request.is404) {
        done(null, undefined);
        return;
      }
      try {
        done(null, parseRequestJson(body as Buffer, limit));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
  },
  { name: 'nlbridge-json-body' },
);

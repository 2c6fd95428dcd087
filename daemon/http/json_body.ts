// Request bodies: JSON in UTF-8 only.

import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { Problem } from '../errors';

export const jsonBodyPlugin = fp(
  async (app: FastifyInstance) => {
    // JSON only: a browser can send text/plain cross-site without a preflight.
    app.removeContentTypeParser('text/plain');
    // JSON that is not UTF-8: the default parser decodes it with U+FFFD in
    // place of the bad bytes, and the message would go out altered. Refused.
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      const bytes = body as Buffer;
      if (!isUtf8(bytes)) {
        done(
          new Problem('BAD_DATA', 'the body is not valid UTF-8 (JSON text must be; send binary data with "encoding": "base64" or "hex")', {
            field: 'body',
          }),
          undefined,
        );
        return;
      }
      parseJson(request, bytes.toString('utf8'), done);
    });
  },
  { name: 'nlbridge-json-body' },
);

// A request body's bytes as JSON, by one set of rules for every way a request
// comes in: POST and the other JSON routes (http/json_body.ts) and send
// requests over NATS (main.ts). Issue 18 asks the NATS send subject for "the
// same report or problem" as POST /send; when the NATS path parsed on its own,
// it sent a body that was not UTF-8 with U+FFFD in place of the bad bytes,
// took bodies above --body-limit, and refused a leading BOM that HTTP takes.
//
// secure-json-parse is fastify's own parser (a dependency of fastify),
// refusing "__proto__" and "constructor.prototype" keys as fastify is set to.

import { isUtf8 } from 'node:buffer';
import sjson from 'secure-json-parse';
import { Problem } from './errors';

export const NOT_UTF8 = 'the body is not valid UTF-8 (JSON text must be; send binary data with "encoding": "base64" or "hex")';

/** The body parsed; throws a Problem naming `body` (413 over `limit` bytes, 400 otherwise). */
export function parseRequestJson(bytes: Uint8Array, limit: number): unknown {
  if (bytes.length > limit) throw new Problem('PAYLOAD_TOO_LARGE', `body is larger than ${limit} bytes (--body-limit)`, { field: 'body' });
  if (bytes.length === 0) throw new Problem('VALIDATION', 'body is empty; send a JSON object', { field: 'body' });
  if (!isUtf8(bytes)) throw new Problem('BAD_DATA', NOT_UTF8, { field: 'body' });
  try {
    return sjson.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'), null, {
      protoAction: 'error',
      constructorAction: 'error',
    });
  } catch (err) {
    throw new Problem('VALIDATION', `body is not valid JSON: ${(err as Error).message}`, { field: 'body' });
  }
}

// Case 1: a million generated and mutated datagrams through the codec. Nothing
// may escape decodeDatagram/decodeAck, and every malformed one is classified.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CodecError, NLMSG_ERROR, align, decodeAck, decodeDatagram, encodeMessages } from '../../addon/codec';
import { recordCase } from './support/report';

const RUNS = 1_000_000;

const message = fc.record({
  type: fc.oneof(fc.constantFrom(1, 2, 3, 4, 0x10, 0x11, 0x12, 0x13, 0x14), fc.integer({ min: 0, max: 0xffff })),
  flags: fc.integer({ min: 0, max: 0xffff }),
  seq: fc.nat({ max: 0xffffffff }),
  pid: fc.nat({ max: 0xffffffff }),
  payload: fc.uint8Array({ maxLength: 48 }),
});

/** A well-formed datagram, then optionally damaged the ways a hostile peer would. */
const datagram = fc
  .tuple(
    fc.array(message, { minLength: 1, maxLength: 4 }),
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
    fc.option(fc.nat(), { nil: undefined }),
    fc.option(fc.oneof(fc.constant(0), fc.constant(0xffffffff), fc.nat({ max: 64 })), { nil: undefined }),
  )
  .map(([messages, byteFlips, cutAt, forgedLength]) => {
    const buf = encodeMessages(messages);
    for (const [at, value] of byteFlips) buf[at % buf.length] = value;
    if (forgedLength !== undefined) buf.writeUInt32LE(forgedLength >>> 0, 0);
    return cutAt === undefined ? buf : buf.subarray(0, cutAt % (buf.length + 1));
  });

test(`case 1: ${RUNS.toLocaleString('en')} generated and mutated datagrams decode without an escape`, () => {
  const faults = new Map<string, number>();
  let messages = 0;
  let escapes = 0;
  fc.assert(
    fc.property(datagram, (buf) => {
      let result;
      try {
        result = decodeDatagram(buf);
        for (const m of result.messages) {
          if (m.header.type === NLMSG_ERROR) decodeAck(m.payload);
        }
      } catch {
        escapes++;
        return false;
      }
      messages += result.messages.length;
      let covered = 0;
      for (const m of result.messages) covered += align(m.header.length);
      if (result.error) {
        if (!(result.error instanceof CodecError) || result.error.offset !== covered) return false;
        faults.set(result.error.code, (faults.get(result.error.code) ?? 0) + 1);
      } else if (covered < buf.length) {
        return false;
      }
      return true;
    }),
    { numRuns: RUNS, seed: 20261129 },
  );
  const classified = [...faults.values()].reduce((a, b) => a + b, 0);
  const figure =
    `${RUNS} datagrams, ${messages} messages decoded, ${classified} malformed classified ` +
    `(${[...faults].map(([k, v]) => `${k} ${v}`).join(', ')}), ${escapes} escapes`;
  recordCase({ name: '1. Codec fuzz', figure, pass: escapes === 0 });
  assert.equal(escapes, 0);
  for (const code of ['ETOOSHORT', 'EBADLEN', 'EZEROLEN', 'ETRUNC']) {
    assert.ok((faults.get(code) ?? 0) > 0, `the fuzz never produced ${code}`);
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CodecError,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLM_F_ACK,
  NLM_F_REQUEST,
  align,
  controlTypeName,
  decodeAck,
  decodeDatagram,
  decodeHeader,
  encodeAckPayload,
  encodeMessage,
  encodeMessages,
  errnoCode,
  flagNames,
  soleMessageLength,
} from '../../addon/codec';

function header(length: number, type = 0x10, flags = 0, seq = 0, pid = 0): Buffer {
  const b = Buffer.alloc(NLMSG_HDRLEN);
  b.writeUInt32LE(length >>> 0, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(flags, 6);
  b.writeUInt32LE(seq, 8);
  b.writeUInt32LE(pid, 12);
  return b;
}

test('encodeMessage writes a little-endian header, the payload and 4-byte padding', () => {
  const buf = encodeMessage({ type: 0x10, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 7, pid: 42, payload: Buffer.from('abcde') });
  assert.equal(buf.length, 24);
  assert.deepEqual(decodeHeader(buf), { length: 21, type: 0x10, flags: 5, seq: 7, pid: 42 });
  assert.equal(buf.subarray(16, 21).toString(), 'abcde');
  assert.deepEqual([...buf.subarray(21)], [0, 0, 0]);
});

test('encodeMessage without payload is a bare 16-byte header with zero defaults', () => {
  const buf = encodeMessage({ type: NLMSG_DONE });
  assert.deepEqual(decodeHeader(buf), { length: 16, type: NLMSG_DONE, flags: 0, seq: 0, pid: 0 });
});

test('encodeMessage refuses out-of-range header fields with the field named', () => {
  assert.throws(() => encodeMessage({ type: 0x10000 }), /type must be an integer/);
  assert.throws(() => encodeMessage({ type: 1, flags: -1 }), /flags must be/);
  assert.throws(() => encodeMessage({ type: 1, seq: 2 ** 32 }), /seq must be/);
  assert.throws(() => encodeMessage({ type: 1, pid: 1.5 }), /pid must be/);
});

test('several messages in one datagram round-trip, each aligned', () => {
  const input = [
    { type: 0x10, seq: 1, pid: 3, payload: Buffer.from('a') },
    { type: 0x11, flags: NLM_F_ACK, seq: 2, pid: 3, payload: Buffer.from('bcdefgh') },
    { type: NLMSG_DONE, seq: 3, pid: 3 },
  ];
  const buf = encodeMessages(input);
  assert.equal(buf.length, align(17) + align(23) + 16);
  const { messages, error } = decodeDatagram(buf);
  assert.equal(error, null);
  assert.equal(messages.length, 3);
  assert.deepEqual(
    messages.map((m) => m.payload.toString()),
    ['a', 'bcdefgh', ''],
  );
  assert.deepEqual(
    messages.map((m) => m.header.seq),
    [1, 2, 3],
  );
  assert.equal(messages[1]!.header.flags, NLM_F_ACK);
});

test('the last message may omit its padding', () => {
  const buf = encodeMessage({ type: 0x10, payload: Buffer.from('xyz') }).subarray(0, 19);
  const { messages, error } = decodeDatagram(buf);
  assert.equal(error, null);
  assert.equal(messages[0]!.payload.toString(), 'xyz');
});

test('an empty datagram has no messages and no error', () => {
  assert.deepEqual(decodeDatagram(Buffer.alloc(0)), { messages: [], error: null });
});

test('fewer than 16 bytes is ETOOSHORT', () => {
  const { messages, error } = decodeDatagram(Buffer.from([1, 2, 3]));
  assert.equal(messages.length, 0);
  assert.ok(error instanceof CodecError);
  assert.equal(error.code, 'ETOOSHORT');
  assert.equal(error.offset, 0);
});

test('leftover bytes after a good message are ETOOSHORT at their offset, the good message kept', () => {
  const buf = Buffer.concat([encodeMessage({ type: 0x10, payload: Buffer.from('ok!!') }), Buffer.from([9, 9, 9, 9])]);
  const { messages, error } = decodeDatagram(buf);
  assert.equal(messages.length, 1);
  assert.equal(error?.code, 'ETOOSHORT');
  assert.equal(error?.offset, 20);
});

test('nlmsg_len 0 is EZEROLEN (a naive loop would never advance)', () => {
  const { error } = decodeDatagram(header(0));
  assert.equal(error?.code, 'EZEROLEN');
});

test('nlmsg_len below the header size is EBADLEN', () => {
  const { error } = decodeDatagram(header(8));
  assert.equal(error?.code, 'EBADLEN');
});

test('nlmsg_len past the datagram is ETRUNC, including 0xffffffff', () => {
  assert.equal(decodeDatagram(header(64)).error?.code, 'ETRUNC');
  const huge = decodeDatagram(Buffer.concat([header(0xffffffff), Buffer.alloc(8)]));
  assert.equal(huge.error?.code, 'ETRUNC');
  assert.match(huge.error!.message, /4294967295/);
});

test('decodeAck reads the negative errno and the echoed request', () => {
  const request = { length: 20, type: 0x11, flags: NLM_F_REQUEST | NLM_F_ACK, seq: 9, pid: 77 };
  const ack = decodeAck(encodeAckPayload(111, request));
  assert.ok(!(ack instanceof CodecError));
  assert.equal(ack.errno, 111);
  assert.equal(ack.code, 'ECONNREFUSED');
  assert.deepEqual(ack.request, request);
});

test('decodeAck of 0 is a plain ack with no code', () => {
  const ack = decodeAck(encodeAckPayload(0, { length: 16, type: 0x10, flags: 0, seq: 1, pid: 2 }));
  assert.ok(!(ack instanceof CodecError));
  assert.equal(ack.errno, 0);
  assert.equal(ack.code, null);
});

test('decodeAck without the echoed header still gives the errno', () => {
  const payload = Buffer.alloc(4);
  payload.writeInt32LE(-1, 0);
  const ack = decodeAck(payload);
  assert.ok(!(ack instanceof CodecError));
  assert.equal(ack.code, 'EPERM');
  assert.equal(ack.request, null);
});

test('decodeAck of a payload under 4 bytes is a CodecError', () => {
  const ack = decodeAck(Buffer.alloc(3));
  assert.ok(ack instanceof CodecError);
  assert.equal(ack.code, 'ETOOSHORT');
});

test('an NLMSG_ERROR message decodes through the datagram path', () => {
  const request = { length: 16, type: 0x10, flags: NLM_F_ACK, seq: 5, pid: 1 };
  const buf = encodeMessage({ type: NLMSG_ERROR, seq: 5, payload: encodeAckPayload(22, request) });
  const [msg] = decodeDatagram(buf).messages;
  const ack = decodeAck(msg!.payload);
  assert.ok(!(ack instanceof CodecError));
  assert.equal(ack.code, 'EINVAL');
});

test('flagNames names known bits and shows the rest in hex', () => {
  assert.deepEqual(flagNames(0), []);
  assert.deepEqual(flagNames(NLM_F_REQUEST | NLM_F_ACK), ['REQUEST', 'ACK']);
  assert.deepEqual(flagNames(0x2 | 0x8 | 0x10 | 0x20 | 0x300), ['MULTI', 'ECHO', 'DUMP_INTR', 'DUMP_FILTERED', '0x300']);
});

test('controlTypeName names netlink control types only', () => {
  assert.equal(controlTypeName(1), 'NOOP');
  assert.equal(controlTypeName(2), 'ERROR');
  assert.equal(controlTypeName(3), 'DONE');
  assert.equal(controlTypeName(4), 'OVERRUN');
  assert.equal(controlTypeName(0x10), null);
});

test('errnoCode maps numbers to names, either sign, and unknown ones to ERRNO_n', () => {
  assert.equal(errnoCode(111), 'ECONNREFUSED');
  assert.equal(errnoCode(-105), 'ENOBUFS');
  assert.equal(errnoCode(99999), 'ERRNO_99999');
});

test('10,000 random byte strings decode without throwing, every fault typed', () => {
  let faults = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const buf = Buffer.from(bytes);
      const { messages, error } = decodeDatagram(buf);
      let covered = 0;
      for (const m of messages) {
        assert.ok(m.header.length >= NLMSG_HDRLEN);
        covered += align(m.header.length);
      }
      if (error) {
        faults++;
        assert.ok(error instanceof CodecError);
        assert.equal(error.offset, covered);
      } else {
        assert.ok(covered >= buf.length);
      }
    }),
    { numRuns: 10_000 },
  );
  assert.ok(faults > 0);
});

test('random well-formed message lists round-trip exactly', () => {
  const message = fc.record({
    type: fc.integer({ min: 0, max: 0xffff }),
    flags: fc.integer({ min: 0, max: 0xffff }),
    seq: fc.nat({ max: 0xffffffff }),
    pid: fc.nat({ max: 0xffffffff }),
    payload: fc.uint8Array({ maxLength: 64 }),
  });
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), (input) => {
      const { messages, error } = decodeDatagram(encodeMessages(input));
      assert.equal(error, null);
      assert.equal(messages.length, input.length);
      messages.forEach((m, i) => {
        const want = input[i]!;
        assert.deepEqual(
          { ...m.header, payload: [...m.payload] },
          {
            length: 16 + want.payload.length,
            type: want.type,
            flags: want.flags,
            seq: want.seq,
            pid: want.pid,
            payload: [...want.payload],
          },
        );
      });
    }),
    { numRuns: 2_000 },
  );
});

test('soleMessageLength agrees with decodeDatagram: > 0 exactly when the datagram is one well-formed message', () => {
  const one = encodeMessage({ type: 16, flags: 1, seq: 1, pid: 2, payload: Buffer.from('hello') }); // 21 bytes, padded to 24
  const cases: Buffer[] = [
    one,
    one.subarray(0, 21), // padding omitted
    one.subarray(0, 22),
    one.subarray(0, 20), // cut
    Buffer.concat([one, one]),
    Buffer.concat([one, Buffer.alloc(4)]), // leftover after the padding
    Buffer.alloc(0),
    Buffer.alloc(15),
    Buffer.alloc(16), // nlmsg_len 0
    encodeMessage({ type: 3, flags: 0, seq: 0, pid: 0 }), // header only
  ];
  // Random datagrams whose first word is sometimes a plausible length.
  let seed = 7;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 3000; i++) {
    const b = Buffer.alloc(rand(80));
    for (let j = 0; j < b.length; j++) b[j] = rand(256);
    if (b.length >= 4 && rand(2) === 0) b.writeUInt32LE(rand(b.length + 8), 0);
    cases.push(b);
  }
  for (const b of cases) {
    const { messages, error } = decodeDatagram(b);
    const sole = soleMessageLength(b);
    const expected = error === null && messages.length === 1 ? messages[0].header.length : 0;
    assert.equal(sole, expected, b.toString('hex'));
  }
});

// Any local user may send arbitrary bytes on NETLINK_USERSOCK: 10,000 random
// byte strings go through a real socket and the codec, unchanged and without
// a throw.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { CodecError, NetlinkError, decodeDatagram } from '../../addon/index';
import type { Datagram } from '../../addon/types';
import { G, bit, open, sleep } from './support/netlink';
import { waitFor } from '../support/wait';

/** Random strings, with a share that look almost like netlink messages. */
function randomDatagram(i: number): Buffer {
  const b = randomBytes(randomInt(1, 600));
  switch (i % 6) {
    case 0: // a plausible header with a random length
      if (b.length >= 16) b.writeUInt32LE(randomInt(0, b.length + 64), 0);
      break;
    case 1: // nlmsg_len 0xffffffff
      if (b.length >= 4) b.writeUInt32LE(0xffffffff, 0);
      break;
    case 2: // zero length, which a careless decoder loops on
      if (b.length >= 4) b.writeUInt32LE(0, 0);
      break;
    case 3: // a tiny datagram
      return b.subarray(0, randomInt(1, 16));
    default:
      break;
  }
  return b;
}

test('10,000 random byte strings through a real socket and the codec', async (t) => {
  const reader = open({ groups: bit(G.c) });
  const groupReader = open({ groups: bit(G.c) });
  const writer = open();
  t.after(() => [reader, groupReader, writer].forEach((s) => s.close()));

  const N = 10_000;
  const sent: Buffer[] = [];
  const got: Datagram[] = [];
  let groupGot = 0;
  let decodeThrew = 0;
  let malformed = 0;
  const check = (batch: Datagram[], sink: (d: Datagram) => void): void => {
    for (const d of batch) {
      try {
        const r = decodeDatagram(d.data);
        if (r.error !== null) {
          assert.ok(r.error instanceof CodecError);
          malformed++;
        }
      } catch {
        decodeThrew++;
      }
      sink(d);
    }
  };
  reader.on('datagrams', (batch) => check(batch, (d) => got.push(d)));
  groupReader.on('datagrams', (batch) => check(batch, (d) => d.portId === writer.portId && groupGot++));

  let eagain = 0;
  for (let i = 0; i < N; i++) {
    const d = randomDatagram(i);
    // Every tenth also goes to a group: both legs of one sendto.
    let groups = i % 10 === 0 ? bit(G.c) : 0;
    for (;;) {
      try {
        writer.send(d, { portId: reader.portId, groups });
        break;
      } catch (err) {
        // The reader's buffer is full until its listener runs.
        assert.ok(err instanceof NetlinkError && err.code === 'EAGAIN', String(err));
        eagain++;
        // EAGAIN comes from the unicast leg: the broadcast already went out.
        if (groups !== 0) {
          assert.equal(err.broadcastGroup, G.c);
          groups = 0;
        }
        await sleep(1); // back off until the reader's listener has drained its queue
      }
    }
    sent.push(d);
  }
  // On a timeout the diagnostic and the count check below say how many came.
  await waitFor(`all ${N} datagrams at the reader`, () => got.length, { timeoutMs: 5000, intervalMs: 10, until: (n) => n >= N }).catch(
    () => undefined,
  );
  t.diagnostic(
    `sent=${N} received=${got.length} groupCopies=${groupGot} malformedDecodes(both readers)=${malformed} eagainRetries=${eagain}`,
  );

  assert.equal(decodeThrew, 0);
  assert.equal(got.length, N);
  for (let i = 0; i < N; i++) {
    assert.deepEqual(got[i].data, sent[i], `datagram ${i}`);
    assert.equal(got[i].length, sent[i].length);
    assert.equal(got[i].truncated, false);
    assert.equal(got[i].portId, writer.portId);
  }
  assert.ok(malformed > N / 3, `only ${malformed} malformed of ${N}: the generator is too tame`);
  assert.equal(groupGot, N / 10);
  assert.equal(reader.drops() + groupReader.drops(), 0);
});

test('an empty datagram is refused by the kernel (ENODATA), not sent', (t) => {
  const reader = open();
  const writer = open();
  t.after(() => [reader, writer].forEach((s) => s.close()));
  assert.throws(() => writer.send(Buffer.alloc(0), { portId: reader.portId }), {
    name: 'NetlinkError',
    code: 'ENODATA',
    syscall: 'sendto',
  });
});

// Case 6b: injected faults. strace attaches to a running daemon process and
// makes its netlink syscalls fail (`-e inject=SYSCALL:error=ERRNO:when=…`):
// the addon receives with recvmmsg and sends with sendto (MSG_DONTWAIT), both
// on the event-loop (main) thread, so strace attaches to that thread only
// (no -f: the other threads make no netlink calls, and tracing them would
// only slow the daemon). For each fault the documented behaviour is checked
// (addon/README.md "Receiving", daemon/README.md POST /send):
//  - recvmmsg ENOBUFS: consumed, the drain goes on; the loss told to clients
//    is the socket's drop counter, so an ENOBUFS without a drop (an injected
//    one) loses nothing and reports no overrun;
//  - recvmmsg EAGAIN: ends that wake-up, the level-triggered poll fires again;
//  - recvmmsg EINTR: retried at once;
//  - sendto EAGAIN / ENOBUFS: nothing reached → 503 PEER_BUSY with that errno
//    (over HTTP and as a WebSocket `error` frame), counted in
//    nlbridge_send_errors_total; nothing phantom arrives.
// Receive faults come every 2nd call (between real reads) and as a run of
// 300 consecutive calls. After each fault: the daemon is alive, and traffic sent after strace left
// (netlink → WebSocket, POST /send → WebSocket and a peer) arrives whole.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NetlinkSocket } from '../../addon/socket';
import { decodeDatagram, encodeMessage } from '../../addon/codec';
import { call, connect, sleep, type Frame, type WsClient } from '../host/support/daemon_harness';
import { recordCase } from './support/report';
import { waitFor } from '../support/wait';
import { procNetlink, spawnDaemon, type DaemonProc } from './support/daemon_proc';
import { skipUnless } from '../support/prerequisites';

const SKIP = skipUnless('strace');

const G = 32; // 19, 21–31 are other reliability cases' (31 case 3's), 27–28 the bench's
const G_BIT = 0x80000000;
const TAG = (process.pid * 7919 + 61) >>> 0;
/** Multicasts sent into the daemon while a receive fault is injected, and after. */
const DURING = 1500;
const AFTER = 300;

let d: DaemonProc;
let sub: WsClient;
let sender: NetlinkSocket;
let peer: NetlinkSocket;
const peerGot: { seq: number; data: string }[] = [];
let dir: string;
let rxPort = 0;

before(async () => {
  if (SKIP) return;
  const v = spawnSync('strace', ['-V'], { encoding: 'utf8' });
  assert.equal(v.status, 0, `strace -V: ${v.error?.message ?? v.stderr}`);
  dir = mkdtempSync(path.join(os.tmpdir(), 'nlb-rel-strace-'));
  d = await spawnDaemon(['--auth', 'none', '--dedupe-window-ms', '0']);
  sub = (await connect(d, `/groups?list=${G}`)).client;
  sender = NetlinkSocket.open({ protocol: 2 });
  peer = NetlinkSocket.open({ protocol: 2 });
  peer.on('datagrams', (batch) => {
    for (const dg of batch)
      for (const m of decodeDatagram(dg.data).messages) peerGot.push({ seq: m.header.seq, data: m.payload.toString() });
  });
  rxPort = ((await call(d, 'GET', '/status')).json as { portIds: { rx: number } }).portIds.rx;
});
after(async () => {
  if (SKIP) return;
  sender?.close();
  peer?.close();
  await sub?.close();
  assert.equal(await d.stop(), 0);
});

/** Runs `fn` while strace injects `inject` into the daemon's main thread; returns strace's lines. */
async function withFault<T>(
  syscall: string,
  inject: string,
  fn: () => Promise<T>,
): Promise<{ result: T; injected: number; calls: number }> {
  const out = path.join(dir, `${syscall}-${inject.replace(/[^a-zA-Z0-9]+/g, '_')}.log`);
  const st = spawn(
    'strace',
    ['-p', String(d.pid), '-s', '8', '-e', 'verbose=none', '-e', `trace=${syscall}`, '-e', `inject=${syscall}:${inject}`, '-o', out],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  const exited = new Promise<number | null>((resolve) => st.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    st.stderr!.on('data', (c: Buffer) => {
      err += c.toString();
      if (/attached/.test(err)) resolve();
    });
    void exited.then((code) => reject(new Error(`strace exited ${code}: ${err}`)));
    setTimeout(() => reject(new Error(`strace did not attach within 10 s: ${err}`)), 10000).unref();
  });
  let result: T;
  try {
    result = await fn();
  } finally {
    st.kill('SIGINT'); // strace detaches and lets the process run on
    await exited;
  }
  const lines = readFileSync(out, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${syscall}(`) || l.includes(`<... ${syscall} resumed>`));
  return { result, injected: lines.filter((l) => l.includes('(INJECTED)')).length, calls: lines.length };
}

const messages = (c: WsClient): Frame[] => c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === 'message');
const events = (c: WsClient, type: string): Frame[] => c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === type);

/** Waits for `cond`; past `ms` fails naming `goal`, with `seen()` as the last seen. */
async function until(cond: () => boolean, ms: number, goal: string, seen: () => string): Promise<void> {
  await waitFor(goal, () => (cond() ? true : seen()), { timeoutMs: ms, until: (v) => v === true });
}

/**
 * Sends `n` multicasts to G with nlmsg_pid `pid`, paced, then one marker
 * (nlmsg_pid `pid` + 5, no phase's); resolves when the subscriber has the
 * marker and all n. The marker comes from the same socket after the n, so a
 * duplicate of any of them would have arrived before it: the caller's
 * "each arrived once" needs no wait for absence.
 */
async function multicast(pid: number, n: number): Promise<number[]> {
  for (let i = 0; i < n; i++) {
    sender.send(encodeMessage({ type: 0x10, seq: i, pid, payload: Buffer.from(`m-${pid}-${i}`) }), { groups: G_BIT });
    // Paced on purpose: this case injects receive faults, not an overrun.
    if (i % 50 === 49) await sleep(5);
  }
  const markerPid = (pid + 5) >>> 0;
  sender.send(encodeMessage({ type: 0x10, seq: 0, pid: markerPid, payload: Buffer.from(`marker-${pid}`) }), { groups: G_BIT });
  const mine = (): Frame[] => messages(sub).filter((f) => f.nlmsgPid === pid);
  const marked = (): boolean => messages(sub).some((f) => f.nlmsgPid === markerPid);
  await until(
    () => marked() && mine().length >= n,
    30000,
    `${n} multicasts (nlmsg_pid ${pid}) and the marker after them at the subscriber`,
    () => `${mine().length}/${n}, marker ${marked() ? 'arrived' : 'not yet'}`,
  );
  return mine().map((f) => Number(f.seq));
}

const metric = async (name: string, labels = ''): Promise<number> => {
  const text = (await call(d, 'GET', '/metrics')).text;
  const m = new RegExp(`^${name}${labels.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};
const rxDrops = (): number => procNetlink().find((r) => r.eth === 2 && r.pid === rxPort)?.drops ?? NaN;

const figures: string[] = [];
let phase = 0;
let allPass = true;

/** Every 2nd call (interleaved with real reads), and a run of 300 consecutive calls (back-to-back retries and wake-ups). */
const PATTERNS = [
  { when: '2+2', what: 'every 2nd call' },
  { when: '1..300', what: 'calls 1..300' },
];
const RECEIVE_CASES = ['ENOBUFS', 'EAGAIN', 'EINTR'].flatMap((errno) => PATTERNS.map((p) => ({ errno, ...p })));
for (const { errno, when, what } of RECEIVE_CASES) {
  test(
    `recvmmsg ${errno} (${what}) while ${DURING} multicasts arrive: nothing lost, no false overrun, then delivery goes on`,
    { skip: SKIP },
    async () => {
      const pid = (TAG + 10 * ++phase) >>> 0;
      const overruns0 = await metric('nlbridge_netlink_overruns_total');
      const drops0 = rxDrops();
      const overrunFrames0 = events(sub, 'overrun').length;
      const { result: seqs, injected, calls } = await withFault('recvmmsg', `error=${errno}:when=${when}`, () => multicast(pid, DURING));
      assert.ok(injected > 0, `strace injected no ${errno} (${calls} recvmmsg calls seen)`);
      assert.equal(new Set(seqs).size, DURING, 'each multicast arrived once');
      assert.deepEqual(
        seqs,
        [...seqs].sort((a, b) => a - b),
        'in order',
      );
      assert.ok(d.alive(), 'the daemon is up');
      const drops = rxDrops() - drops0;
      assert.equal(drops, 0, 'the socket dropped nothing');
      assert.equal(events(sub, 'overrun').length, overrunFrames0, 'no overrun told: nothing was lost');
      assert.equal(await metric('nlbridge_netlink_overruns_total'), overruns0, 'no overrun counted');
      // The socket is not stuck once strace has gone.
      const afterSeqs = await multicast(pid + 1, AFTER);
      assert.equal(new Set(afterSeqs).size, AFTER);
      figures.push(
        `recvmmsg ${errno} ${what}: ${injected} of ${calls} calls injected, ${seqs.length}/${DURING} received in order, 0 drops, 0 overrun events, then ${afterSeqs.length}/${AFTER}`,
      );
    },
  );
}

for (const errno of ['EAGAIN', 'ENOBUFS']) {
  test(
    `sendto ${errno} (calls 1..5): POST /send and a WebSocket send answer 503 PEER_BUSY errno ${errno}, nothing phantom arrives, then sends work`,
    { skip: SKIP },
    async () => {
      const errs0 = await metric('nlbridge_send_errors_total', `{code="${errno}"}`);
      const peer0 = peerGot.length;
      const marker = `inj-${errno}-${Date.now()}`;
      const { result, injected } = await withFault('sendto', `error=${errno}:when=1..5`, async () => {
        const toGroup = await call(d, 'POST', '/send', { body: { groups: [G], data: `${marker}-g` } });
        const toPeer = await call(d, 'POST', '/send', { body: { pid: peer.portId, data: `${marker}-p` } });
        const both = await call(d, 'POST', '/send', { body: { groups: [G], pid: peer.portId, data: `${marker}-b` } }); // two sendto
        sub.send(JSON.stringify({ id: marker, groups: [G], data: `${marker}-ws` }));
        const wsAnswer = await sub.next(
          (f) => f.id === marker && (f.type === 'sent' || f.type === 'error'),
          10000,
          'the answer to the WebSocket send',
        );
        return { toGroup, toPeer, both, wsAnswer };
      });
      assert.equal(injected, 5, `strace injected ${injected} ${errno}, expected 5`);
      for (const [name, r, field] of [
        ['group', result.toGroup, 'groups'],
        ['peer', result.toPeer, 'pid'],
        ['group+peer', result.both, 'groups'],
      ] as const) {
        const p = r.json as { code: string; errno: string; field: string; results?: { result: string; code?: string }[] };
        assert.equal(r.status, 503, `${name}: ${r.text}`);
        assert.equal(p.code, 'PEER_BUSY', name);
        assert.equal(p.errno, errno, name);
        assert.equal(p.field, field, name);
        assert.ok(
          p.results && p.results.length > 0 && p.results.every((x) => x.code === errno),
          `${name}: results ${JSON.stringify(p.results)}`,
        );
      }
      const wsProblem = result.wsAnswer.problem as { status: number; code: string; errno: string } | undefined;
      assert.equal(result.wsAnswer.type, 'error', JSON.stringify(result.wsAnswer));
      assert.deepEqual(
        [wsProblem?.status, wsProblem?.code, wsProblem?.errno],
        [503, 'PEER_BUSY', errno],
        'the WebSocket send is told the same',
      );
      assert.equal(await metric('nlbridge_send_errors_total', `{code="${errno}"}`), errs0 + 5, 'each failed sendto counted');
      assert.ok(d.alive());
      // After strace: a WebSocket send and an HTTP send to the group and the peer go through.
      sub.send(JSON.stringify({ id: `${marker}-after`, groups: [G], data: `${marker}-after-ws` }));
      const sent = await sub.next((f) => f.id === `${marker}-after`, 10000, 'the answer to the WebSocket send after the fault');
      assert.equal(sent.type, 'sent', JSON.stringify(sent));
      const ok = await call(d, 'POST', '/send', { body: { groups: [G], pid: peer.portId, data: `${marker}-after` } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal((ok.json as { ok: boolean }).ok, true);
      const arrived = (): boolean =>
        messages(sub).some((f) => f.data === `${marker}-after`) &&
        messages(sub).some((f) => f.data === `${marker}-after-ws`) &&
        peerGot.some((m) => m.data === `${marker}-after`);
      await until(
        arrived,
        5000,
        'the sends after the fault (WebSocket and POST) at the subscriber and the peer',
        () =>
          `subscriber: ${messages(sub).filter((f) => String(f.data).startsWith(`${marker}-after`)).length} of 2, peer: ${peerGot.filter((m) => m.data === `${marker}-after`).length} of 1`,
      );
      // The injected sends never reached anyone (the syscall did not run).
      const phantom =
        messages(sub).filter((f) => String(f.data).startsWith(marker) && !String(f.data).startsWith(`${marker}-after`)).length +
        peerGot.slice(peer0).filter((m) => m.data.startsWith(marker) && !m.data.startsWith(`${marker}-after`)).length;
      assert.equal(phantom, 0, 'no injected send was delivered');
      figures.push(
        `sendto ${errno}: ${injected} injected → 3/3 POST /send 503 PEER_BUSY errno ${errno} (group, peer, both) and the WebSocket send an error frame with the same, metric +5, 0 phantom deliveries; then WebSocket and POST /send delivered`,
      );
    },
  );
}

test('summary: the daemon survived every fault', { skip: SKIP }, async () => {
  const h = await call(d, 'GET', '/healthz');
  const cases = RECEIVE_CASES.length + 2;
  allPass = d.alive() && h.status === 200 && figures.length === cases;
  recordCase({
    name: '6b. Injected faults',
    figure: `strace -e inject on the daemon's main thread — ${figures.join('; ')}; /healthz ${h.status}`,
    pass: allPass,
  });
  assert.equal(figures.length, cases, 'every fault case passed');
  assert.equal(h.status, 200);
});

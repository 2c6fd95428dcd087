// Case 6: overrun. 100,000 multicasts from a C sender into a daemon process
// whose netlink receive buffer is 64 KiB. The daemon stays up, logs one line
// per episode, its loss count equals the socket's Drops in /proc/net/netlink
// exactly, every subscriber (of the flooded group and of another one: the
// socket is shared) is told that count, and delivery then resumes without loss.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { call, connect, sleep, type Frame, type WsClient } from '../host/support/daemon_harness';
import { buildFlood } from '../host/support/netlink';
import { recordCase } from './support/report';
import { procNetlink, spawnDaemon, type DaemonProc } from './support/daemon_proc';

const G_FLOOD = 21; // bench/ uses 27 and 28
const G_OTHER = 22;
const COUNT = 100_000;
const PAYLOAD = 64;
const TAG = (process.pid * 7919 + 17) >>> 0;
const bit = (g: number): number => (1 << (g - 1)) >>> 0;

let d: DaemonProc;
const frames = (c: WsClient, type: string): Frame[] => c.all.filter((f): f is Frame => !Buffer.isBuffer(f) && f.type === type);
const lostOf = (c: WsClient): number => frames(c, 'overrun').reduce((s, f) => s + Number(f.lost), 0);
// Frames the daemon dropped for a client over its WebSocket backlog, and told it.
const droppedOf = (c: WsClient): number => frames(c, 'dropped').reduce((s, f) => s + Number(f.count), 0);

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(20);
  }
}

before(async () => {
  d = await spawnDaemon(['--auth', 'none', '--rcvbuf', '65536', '--dedupe-window-ms', '0']);
});
after(async () => {
  assert.equal(await d.stop(), 0);
});

test(`case 6: ${COUNT.toLocaleString('en')} multicasts into a 64 KiB receive buffer`, async () => {
  const a = (await connect(d, `/groups?list=${G_FLOOD}`)).client;
  const b = (await connect(d, `/groups?list=${G_FLOOD}&batch=1`)).client;
  const other = (await connect(d, `/groups?list=${G_OTHER}`)).client;
  const status = (await call(d, 'GET', '/status')).json as { portIds: { rx: number } };
  const rxPort = status.portIds.rx;
  const row = (): ReturnType<typeof procNetlink>[number] => {
    const r = procNetlink().find((x) => x.eth === 2 && x.pid === rxPort);
    assert.ok(r, `rx port ${rxPort} not in /proc/net/netlink`);
    return r;
  };
  const drops0 = row().drops;

  const bin = buildFlood();
  const res = await new Promise<{ sent: number; failed: number; seconds: number }>((resolve, reject) =>
    execFile(bin, [String(COUNT), '0', String(bit(G_FLOOD)), String(PAYLOAD), String(TAG)], (err, stdout, stderr) =>
      err && !stdout ? reject(new Error(`${err.message} ${stderr}`)) : resolve(JSON.parse(stdout) as { sent: number; failed: number; seconds: number }),
    ),
  );
  assert.equal(res.sent, COUNT);
  const mine = (c: WsClient): number => frames(c, 'message').filter((f) => f.nlmsgPid === TAG && f.length === PAYLOAD).length;
  // Settled: the drop counter, the loss told to the client and what it received add up to what was sent.
  // The batched client b may also be told of frames dropped over its WebSocket
  // backlog: the daemon outruns this test's client when the host is busy
  // (seen: 82 of 100,000 in a run after the addon flood tests).
  await until(
    () => mine(a) + lostOf(a) >= COUNT && mine(b) + lostOf(b) + droppedOf(b) >= COUNT,
    15000,
    `received + lost = ${COUNT} (a: ${mine(a)} + ${lostOf(a)}; b: ${mine(b)} + ${lostOf(b)} + dropped ${droppedOf(b)})`,
  );
  await sleep(300);
  const drops = row().drops - drops0;
  const lost = lostOf(a);
  assert.ok(d.alive(), 'the daemon is up');
  assert.ok(lost > 0, 'the flood overran the buffer');
  assert.equal(lost, drops, `told ${lost} lost, /proc/net/netlink Drops grew by ${drops}`);
  assert.equal(mine(a) + lost, COUNT);
  assert.equal(lostOf(b), lost, 'the second subscriber of the group is told the same count');
  assert.equal(mine(b) + droppedOf(b), mine(a), 'b received or was told dropped every message a received');
  assert.equal(lostOf(other), lost, 'a subscriber of another group is told too (the socket is shared)');
  assert.equal(frames(a, 'dropped').length, 0, 'no WebSocket-side loss muddles the count');
  const metrics = (await call(d, 'GET', '/metrics')).text;
  assert.match(metrics, new RegExp(`^nlbridge_netlink_overrun_lost_messages_total ${lost}$`, 'm'));
  const episodes = Number(/^nlbridge_netlink_overruns_total (\d+)$/m.exec(metrics)?.[1]);
  const logLines = d.logs.filter((l) => /overr?an|overrun/.test(String(l.msg)));
  // Reports less than a second apart are one episode: at most one line per started second of flooding, plus its end line.
  const maxLines = 2 * (Math.ceil(res.seconds) + 1);
  assert.ok(logLines.length >= 1 && logLines.length <= maxLines, `${logLines.length} overrun log lines for ${episodes} reports over ${res.seconds.toFixed(2)} s`);
  assert.ok(logLines.length < lost / 100, 'not one line per message');

  // Delivery resumes: paced traffic after the queue drained arrives whole, and the drop counter stays put.
  const sender = NetlinkSocket.open({ protocol: 2 });
  const AFTER = 2000;
  try {
    for (let i = 0; i < AFTER; i++) {
      sender.send(encodeMessage({ type: 0x10, seq: i, pid: TAG + 1, payload: Buffer.from(`after-${i}`) }), { groups: bit(G_FLOOD) });
      if (i % 100 === 99) await sleep(5);
    }
  } finally {
    sender.close();
  }
  const after_ = (c: WsClient): number => frames(c, 'message').filter((f) => f.nlmsgPid === TAG + 1).length;
  await until(() => after_(a) >= AFTER && after_(b) >= AFTER, 10000, `${AFTER} messages after the overrun (have ${after_(a)})`);
  assert.equal(row().drops - drops0, drops, 'no further drops');
  assert.equal(lostOf(a), lost, 'no further overrun');
  const received = mine(a);
  for (const c of [a, b, other]) await c.close();
  recordCase({
    name: '6. Overrun',
    figure:
      `${COUNT} multicasts in ${res.seconds.toFixed(2)} s into a 64 KiB rcvbuf: ${received} received + ${lost} lost = ${COUNT}; ` +
      `loss told = /proc/net/netlink Drops = metric = ${lost}; 3/3 subscribers told (incl. another group); ` +
      `${logLines.length} log line(s) for ${episodes} overrun reports; then ${AFTER}/${AFTER} delivered with 0 new drops`,
    pass: true,
  });
});

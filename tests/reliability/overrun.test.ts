// Case 6: overrun. 100,000 multicasts from a C sender into a daemon process
// whose netlink receive buffer is 64 KiB. The daemon is stopped (SIGSTOP)
// from the flood's start until the kernel counts the first drop, then reads
// under the rest of it: a fast daemon on a slow host kept up with the whole
// flood once (a CI run with 0 lost), and the case tests the loss's
// accounting, so the loss must be certain. The daemon stays up, logs one line
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
import { waitFor } from '../support/wait';
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

/** Waits for `cond`; past `ms` fails naming `goal`, with `seen()` (the tallies) as the last seen. */
async function until(cond: () => boolean, ms: number, goal: string, seen: () => string): Promise<void> {
  await waitFor(goal, () => (cond() ? true : seen()), { timeoutMs: ms, until: (v) => v === true });
}

/**
 * A client's frames, tallied as they come (re-filtering every frame each
 * 20 ms cost this process more the more had arrived, while it must keep
 * reading its sockets): the flood's messages (nlmsg_pid tag), the paced ones
 * sent after it (tag + 1), and the loss told.
 */
class Tally {
  private seen = 0;
  received = 0;
  resumed = 0;
  lost = 0;
  dropped = 0;
  constructor(
    private readonly c: WsClient,
    private readonly tag: number,
  ) {}

  update(): this {
    const all = this.c.all;
    for (; this.seen < all.length; this.seen++) {
      const f = all[this.seen];
      if (Buffer.isBuffer(f)) continue;
      if (f.type === 'message' && f.nlmsgPid === this.tag && f.length === PAYLOAD) this.received++;
      else if (f.type === 'message' && f.nlmsgPid === this.tag + 1) this.resumed++;
      else if (f.type === 'overrun') this.lost += Number(f.lost);
      else if (f.type === 'dropped') this.dropped += Number(f.count);
    }
    return this;
  }

  /** Received, or told lost (netlink overrun) or dropped (WebSocket backlog). */
  accounted(): number {
    return this.update().received + this.lost + this.dropped;
  }

  toString(): string {
    return `${this.received} received + ${this.lost} told lost + ${this.dropped} told dropped`;
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
  let flooding = true;
  let continued = false;
  const stoppedAt = performance.now();
  let stoppedMs = 0;
  let stoppedUntil: string | false;
  process.kill(d.pid, 'SIGSTOP');
  const resume = (): void => {
    if (continued) return;
    process.kill(d.pid, 'SIGCONT');
    continued = true;
    stoppedMs = performance.now() - stoppedAt;
  };
  const flood = new Promise<{ sent: number; failed: number; seconds: number }>((resolve, reject) =>
    execFile(bin, [String(COUNT), '0', String(bit(G_FLOOD)), String(PAYLOAD), String(TAG)], (err, stdout, stderr) => {
      flooding = false;
      if (err && !stdout) reject(new Error(`${err.message} ${stderr}`));
      else resolve(JSON.parse(stdout) as { sent: number; failed: number; seconds: number });
    }),
  );
  let res: { sent: number; failed: number; seconds: number };
  try {
    // The first drop, or the flood's end (its 100,000 datagrams cannot all fit in 64 KiB): either way the buffer overran.
    stoppedUntil = await waitFor(
      'the first drop at the stopped daemon, or the flood over',
      () => (row().drops > drops0 ? 'the first drop' : !flooding && "the flood's end"),
      { timeoutMs: 30_000, intervalMs: 1 },
    );
    resume();
    res = await flood;
  } finally {
    resume();
  }
  assert.equal(res.sent, COUNT);
  // Settled: what each client received, plus the loss it was told, adds up
  // to what was sent. Besides the netlink overrun (the same count for all),
  // a client may be told of frames dropped over its WebSocket backlog when
  // this test's process reads slower than the daemon writes (seen on a busy
  // host: 82 of 100,000 for b; 4,928 for a; uncounted, they made a clean-clone
  // CI time out after case 9's VM); those are told too, and counted.
  const ta = new Tally(a, TAG);
  const tb = new Tally(b, TAG);
  await until(
    () => ta.accounted() >= COUNT && tb.accounted() >= COUNT,
    60_000,
    `received + told = ${COUNT} at both subscribers`,
    () => `a: ${ta}; b: ${tb}`,
  );
  // No settle wait: the flood is over (its sender exited) and the kernel
  // counted its drops as it went, so Drops is final; that nothing more of
  // the flood arrives is checked again below, after the paced messages,
  // which reach the rx socket after every datagram of the flood.
  const drops = row().drops - drops0;
  const lost = ta.lost;
  assert.ok(d.alive(), 'the daemon is up');
  assert.ok(lost > 0, 'the flood overran the buffer');
  assert.equal(lost, drops, `told ${lost} lost, /proc/net/netlink Drops grew by ${drops}`);
  assert.equal(ta.accounted(), COUNT, `a: ${ta}`);
  assert.equal(tb.accounted(), COUNT, `b: ${tb}`);
  assert.equal(tb.lost, lost, 'the second subscriber of the group is told the same count');
  assert.equal(
    tb.received + tb.dropped,
    ta.received + ta.dropped,
    'a and b were each sent (or told dropped) every message the daemon received',
  );
  assert.equal(lostOf(other), lost, 'a subscriber of another group is told too (the socket is shared)');
  const metrics = (await call(d, 'GET', '/metrics')).text;
  assert.match(metrics, new RegExp(`^nlbridge_netlink_overrun_lost_messages_total ${lost}$`, 'm'));
  const episodes = Number(/^nlbridge_netlink_overruns_total (\d+)$/m.exec(metrics)?.[1]);
  const logLines = d.logs.filter((l) => /overr?an|overrun/.test(String(l.msg)));
  // Reports less than a second apart are one episode: at most one line per started second of flooding, plus its end line.
  const maxLines = 2 * (Math.ceil(res.seconds) + 1);
  assert.ok(
    logLines.length >= 1 && logLines.length <= maxLines,
    `${logLines.length} overrun log lines for ${episodes} reports over ${res.seconds.toFixed(2)} s`,
  );
  assert.ok(logLines.length < lost / 100, 'not one line per message');

  // Delivery resumes: paced traffic after the queue drained arrives whole, and the drop counter stays put.
  const sender = NetlinkSocket.open({ protocol: 2 });
  const AFTER = 2000;
  try {
    for (let i = 0; i < AFTER; i++) {
      sender.send(encodeMessage({ type: 0x10, seq: i, pid: TAG + 1, payload: Buffer.from(`after-${i}`) }), { groups: bit(G_FLOOD) });
      // Paced on purpose (a rate, not a wait): this phase shows delivery after an overrun, not a second one.
      if (i % 100 === 99) await sleep(5);
    }
  } finally {
    sender.close();
  }
  await until(
    () => ta.update().resumed >= AFTER && tb.update().resumed >= AFTER,
    10000,
    `${AFTER} messages after the overrun at a and b`,
    () => `a has ${ta.resumed} (${ta}, close ${a.closeCode}), b has ${tb.resumed} (${tb}, close ${b.closeCode})`,
  );
  assert.equal(row().drops - drops0, drops, 'no further drops');
  assert.equal(ta.update().lost, lost, 'no further overrun');
  // Absence after a positive marker: the paced messages came after the whole flood.
  assert.equal(ta.accounted(), COUNT, `a, after the paced messages: ${ta}`);
  assert.equal(tb.accounted(), COUNT, `b, after the paced messages: ${tb}`);
  const received = ta.received;
  for (const c of [a, b, other]) await c.close();
  recordCase({
    name: '6. Overrun',
    figure:
      `${COUNT} multicasts in ${res.seconds.toFixed(2)} s into a 64 KiB rcvbuf (daemon stopped for its first ${stoppedMs.toFixed(0)} ms, until ${stoppedUntil}): ${received} received + ${lost} lost${ta.dropped ? ` + ${ta.dropped} dropped at the WebSocket backlog (told)` : ''} = ${COUNT}; ` +
      `loss told = /proc/net/netlink Drops = metric = ${lost}; 3/3 subscribers told (incl. another group); ` +
      `${logLines.length} log line(s) for ${episodes} overrun reports; then ${AFTER}/${AFTER} delivered with 0 new drops`,
    pass: true,
  });
});

// restrictNetlink (addon/src/seccomp.cc): after it, socket(AF_NETLINK) opens
// only the listed protocols, on every thread; the other CAP_NET_ADMIN paths
// through sockets are closed; Node keeps working. A seccomp filter cannot be
// removed, so everything that installs one runs in a child process. A C probe
// (built here) makes the raw syscalls JavaScript cannot, once unfiltered as
// a control (this test runs as root: each call must succeed or fail for a
// reason other than EPERM there) and once as a child of the filtered
// process, which inherits the filter.
//
// Run in a private network namespace (the probe sets lo's flags to what they
// are): unshare -n sh -c 'ip link set lo up && node --test dist/tests/host/addon_seccomp.test.js'

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as os from 'node:os';
import { ADDON_INDEX, ROOT } from './support/netlink';
import { buildSeccompProbe } from './support/seccomp_probe';
import { isRealRoot } from '../support/prerequisites';

const EPERM = os.constants.errno.EPERM;

/** Probes that fail with EPERM under the filter; unfiltered (as root) they must not. */
const REFUSED = [
  'netlink_route',
  'netlink_netfilter',
  'siocsifflags_inet',
  'siocsifflags_unix',
  'ipt_set_replace',
  'ip6t_set_replace',
  'so_mark',
  'tcp_repair',
  'ip_transparent',
  'ip_xfrm_policy',
  'io_uring_setup',
  'setns_uts',
  'setns_any',
  'x32_getpid',
  'i386_getpid',
];
/** Probes that succeed with and without the filter. */
const ALLOWED = ['netlink_usersock', 'socketpair_unix', 'siocgifflags', 'siocgifindex', 'fionbio', 'so_rcvbufforce', 'ip_ttl', 'setns_net'];
/** Only under the filter: unfiltered, root would autoload the af_key module. */
const FILTERED_ONLY = ['af_key'];

let probe = '';

function runProbe(names: string[]): Record<string, number> {
  const out = execFileSync(probe, names, { encoding: 'utf8' });
  return Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
  );
}

before(() => {
  probe = buildSeccompProbe();
});

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runChild(src: string, env: NodeJS.ProcessEnv = {}, wrapper: string[] = []): Promise<ChildRun> {
  return new Promise((resolve) => {
    const argv = [...wrapper, process.execPath, '-e', src];
    const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ADDON_INDEX, ROOT, PROBE: probe, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// What each attempt gave: 'ok' or the error's name/code/errno/syscall/message.
const CHILD_PRELUDE = String.raw`
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const addon = require(process.env.ADDON_INDEX);
const outcome = (fn) => { try { const v = fn(); return { ok: true, value: v }; } catch (e) { return { ok: false, name: e.name, isTypeError: e instanceof TypeError, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }; } };
const openProto = (protocol) => outcome(() => { const s = addon.NetlinkSocket.open({ protocol }); s.close(); return s.portId; });
const seccompOf = (task) => /Seccomp:\s+(\d)/.exec(fs.readFileSync('/proc/self/task/' + task + '/status', 'utf8'))[1];
const WORKER = "const { parentPort, workerData } = require('node:worker_threads');" +
  "const addon = require(workerData.index);" +
  "const openProto = (protocol) => { try { const s = addon.NetlinkSocket.open({ protocol }); s.close(); return 'ok'; } catch (e) { return e.code + ' ' + e.errno + ' ' + e.syscall; } };" +
  "const run = () => parentPort.postMessage({ route: openProto(0), netfilter: openProto(12), usersock: openProto(2) });" +
  "if (workerData.wait) parentPort.once('message', run); else run();";
const startWorker = (wait) => new Worker(WORKER, { eval: true, workerData: { index: process.env.ADDON_INDEX, wait } });
const answer = (w) => new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
`;

test('restrictNetlink({ protocols: [2] }): USERSOCK opens, ROUTE and NETFILTER get EPERM, on every thread (TSYNC), in workers started before and after', async () => {
  const r = await runChild(`${CHILD_PRELUDE}
    (async () => {
      const out = {};
      const early = startWorker(true);
      await new Promise((resolve) => early.once('online', resolve));
      out.before = { route: openProto(0) };
      out.result = addon.restrictNetlink({ protocols: [2] });
      out.main = { usersock: openProto(2), route: openProto(0), netfilter: openProto(12) };
      const earlyAnswer = answer(early);
      early.postMessage('go');
      out.early = await earlyAnswer;
      out.late = await answer(startWorker(false));
      out.threads = fs.readdirSync('/proc/self/task').map(seccompOf);
      await early.terminate();
      process.stdout.write(JSON.stringify(out));
    })().catch((e) => { process.stderr.write(String(e.stack)); process.exit(3); });
  `);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<
    string,
    Record<string, { ok: boolean; code?: string; errno?: number; syscall?: string; name?: string } | string>
  > & { threads: string[] };
  // Before: the control, NETLINK_ROUTE opens (root in a private netns).
  assert.equal((out.before.route as { ok: boolean }).ok, true);
  assert.deepEqual(out.result, { protocols: [2], arch: 'x86_64', alreadyRestricted: false });
  assert.equal((out.main.usersock as { ok: boolean }).ok, true);
  for (const k of ['route', 'netfilter'] as const) {
    const e = out.main[k] as { ok: boolean; name: string; code: string; errno: number; syscall: string };
    assert.equal(e.ok, false, k);
    assert.equal(e.name, 'NetlinkError');
    assert.equal(e.code, 'EPERM');
    assert.equal(e.errno, -EPERM);
    assert.equal(e.syscall, 'socket');
  }
  // A worker running before the call (its thread synchronised by TSYNC) and one started after.
  for (const w of [out.early, out.late]) {
    assert.deepEqual(w, { route: `EPERM -${EPERM} socket`, netfilter: `EPERM -${EPERM} socket`, usersock: 'ok' });
  }
  // Every thread (libuv's pool, V8's workers, the workers) is in filter mode (2).
  assert.ok(out.threads.length >= 5, `threads: ${out.threads.join()}`);
  assert.deepEqual([...new Set(out.threads)], ['2']);
});

test('--netns under the filter: a socket opened later through NetworkNamespace (setns in, socket, setns home) lands in that namespace; other protocols are refused there too', async (t) => {
  // ip netns add mounts under /run/netns in the host's mount namespace: a user namespace may not.
  if (!isRealRoot()) return t.skip('needs the real root (ip netns add)');
  const name = `nlb-${process.pid}-seccomp`;
  execFileSync('ip', ['netns', 'add', name]);
  t.after(() => execFileSync('ip', ['netns', 'delete', name]));
  const r = await runChild(`${CHILD_PRELUDE}
    const ns = addon.NetworkNamespace.open('/run/netns/${name}');
    const home = fs.readlinkSync('/proc/thread-self/ns/net');
    addon.restrictNetlink({ protocols: [2] });
    const out = {};
    const inNs = addon.NetlinkSocket.open({ protocol: 2, groups: 1 << 6, netns: ns });
    const atHome = addon.NetlinkSocket.open({ protocol: 2 });
    out.route = outcome(() => addon.NetlinkSocket.open({ protocol: 0, netns: ns }).close());
    out.stillHome = fs.readlinkSync('/proc/thread-self/ns/net') === home;
    // A broadcast at home does not reach the socket in the namespace.
    out.homeSend = atHome.send(addon.encodeMessage({ type: 16 }), { groups: 1 << 6 });
    out.inNsPort = inNs.portId;
    inNs.on('datagrams', (b) => { out.crossed = b.length; });
    setTimeout(() => { inNs.close(); atHome.close(); process.stdout.write(JSON.stringify(out)); }, 300);
  `);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(out.stillHome, true, 'the thread went home');
  assert.deepEqual(
    { code: (out.route as { code: string }).code, syscall: (out.route as { syscall: string }).syscall },
    { code: 'EPERM', syscall: 'socket' },
  );
  assert.deepEqual(out.homeSend, { broadcastGroup: 7, unicast: 'no-kernel-endpoint' });
  assert.equal(out.crossed, undefined, 'nothing crossed namespaces');
});

test('bad arguments throw TypeError naming the argument and install nothing', async () => {
  const r = await runChild(`${CHILD_PRELUDE}
    const native = require(require('node:path').join(process.env.ROOT, 'build/Release/nlbridge_netlink.node'));
    const out = {
      ts: [undefined, null, 2, {}, { protocols: 2 }, { protocols: '2' }, { protocols: [32] }, { protocols: [-1] }, { protocols: [1.5] }, { protocols: ['2'] }, { protocols: [2, NaN] }]
        .map((a) => outcome(() => addon.restrictNetlink(a))),
      // Argument lists: none, not an array, a nested array, out of range, not an integer, a string.
      native: [[], ['x'], [2], [[[2]]], [[32]], [[-1]], [[0.5]], [['2']]].map((args) => outcome(() => native.restrictNetlink(...args))),
    };
    out.seccomp = seccompOf(process.pid);
    out.route = openProto(0);
    process.stdout.write(JSON.stringify(out));
  `);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    ts: Array<{ ok: boolean; isTypeError: boolean; message: string }>;
    native: Array<{ ok: boolean; isTypeError: boolean; message: string }>;
    seccomp: string;
    route: { ok: boolean };
  };
  assert.equal(out.ts.length, 11);
  assert.equal(out.native.length, 8);
  out.ts.forEach((o, i) => {
    assert.equal(o.ok, false, `ts case ${i}`);
    assert.equal(o.isTypeError, true, `ts case ${i}: ${o.message}`);
    assert.match(o.message, i < 3 ? /"opts"/ : /"opts\.protocols"/, `ts case ${i}`);
  });
  out.native.forEach((o, i) => {
    assert.equal(o.ok, false, `native case ${i}`);
    assert.equal(o.isTypeError, true, `native case ${i}: ${o.message}`);
    assert.match(o.message, /"protocols"/);
  });
  assert.equal(out.seccomp, '0', 'a refused call installed a filter');
  assert.equal(out.route.ok, true);
});

test('a second call: same protocols → alreadyRestricted, nothing added; other protocols → EALREADY', async () => {
  const r = await runChild(`${CHILD_PRELUDE}
    const out = {};
    out.first = addon.restrictNetlink({ protocols: [2, 2] });
    out.same = addon.restrictNetlink({ protocols: [2] });
    out.wider = outcome(() => addon.restrictNetlink({ protocols: [0, 2] }));
    out.other = outcome(() => addon.restrictNetlink({ protocols: [12] }));
    out.filters = /Seccomp_filters:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
    out.route = openProto(0);
    process.stdout.write(JSON.stringify(out));
  `);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<
    string,
    { ok?: boolean; alreadyRestricted?: boolean; protocols?: number[]; name?: string; code?: string; errno?: number; syscall?: string }
  > & { filters: string };
  assert.deepEqual(out.first.protocols, [2]);
  assert.equal(out.first.alreadyRestricted, false);
  assert.equal(out.same.alreadyRestricted, true);
  for (const k of ['wider', 'other']) {
    assert.equal(out[k].ok, false, k);
    assert.equal(out[k].name, 'NetlinkError');
    assert.equal(out[k].code, 'EALREADY');
    assert.equal(out[k].errno, -os.constants.errno.EALREADY);
    assert.equal(out[k].syscall, 'seccomp');
  }
  assert.equal(out.filters, '1');
  assert.equal(out.route.code, 'EPERM');
});

test(
  'other CAP_NET_ADMIN paths (ioctl, netfilter sockopts, SO_MARK, TCP_REPAIR, IP_TRANSPARENT, IP_XFRM_POLICY, AF_KEY, io_uring, x32/i386) get EPERM; Node keeps working',
  {
    skip: isRealRoot()
      ? false
      : 'needs the real root: the unfiltered control must hold CAP_NET_ADMIN in the host (SO_RCVBUFFORCE is checked there, not in a user namespace)',
  },
  async (t) => {
    // The control: without the filter root may do all of it (or fails for
    // other reasons: ENOPROTOOPT without ip_tables, EINVAL for the empty
    // table, ENOSYS for x32 on a kernel without it).
    const control = runProbe([...REFUSED, ...ALLOWED]);
    for (const k of [...REFUSED, ...ALLOWED]) assert.notEqual(control[k], EPERM, `${k} without the filter: EPERM`);
    for (const k of ALLOWED) assert.equal(control[k], 0, `${k} without the filter`);
    t.diagnostic(`unfiltered: ${JSON.stringify(control)}`);

    const r = await runChild(
      `${CHILD_PRELUDE}
    const { execFileSync } = require('node:child_process');
    const dns = require('node:dns');
    const net = require('node:net');
    (async () => {
      const out = {};
      out.result = addon.restrictNetlink({ protocols: [2] });
      out.probe = execFileSync(process.env.PROBE, process.env.PROBE_ARGS.split(' '), { encoding: 'utf8' });
      // getaddrinfo with AI_ADDRCONFIG opens NETLINK_ROUTE (glibc's
      // __check_pf) and, refused, assumes both families.
      out.lookup = await dns.promises.lookup('localhost', { hints: dns.ADDRCONFIG, all: true });
      // libuv: FIONBIO/FIOCLEX, accept4, connect.
      out.echo = await new Promise((resolve, reject) => {
        const srv = net.createServer((c) => c.pipe(c)).listen(0, '127.0.0.1', () => {
          const c = net.connect(srv.address().port, '127.0.0.1', () => c.end('ping'));
          let got = '';
          c.on('data', (d) => (got += d)).on('end', () => { srv.close(); resolve(got); }).on('error', reject);
        });
      });
      // The daemon's ?unicast=1 sockets: SO_RCVBUFFORCE beyond rmem_max still works.
      const s = addon.NetlinkSocket.open({ protocol: 2 });
      out.rcvbuf = s.setReceiveBuffer(16 << 20);
      s.close();
      out.rmemMax = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
      out.networkInterfaces = outcome(() => Object.keys(require('node:os').networkInterfaces()));
      process.stdout.write(JSON.stringify(out));
    })().catch((e) => { process.stderr.write(String(e.stack)); process.exit(3); });
  `,
      { PROBE_ARGS: [...REFUSED, ...ALLOWED, ...FILTERED_ONLY].join(' ') },
    );
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      result: { protocols: number[] };
      probe: string;
      lookup: Array<{ address: string; family: number }>;
      echo: string;
      rcvbuf: number;
      rmemMax: number;
      networkInterfaces: { ok: boolean; code?: string; message?: string };
    };
    assert.deepEqual(out.result.protocols, [2]);
    const filtered = Object.fromEntries(
      out.probe
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], Number(l.split(' ')[1])]),
    );
    t.diagnostic(`filtered: ${JSON.stringify(filtered)}`);
    for (const k of [...REFUSED, ...FILTERED_ONLY]) {
      // This kernel may lack the int 0x80 gate (the control then dies of
      // SIGSEGV, 1011): nothing to contain there.
      if (k === 'i386_getpid' && control[k] >= 1000) {
        assert.equal(filtered[k], control[k]);
        t.diagnostic(`i386 ABI absent here (int 0x80 -> signal ${control[k] - 1000}): its refusal is not observable`);
        continue;
      }
      assert.equal(filtered[k], EPERM, `${k} under the filter: ${filtered[k]}`);
    }
    for (const k of ALLOWED) assert.equal(filtered[k], 0, `${k} under the filter`);
    assert.ok(
      out.lookup.some((a) => a.address === '127.0.0.1'),
      JSON.stringify(out.lookup),
    );
    assert.equal(out.echo, 'ping');
    assert.ok(out.rcvbuf > 2 * out.rmemMax, `SO_RCVBUFFORCE: ${out.rcvbuf} <= 2 x rmem_max ${out.rmemMax}`);
    // Not contained, but documented: os.networkInterfaces() needs NETLINK_ROUTE.
    assert.equal(out.networkInterfaces.ok, false);
    assert.match(out.networkInterfaces.message ?? '', /uv_interface_addresses/);
  },
);

test('seccomp(2) refused by an outer filter (systemd without SystemCallFilter=seccomp): NetlinkError EPERM naming the cause, nothing installed', async () => {
  const r = await runChild(
    `${CHILD_PRELUDE}
    const out = { attempt: outcome(() => addon.restrictNetlink({ protocols: [2] })) };
    out.retry = outcome(() => addon.restrictNetlink({ protocols: [2] }));
    out.filters = /Seccomp_filters:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1];
    out.route = openProto(0);
    process.stdout.write(JSON.stringify(out));
  `,
    {},
    [probe, '--exec-without-seccomp'],
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    attempt: { ok: boolean; name: string; code: string; errno: number; syscall: string; message: string };
    retry: { ok: boolean; code: string };
    filters: string;
    route: { ok: boolean };
  };
  assert.equal(out.attempt.ok, false);
  assert.equal(out.attempt.name, 'NetlinkError');
  assert.equal(out.attempt.code, 'EPERM');
  assert.equal(out.attempt.errno, -EPERM);
  assert.equal(out.attempt.syscall, 'seccomp');
  assert.match(out.attempt.message, /SystemCallFilter=/);
  // A failed call leaves no state behind: the retry fails the same way, not EALREADY.
  assert.equal(out.retry.code, 'EPERM');
  assert.equal(out.filters, '1', 'only the outer filter');
  assert.equal(out.route.ok, true);
});

test('an open io_uring (UV_USE_IO_URING=1) is refused with EBUSY: its submissions would bypass the filter', async () => {
  const r = await runChild(
    `${CHILD_PRELUDE}
    fs.readFile('/proc/self/status', () => {
      const out = { attempt: outcome(() => addon.restrictNetlink({ protocols: [2] })) };
      out.seccomp = seccompOf(process.pid);
      process.stdout.write(JSON.stringify(out));
    });
  `,
    { UV_USE_IO_URING: '1' },
  );
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as {
    attempt: { ok: boolean; name: string; code: string; syscall: string; message: string };
    seccomp: string;
  };
  assert.equal(out.attempt.ok, false);
  assert.equal(out.attempt.name, 'NetlinkError');
  assert.equal(out.attempt.code, 'EBUSY');
  assert.match(out.attempt.message, /UV_USE_IO_URING/);
  assert.equal(out.seccomp, '0');
});

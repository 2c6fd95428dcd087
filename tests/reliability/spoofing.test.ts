// Case 6d: spoofing. An unprivileged sender (nobody, no capabilities) on
// NETLINK_USERSOCK forges nlmsg_pid 0 (the kernel's) or the bridge's port id,
// from an auto-assigned port and from squatted port ids it bound itself. The
// daemon's frames must report the sender's real port id and uid, never port 0
// and never fromBridge.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Frame, type WsClient } from '../host/support/daemon_harness';
import { recordCase } from './support/report';
import { spawnDaemon, type DaemonProc } from './support/daemon_proc';
import { skipUnless } from '../support/prerequisites';

const GROUP = 29;
const NOBODY = 65534;
const SKIP = skipUnless('nobody', 'python3');
const TAG = `spoof-${process.pid}-${Date.now().toString(36)}`;

/** A python3 sender run as nobody: binds `bindPort` (0 = let the kernel pick), sends one DATA message per target. */
const SENDER = `
import socket, struct, sys, json
bind_port, nlmsg_pid, marker, targets = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 2)
s.bind((bind_port, 0))
real = s.getsockname()[0]
payload = marker.encode()
msg = struct.pack('=IHHII', 16 + len(payload), 16, 1, 4242, nlmsg_pid) + payload
msg += b'\\0' * (-len(msg) % 4)
for pid, groups in targets:
    try:
        s.sendto(msg, (pid, groups))
    except ConnectionRefusedError:
        pass  # a group send also unicasts to port 0: no kernel socket on usersock, after delivery
print(real)
`;

function sendAsNobody(bindPort: number, nlmsgPid: number, marker: string, targets: [number, number][]): number {
  const out = execFileSync(
    'setpriv',
    [
      '--reuid=nobody',
      '--regid=nogroup',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '/usr/bin/python3',
      '-c',
      SENDER,
      String(bindPort),
      String(nlmsgPid >>> 0),
      marker,
      JSON.stringify(targets),
    ],
    // cwd: somewhere nobody may be (the checkout may be a 0700 clone).
    { encoding: 'utf8', timeout: 10000, cwd: '/' },
  );
  return Number(out.trim());
}

let d: DaemonProc;
let group: WsClient;
let uni: WsClient;
let uniPort: number;
let bridgePort: number;

before(async () => {
  if (SKIP) return;
  d = await spawnDaemon(['--auth', 'none']);
  const g = await connect(d, `/groups/${(1 << (GROUP - 1)) >>> 0}`);
  group = g.client;
  bridgePort = g.hello.bridgePortId as number;
  const u = await connect(d, `/groups/${(1 << (GROUP - 1)) >>> 0}?unicast=1`);
  uni = u.client;
  uniPort = u.hello.portId as number;
});
after(async () => {
  if (SKIP) return;
  await group.close();
  await uni.close();
  assert.equal(await d.stop(), 0);
});

test('forged nlmsg_pid 0 / bridge port from auto and squatted ports: frames carry the real port id and uid', { skip: SKIP }, async () => {
  const cases: { bind: number; forged: number; what: string }[] = [
    { bind: 0, forged: 0, what: 'auto port, nlmsg_pid 0' },
    { bind: 1, forged: 0, what: 'squatted port 1, nlmsg_pid 0' },
    { bind: 4242, forged: 0, what: 'squatted port 4242, nlmsg_pid 0' },
    { bind: 0x7ffffff0, forged: 0, what: 'squatted port 0x7ffffff0, nlmsg_pid 0' },
    { bind: 4243, forged: -1, what: 'squatted port 4243, nlmsg_pid 0xffffffff' },
    { bind: 0, forged: -2, what: 'auto port, nlmsg_pid = the bridge port' },
  ];
  let frames = 0;
  for (const c of cases) {
    const forged = c.forged === -2 ? bridgePort : c.forged === -1 ? 0xffffffff : c.forged;
    const marker = `${TAG}-${c.bind}-${forged}`;
    const real = sendAsNobody(c.bind, forged, marker, [
      [0, (1 << (GROUP - 1)) >>> 0],
      [uniPort, 0],
    ]);
    assert.ok(real > 0, `${c.what}: sender port ${real}`);
    if (c.bind !== 0) assert.equal(real, c.bind, `${c.what}: the squat worked`);
    const viaGroup = await group.next((f) => f.type === 'message' && f.data === marker, 3000, `${c.what} on group ${GROUP}`);
    const viaUnicast = await uni.next((f) => f.type === 'message' && f.data === marker && f.group === 0, 3000, `${c.what} by unicast`);
    for (const [how, f] of [
      ['group', viaGroup],
      ['unicast', viaUnicast],
    ] as [string, Frame][]) {
      assert.equal(f.portId, real, `${c.what} (${how}): portId is the sender's real port`);
      assert.notEqual(f.portId, 0, `${c.what} (${how}): shown as the kernel`);
      assert.equal(f.nlmsgPid, forged, `${c.what} (${how}): nlmsgPid is what the sender wrote`);
      assert.equal(f.uid, NOBODY, `${c.what} (${how}): uid from SCM_CREDENTIALS`);
      assert.notEqual(f.fromBridge, true, `${c.what} (${how}): shown as the bridge`);
      frames++;
    }
  }
  // Absence of extra copies, after a positive marker: one more send (to the
  // group and by unicast), made after every forged one, so queued behind
  // them on both of the daemon's sockets (a sendto enqueues at once).
  const end = `end-${TAG}`;
  sendAsNobody(0, 0, end, [
    [0, (1 << (GROUP - 1)) >>> 0],
    [uniPort, 0],
  ]);
  await group.next((f) => f.type === 'message' && f.data === end, 3000, 'the end marker on the group');
  await uni.next((f) => f.type === 'message' && f.data === end && f.group === 0, 3000, 'the end marker by unicast');
  const all = [...group.all, ...uni.all].filter(
    (f): f is Frame => !Buffer.isBuffer(f) && f.type === 'message' && String(f.data).startsWith(TAG),
  );
  // The unicast stream also subscribes to the group: it sees each message twice (group and unicast).
  assert.equal(all.length, frames + cases.length, 'one frame per send, stream and destination, no extra copies');
  assert.equal(all.filter((f) => f.portId === 0 || f.fromBridge === true || f.uid !== NOBODY).length, 0);
  recordCase({
    name: '6d. Spoofing',
    figure:
      `${cases.length} forged senders as nobody (nlmsg_pid 0, 0xffffffff, the bridge's port; auto, squatted ports 1, 4242, 4243, 0x7ffffff0) × (group, unicast): ` +
      `${all.length} frames, all with the real sender port and uid ${NOBODY}, 0 shown as port 0 or as the bridge`,
    pass: true,
  });
});

// nlbridge watch against a real daemon process: one line per message from a
// raw netlink sender (ww_nlk), over TCP with a token file and over the unix
// socket; a connection cut mid-stream (a TCP proxy that drops it) resumes
// with the last cursor, prints what arrived meanwhile once, in order, and
// says nothing was lost; a daemon restarted under it is reported as a gap.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { TAG, bit, wwNlk, buildTools } from './support/daemon_harness';
import { LiveCli } from './support/cli_harness';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';

const G = 29;
const G2 = 30;

/** A TCP proxy to the daemon whose connections the test can cut, as a network would. */
class CuttableProxy {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  target = 0;

  constructor() {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.target, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Drops every connection at once, without a WebSocket close. */
  cut(): void {
    for (const s of this.sockets) s.resetAndDestroy();
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

/** The message lines of a watch that carry `marker`, as their payload text. */
function texts(w: LiveCli, marker: string): string[] {
  return w.out.map((l) => / {2}text (.*)$/.exec(l)?.[1] ?? '').filter((t) => t.includes(marker));
}

describe('nlbridge watch', () => {
  let d: DaemonProc;
  let proxy: CuttableProxy;
  let proxyPort: number;
  let socket: string;
  let env: NodeJS.ProcessEnv;
  /** The cursor of the message the --json test saw. */
  let jsonCursor = '';
  before(async () => {
    buildTools();
    proxy = new CuttableProxy();
    proxyPort = await proxy.listen();
    socket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-cli-')), 'nlb.sock');
    // The Host the CLI sends through the proxy is the proxy's.
    d = await spawnDaemon(['--auth', 'token', '--unix-socket', socket, '--allowed-hosts', `127.0.0.1:${proxyPort}`]);
    proxy.target = d.port;
    env = { NLBRIDGE_URL: `http://127.0.0.1:${proxyPort}`, NLBRIDGE_TOKEN_FILE: path.join(d.dir, 'token') };
  });
  after(async () => {
    proxy.close();
    await d.stop();
  });

  test('one line per message: time, group, port, text or hex; -n N exits 0 after N', async () => {
    const w = new LiveCli(['watch', String(bit(G) | bit(G2)), '-n', '3'], { env });
    const marker = `${TAG}-lines`;
    // Wait for the stream to be open: the daemon counts it in /status.
    await watching(w);
    const sent = await wwNlk(['-g', String(bit(G)), '-m', `${marker}-a`]);
    assert.equal(sent.code, 0, sent.stderr);
    await wwNlk(['-g', String(bit(G) | bit(G2)), '-m', `${marker}-b`]);
    await wwNlk(['-g', String(bit(G2)), '-m', `${marker}-\x01`]);
    assert.equal(await w.exit, 0, w.err.join('\n'));
    assert.equal(w.out.length, 3, w.out.join('\n'));
    assert.match(w.out[0], new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z  group ${G}  port \\d+  text ${marker}-a$`));
    assert.match(w.out[1], new RegExp(`  group ${G}  port \\d+  text ${marker}-b$`), 'sent to both groups, printed once');
    assert.match(
      w.out[2],
      new RegExp(`  group ${G2}  port \\d+  hex  ${Buffer.from(`${marker}-\x01`).toString('hex')}$`),
      'a control character: hex',
    );
  });

  test('over the unix socket, --json prints the frames as the daemon sent them', async () => {
    const w = new LiveCli(['watch', '--url', `unix:${socket}`, '-l', String(G), '--json', '-n', '1'], { env: {} });
    const marker = `${TAG}-json`;
    await watching(w);
    await wwNlk(['-g', String(bit(G)), '-m', marker]);
    assert.equal(await w.exit, 0, w.err.join('\n'));
    const frames = w.out.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(frames[0].type, 'hello');
    assert.deepEqual(frames[0].groups, [G]);
    assert.equal(frames[1].type, 'message');
    assert.equal(frames[1].data, marker);
    assert.match(String(frames[1].cursor), /^[0-9a-z]+-\d+$/);
    jsonCursor = String(frames[1].cursor);
  });

  test("--since CURSOR starts after it, with the daemon's catch-up; -n N stops at N though more came in the same read", async () => {
    const marker = `${TAG}-since`;
    for (let i = 0; i < 5; i++) await wwNlk(['-g', String(bit(G)), '-m', `${marker}-${i}`]);
    const w = new LiveCli(['watch', '-l', String(G), '--since', jsonCursor, '-n', '2'], { env });
    assert.equal(await w.exit, 0, w.err.join('\n'));
    assert.deepEqual(texts(w, marker), [`${marker}-0`, `${marker}-1`]);
    assert.equal(w.out.length, 2);
    assert.ok(w.err.includes(`nlbridge watch: resumed after ${jsonCursor}: nothing lost`), w.err.join('\n'));
  });

  test('a connection cut mid-stream: the watch resumes after its last cursor, prints what arrived meanwhile once, in order, and says nothing was lost', async () => {
    const w = new LiveCli(['watch', String(bit(G))], { env });
    const marker = `${TAG}-cut`;
    try {
      await watching(w);
      for (let i = 0; i < 5; i++) await wwNlk(['-g', String(bit(G)), '-m', `${marker}-${i}`]);
      await w.until(() => texts(w, marker).length === 5, 5000, 'the first five');
      proxy.cut();
      // Sent while the watch is away: the daemon keeps them in its ring (the group lingers).
      for (let i = 5; i < 10; i++) await wwNlk(['-g', String(bit(G)), '-m', `${marker}-${i}`]);
      await w.until(() => texts(w, marker).length >= 10, 10000, 'the five sent while cut');
      for (let i = 10; i < 12; i++) await wwNlk(['-g', String(bit(G)), '-m', `${marker}-${i}`]);
      await w.until(() => texts(w, marker).length >= 12, 5000, 'live again');
      assert.deepEqual(
        texts(w, marker),
        Array.from({ length: 12 }, (_, i) => `${marker}-${i}`),
      );
      assert.ok(
        w.err.some((l) => /^nlbridge watch: connection lost \(.*\); reconnecting to resume after [0-9a-z]+-\d+$/.test(l)),
        w.err.join('\n'),
      );
      assert.ok(
        w.err.some((l) => /^nlbridge watch: resumed after [0-9a-z]+-\d+: nothing lost$/.test(l)),
        w.err.join('\n'),
      );
    } finally {
      assert.equal(await w.stop(), 0, 'Ctrl-C ends a watch with 0');
    }
  });

  test('a daemon restarted under the watch: it reconnects, says the messages from before are gone (a gap), and goes on', async () => {
    const w = new LiveCli(['watch', String(bit(G))], { env });
    const marker = `${TAG}-restart`;
    try {
      await watching(w);
      await wwNlk(['-g', String(bit(G)), '-m', `${marker}-before`]);
      await w.until(() => texts(w, marker).length === 1, 5000, 'the first message');
      const port = d.port;
      await d.stop();
      // The same port and token directory: the token the watch read is kept.
      d = await spawnDaemon([
        '--auth',
        'token',
        '--port',
        String(port),
        '--token-out',
        String(env.NLBRIDGE_TOKEN_FILE),
        '--allowed-hosts',
        `127.0.0.1:${proxyPort}`,
      ]);
      await w.until(() => w.err.some((l) => /lost after/.test(l)), 15000, 'the gap notice');
      assert.ok(
        w.err.some((l) =>
          /^nlbridge watch: an unknown number of messages were lost after [0-9a-z]+-\d+: the cursor is from another run of the daemon \(it restarted\)/.test(
            l,
          ),
        ),
        w.err.join('\n'),
      );
      await wwNlk(['-g', String(bit(G)), '-m', `${marker}-after`]);
      await w.until(() => texts(w, marker).length === 2, 5000, 'the message after the restart');
      assert.deepEqual(texts(w, marker), [`${marker}-before`, `${marker}-after`]);
    } finally {
      assert.equal(await w.stop(), 0);
    }
  });
});

/** Waits until the watch says it is watching: its stream is open, what is sent from now on reaches it. */
function watching(w: LiveCli): Promise<void> {
  return w.until(() => w.err.some((l) => /^nlbridge watch: watching groups? /.test(l)), 5000, 'the stream to open');
}

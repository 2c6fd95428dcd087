// nlbridge send against a real daemon process: over TCP with the token read
// from a file (named, and found where `npm start` keeps it), over the unix
// socket (named, and found by default), raw rr_nlk readers as the receivers,
// and the exit status of all, some and nothing reached.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RrNlk, TAG, bit, sleep } from './support/daemon_harness';
import { runCli } from './support/cli_harness';
import { spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';

const G1 = 27;
const G2 = 28;

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('nlbridge send', () => {
  let d: DaemonProc;
  let reader: RrNlk;
  let socket: string;
  let tokenFile: string;
  before(async () => {
    socket = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-cli-')), 'nlb.sock');
    d = await spawnDaemon(['--auth', 'token', '--unix-socket', socket]);
    tokenFile = path.join(d.dir, 'token');
    assert.ok(d.token, 'the daemon requires a token');
    reader = new RrNlk(['-G', `${G1},${G2}`]);
    await reader.portId;
  });
  after(async () => {
    reader.kill();
    await d.stop();
  });

  test('over TCP with NLBRIDGE_TOKEN_FILE: -g MASK reaches a raw reader once per group, the report is printed, exit 0', async () => {
    const text = `${TAG}-tcp`;
    const r = await runCli(['send', '-g', String(bit(G1) | bit(G2)), text], {
      env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: tokenFile },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^sent +seq \d+ from port \d+, type 16, \d+ bytes: all 3 reached$/m);
    assert.match(r.stdout, new RegExp(`^  group ${G1} +delivered$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  group ${G2} +delivered$`, 'm'));
    assert.match(r.stdout, /^ {2}kernel +no-kernel-endpoint$/m);
    await waitFor(() => reader.with(text).length >= 1, 3000, 'the reader');
    await sleep(100);
    assert.equal(reader.with(text).length, 1, 'rr_nlk keeps one copy of the message sent to both groups');
  });

  test("--json prints the daemon's report; -l LIST, --hex and --type are sent as given", async () => {
    const r = await runCli(['send', '-l', `${G1}`, '--hex', '--type', '20', '--json', '00ff41'], {
      env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: tokenFile },
    });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      ok: boolean;
      type: number;
      seq: number;
      results: { to: string; group?: number; result: string }[];
    };
    assert.equal(report.ok, true);
    assert.equal(report.type, 20);
    assert.deepEqual(
      report.results.filter((x) => x.to === 'group'),
      [{ to: 'group', group: G1, result: 'delivered' }],
    );
    await waitFor(() => reader.lines.some((l) => l.seq === report.seq), 3000, 'the hex message');
    const got = reader.lines.find((l) => l.seq === report.seq)!;
    assert.equal(got.len, 3, 'the three bytes of 00ff41');
  });

  test('-i PORT unicasts to the reader; DATA "-" is read from stdin', async () => {
    const text = `${TAG}-uni`;
    const r = await runCli(['send', '-i', String(await reader.portId), '-'], {
      env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: tokenFile },
      input: text,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  port ${await reader.portId} +delivered$`, 'm'));
    await waitFor(() => reader.with(text).length === 1, 3000, 'the unicast');
  });

  test("nothing reached (a port nobody holds) exits 1 with the daemon's problem; some reached exits 4", async () => {
    const none = await runCli(['send', '-i', '4242', 'x'], { env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: tokenFile } });
    assert.equal(none.code, 1);
    assert.match(none.stdout, /^nothing reached\n {2}port 4242 +port-unreachable \(ECONNREFUSED\)$/m);
    assert.match(none.stderr, /^nlbridge send: PORT_UNREACHABLE \(404\): /);
    const some = await runCli(['send', '-g', String(bit(G1)), '-i', '4242', `${TAG}-some`], {
      env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: tokenFile },
    });
    assert.equal(some.code, 4, some.stdout + some.stderr);
    assert.match(some.stdout, /: 2 of 3 reached$/m);
  });

  test('the token is found where `npm start` keeps it (.cache/nlbridge/token under the working directory)', async () => {
    const cwd = fs.mkdtempSync(path.join(d.dir, 'cwd-'));
    fs.mkdirSync(path.join(cwd, '.cache/nlbridge'), { recursive: true, mode: 0o700 });
    fs.copyFileSync(tokenFile, path.join(cwd, '.cache/nlbridge/token'));
    const text = `${TAG}-cwd`;
    const r = await runCli(['send', '-g', String(bit(G2)), text], { env: { NLBRIDGE_URL: d.base }, cwd });
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => reader.with(text).length === 1, 3000, 'the message');
  });

  test('a missing or wrong token: 401 said in one line, naming where the token was looked for or read from, exit 1', async () => {
    const cwd = fs.mkdtempSync(path.join(d.dir, 'empty-'));
    const none = await runCli(['send', '-g', String(bit(G1)), 'x'], { env: { NLBRIDGE_URL: d.base }, cwd });
    assert.equal(none.code, 1);
    assert.match(
      none.stderr,
      /^nlbridge send: UNAUTHORIZED \(401\): .*no token file was found \(looked in .*\.cache\/nlbridge\/token, \/etc\/credstore\/nlbridge\.token/,
    );
    const wrong = path.join(d.dir, 'wrong.token');
    fs.writeFileSync(wrong, 'x'.repeat(64) + '\n', { mode: 0o600 });
    const bad = await runCli(['send', '-g', String(bit(G1)), 'x'], { env: { NLBRIDGE_URL: d.base, NLBRIDGE_TOKEN_FILE: wrong } });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      new RegExp(`UNAUTHORIZED \\(401\\).*the token was read from ${wrong.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'),
    );
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  });

  test('over the unix socket: no token needed, by --url unix:PATH and by default from the working directory', async () => {
    const named = `${TAG}-unix`;
    const r = await runCli(['send', '--url', `unix:${socket}`, '-g', String(bit(G1)), named], { env: {} });
    assert.equal(r.code, 0, r.stderr);
    await waitFor(() => reader.with(named).length === 1, 3000, 'the unix-socket message');
    // The default: .cache/nlbridge/nlbridge.sock under the working directory, as daemon/README.md starts it.
    const cwd = fs.mkdtempSync(path.join(d.dir, 'sock-'));
    fs.mkdirSync(path.join(cwd, '.cache/nlbridge'), { recursive: true });
    fs.symlinkSync(socket, path.join(cwd, '.cache/nlbridge/nlbridge.sock'));
    const found = `${TAG}-unixdef`;
    const r2 = await runCli(['send', '-g', String(bit(G1)), found], { env: {}, cwd });
    assert.equal(r2.code, 0, r2.stderr);
    await waitFor(() => reader.with(found).length === 1, 3000, 'the default-socket message');
  });
});

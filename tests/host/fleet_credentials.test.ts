// --nats-creds as nsc writes it (a user JWT, then the user's nkey seed)
// against Debian's nats-server 2.9 in operator mode: an operator, an account
// and users made here with @nats-io/jwt, the account preloaded in a memory
// resolver. The daemon connects with the file and publishes; a creds or token
// file others may read, or a creds file that holds no user's credentials,
// stops the start with exit 2 naming the flag (issue 18: the seed is a
// secret, as --nats-nkey's is, and nats.js would otherwise only find a bad
// file when it dials, retrying in silence).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as jwt from '@nats-io/jwt';
import { connect as natsConnect, credsAuthenticator, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { NetlinkSocket } from '../../addon/socket';
import { encodeMessage } from '../../addon/codec';
import { skipUnless } from '../support/prerequisites';
import { waitFor } from '../support/wait';
import { MAIN, spawnDaemon, type DaemonProc } from '../reliability/support/daemon_proc';
import { USERSOCK, bit } from './support/daemon_harness';
import { fleetStatus } from './support/fleet_hosts';
import { NatsServer } from './support/nats_server';

/** An account that may connect and subscribe (jwt.js leaves an account's limits at 0: no connection at all). */
const OPEN_LIMITS = { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, leaf: -1 };

interface Operator {
  config: string;
  /** A user of the account: a creds file as nsc writes it. */
  creds(name: string, mode?: number): Promise<string>;
}

/** An operator with one account, as nats-server config lines (operator JWT file, memory resolver). */
async function makeOperator(dir: string): Promise<Operator> {
  const okp = jwt.createOperator();
  const akp = jwt.createAccount();
  const opFile = path.join(dir, 'operator.jwt');
  fs.writeFileSync(opFile, await jwt.encodeOperator('nlbridge-test', okp));
  const account = await jwt.encodeAccount('fleet', akp, { limits: OPEN_LIMITS }, { signer: okp });
  return {
    config: `operator: "${opFile}"\nresolver: MEMORY\nresolver_preload: {\n  ${akp.getPublicKey()}: "${account}"\n}`,
    async creds(name, mode = 0o600) {
      const ukp = jwt.createUser();
      const file = path.join(dir, `${name}.creds`);
      fs.writeFileSync(file, jwt.fmtCreds(await jwt.encodeUser(name, ukp, akp), ukp), { mode });
      fs.chmodSync(file, mode);
      return file;
    },
  };
}

function startFails(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, '--protocol', 'usersock', '--port', '0', ...args], { encoding: 'utf8', timeout: 15000 });
  return { status: r.status, stderr: `${r.stdout}${r.stderr}` };
}

describe('fleet: --nats-creds, a user JWT and seed against nats-server in operator mode', { skip: skipUnless('nats-server') }, () => {
  const server = new NatsServer();
  let operator: Operator;
  let daemon: DaemonProc;
  let watcher: NatsConnection;
  const seen: Msg[] = [];

  before(async () => {
    operator = await makeOperator(server.dir);
    await server.start(operator.config);
    watcher = await natsConnect({
      servers: server.url,
      authenticator: credsAuthenticator(fs.readFileSync(await operator.creds('watcher'))),
    });
    watcher.subscribe('nlbridge.C.g.*', { callback: (_err, m) => void seen.push(m) });
    await watcher.flush();
  });

  after(async () => {
    await daemon?.stop();
    await watcher?.close();
    await server.stop();
  });

  test('the daemon connects with the creds file and its group reaches a subscriber of the account', async () => {
    daemon = await spawnDaemon(['--nats', server.url, '--host-id', 'C', '--nats-publish', '2', '--nats-creds', await operator.creds('C')]);
    await waitFor('the daemon connected with its creds', async () => (await fleetStatus(daemon)).connected, { timeoutMs: 10000 });
    const sender = NetlinkSocket.open({ protocol: USERSOCK });
    try {
      sender.send(encodeMessage({ type: 16, flags: 0, seq: 1, pid: 0, payload: Buffer.from('from-C') }), { portId: 0, groups: bit(2) });
    } finally {
      sender.close();
    }
    const m = await waitFor('the message of C on NATS', () => seen.find((x) => x.subject === 'nlbridge.C.g.2'), { timeoutMs: 5000 });
    assert.ok(Buffer.from(m!.data).includes(Buffer.from('from-C')));
    assert.ok(!daemon.logs.some((l) => /SU[A-Z0-9]{50,}/.test(JSON.stringify(l))), 'the seed never reaches the log');
  });

  test('a server in operator mode refuses a daemon without credentials; it keeps serving', async () => {
    const bare = await spawnDaemon(['--nats', server.url, '--host-id', 'N']);
    try {
      await waitFor(
        'the refusal logged',
        () => bare.logs.some((l) => /NATS (connect failed|connection closed|server error|not connected yet)/.test(String(l.msg))),
        { timeoutMs: 10000 },
      );
      assert.equal((await fleetStatus(bare)).connected, false);
      assert.ok(bare.alive());
    } finally {
      await bare.stop();
    }
  });

  test('creds and token files others may read, or holding no user credentials: exit 2 naming the flag, no stack', async () => {
    const dir = server.dir;
    const open = await operator.creds('open', 0o644);
    const junk = path.join(dir, 'junk.creds');
    fs.writeFileSync(junk, 'hello\n', { mode: 0o600 });
    // A JWT of one user with the seed of another: the server would refuse it at every dial.
    const [one, two] = [await operator.creds('one'), await operator.creds('two')];
    const seedBlock = (f: string): string => /-----BEGIN USER NKEY SEED-----[\s\S]*$/.exec(fs.readFileSync(f, 'utf8'))![0];
    const mixed = path.join(dir, 'mixed.creds');
    fs.writeFileSync(mixed, fs.readFileSync(one, 'utf8').replace(/-----BEGIN USER NKEY SEED-----[\s\S]*$/, seedBlock(two)), {
      mode: 0o600,
    });
    const openToken = path.join(dir, 'open.token');
    fs.writeFileSync(openToken, 's3cret\n', { mode: 0o644 });
    fs.chmodSync(openToken, 0o644);
    const nats = ['--nats', server.url];
    const cases: [string, string[], RegExp][] = [
      [
        'a creds file others may read',
        ['--nats-creds', open],
        /^nlbridge: --nats-creds: .*open\.creds may be read by group or others \(mode 0644\)/m,
      ],
      ['a creds file holding no credentials', ['--nats-creds', junk], /^nlbridge: --nats-creds: .*junk\.creds holds no NATS credentials/m],
      [
        "one user's JWT with another's seed",
        ['--nats-creds', mixed],
        /^nlbridge: --nats-creds: .*mixed\.creds holds a JWT for U[A-Z0-9]+ and the seed of U[A-Z0-9]+: not one user's/m,
      ],
      [
        'a missing creds file',
        ['--nats-creds', '/nonexistent/x.creds'],
        /^nlbridge: --nats-creds: cannot read \/nonexistent\/x\.creds: ENOENT/m,
      ],
      [
        'a token file others may read',
        ['--nats-token-file', openToken],
        /^nlbridge: --nats-token-file: .*open\.token may be read by group or others \(mode 0644\)/m,
      ],
    ];
    for (const [name, args, want] of cases) {
      const r = startFails([...nats, ...args]);
      assert.equal(r.status, 2, `${name}: ${r.stderr}`);
      assert.match(r.stderr, want, name);
      assert.ok(!/\n\s+at /.test(r.stderr), `${name}: no stack`);
      assert.ok(!/SU[A-Z0-9]{50,}/.test(r.stderr), `${name}: no seed in the message`);
    }
  });
});

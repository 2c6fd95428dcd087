import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULTS } from '../../daemon/config/schema';
import { holdsNetAdmin, saveTokenFiles, setupAuth } from '../../daemon/security';
import {
  bearerFromHeader,
  hostAllowed,
  offeredSubprotocols,
  originAllowed,
  tokenFromSubprotocols,
  tokenMatches,
} from '../../daemon/http/request_checks';
import { redactUrl } from '../../daemon/app';

const HOSTS = DEFAULTS.allowedHosts;

test('Host allow-list: the names with the port only', () => {
  for (const h of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080', 'LocalHost:8080']) assert.ok(hostAllowed(h, HOSTS, 8080), h);
  for (const h of [
    undefined,
    '',
    'localhost',
    'localhost:8081',
    'evil.example',
    'evil.example:8080',
    'localhost6:8080',
    '127.1:8080',
    '0x7f.1:8080',
    '0177.0.0.1:8080',
    '2130706433:8080',
    '[::ffff:127.0.0.1]:8080',
    'localhost.:8080',
    '127.0.0.1.nip.io:8080',
    '[::1]',
  ]) {
    assert.ok(!hostAllowed(h, HOSTS, 8080), String(h));
  }
  assert.ok(hostAllowed('localhost', HOSTS, 80), 'a bare name means port 80');
  assert.ok(hostAllowed('bridge.lan:9000', ['bridge.lan:9000'], 8080), 'an entry with its own port');
  assert.ok(hostAllowed('anything', ['*'], 8080), '* disables the check');
});

test('Origin: absent, listed, or the same origin as an allowed Host', () => {
  assert.ok(originAllowed(undefined, 'localhost:8080', [], true));
  assert.ok(originAllowed('http://localhost:8080', 'localhost:8080', [], true));
  assert.ok(originAllowed('https://ui.example', 'localhost:8080', ['https://ui.example'], true));
  for (const o of [
    'null',
    'http://evil.example',
    'http://127.0.0.1',
    'http://127.0.0.1:8081',
    'http://10.0.0.1:8080',
    'http://localhost:8080.evil.example',
    'file://',
  ]) {
    assert.ok(!originAllowed(o, 'localhost:8080', [], true), o);
  }
  assert.ok(!originAllowed('http://evil.example:8080', 'evil.example:8080', [], false), 'same origin only counts for an allowed Host');
});

test('bearer tokens: header and subprotocol parsing, constant-time compare', () => {
  assert.equal(bearerFromHeader('Bearer abc.def'), 'abc.def');
  assert.equal(bearerFromHeader('bearer  abc'), 'abc');
  assert.equal(bearerFromHeader('Basic abc'), null);
  assert.equal(bearerFromHeader('Bearer'), null);
  assert.equal(bearerFromHeader(undefined), null);
  assert.deepEqual(offeredSubprotocols('nlbridge, bearer.xyz'), ['nlbridge', 'bearer.xyz']);
  assert.equal(tokenFromSubprotocols(['nlbridge', 'bearer.xyz']), 'xyz');
  assert.equal(tokenFromSubprotocols(['nlbridge']), null);
  assert.ok(tokenMatches('same-token-value', 'same-token-value'));
  assert.ok(!tokenMatches('same-token-valuE', 'same-token-value'));
  assert.ok(!tokenMatches('short', 'same-token-value'), 'different lengths do not throw');
});

test('CAP_NET_ADMIN from CapEff', () => {
  assert.equal(holdsNetAdmin('Name:\tnode\nCapEff:\t000001ffffffffff\n'), true);
  assert.equal(holdsNetAdmin('CapEff:\t0000000000001000\n'), true, 'bit 12 alone');
  assert.equal(holdsNetAdmin('CapEff:\t0000000000000000\n'), false);
  assert.equal(holdsNetAdmin('CapEff:\t0000000000002000\n'), false, 'bit 13 is CAP_NET_RAW');
  assert.equal(holdsNetAdmin('nothing'), false);
});

test('auth setup: none without privileges in auto; a generated 0600 token otherwise; files and credentials', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-auth-'));
  try {
    assert.equal(setupAuth({ ...DEFAULTS }, {}, false, dir).token, null);
    assert.equal(setupAuth({ ...DEFAULTS, auth: 'none' }, {}, true, dir).token, null);
    const gen = setupAuth({ ...DEFAULTS }, {}, true, dir);
    assert.equal(gen.generated, true);
    assert.equal(gen.source, path.join(dir, '.cache/nlbridge/token'));
    assert.match(gen.token!, /^[0-9a-f]{64}$/);
    assert.ok(!fs.existsSync(gen.source!), 'nothing is written before the daemon listens');
    saveTokenFiles(gen);
    assert.equal(fs.statSync(gen.source!).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(gen.source!, 'utf8').trim(), gen.token);
    assert.equal(fs.readFileSync(path.join(dir, '.cache/nlbridge/auth.header'), 'utf8'), `Authorization: Bearer ${gen.token}\n`);
    const again = setupAuth({ ...DEFAULTS }, {}, true, dir);
    assert.equal(again.token, gen.token, 'the token of an earlier start is kept');
    assert.equal(again.kept, true);
    saveTokenFiles(again);
    const rt = setupAuth({ ...DEFAULTS, auth: 'token' }, { RUNTIME_DIRECTORY: dir }, false, '/nonexistent');
    assert.equal(rt.source, path.join(dir, 'token'));
    const file = path.join(dir, 'given');
    fs.writeFileSync(file, 'a-configured-token-1234\n');
    const fromFile = setupAuth({ ...DEFAULTS, tokenFile: file }, {}, true, dir);
    assert.equal(fromFile.token, 'a-configured-token-1234');
    assert.equal(fromFile.generated, false);
    const credDir = fs.mkdtempSync(path.join(dir, 'cred-'));
    fs.writeFileSync(path.join(credDir, 'token'), 'credential-token-abcdef');
    assert.equal(setupAuth({ ...DEFAULTS }, { CREDENTIALS_DIRECTORY: credDir }, true, dir).token, 'credential-token-abcdef');
    fs.writeFileSync(file, 'short');
    assert.throws(() => setupAuth({ ...DEFAULTS, tokenFile: file }, {}, true, dir), /--token-file: .* at least 16/);
    assert.throws(() => setupAuth({ ...DEFAULTS, tokenFile: path.join(dir, 'absent') }, {}, true, dir), /--token-file: cannot read/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('secrets in query strings are masked for the log', () => {
  assert.equal(redactUrl('/groups/2?token=abc&format=json'), '/groups/2?token=[REDACTED]&format=json');
  assert.equal(redactUrl('/x?access_token=1&api_key=2&password=3'), '/x?access_token=[REDACTED]&api_key=[REDACTED]&password=[REDACTED]');
  assert.equal(redactUrl('/status'), '/status');
});

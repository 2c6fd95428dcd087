// Scoped tokens: config file "tokens", secrets from files and systemd
// credentials, matching, and what each scope refuses (403 naming it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadConfig } from '../../daemon/config/load';
import { DEFAULTS } from '../../daemon/config/schema';
import { Problem } from '../../daemon/errors';
import {
  FULL_SCOPE,
  checkRead,
  checkSend,
  natsSendScopeOf,
  parseTokenSpecs,
  resolveTokens,
  scopeOf,
  type Scope,
} from '../../daemon/scopes';
import { parseSendLimitsSpec } from '../../daemon/config/tokens';
import { setupAuth } from '../../daemon/security';

const READER = 'reader-secret-0123456789abcdef';
const SENDER = 'sender-secret-0123456789abcdef';

function denied(f: () => void, field: string, detail: RegExp, refused: unknown): void {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof Problem, String(err));
    assert.equal(err.code, 'PERMISSION_DENIED');
    assert.equal(err.status, 403);
    const body = err.body() as unknown as { field: string; detail: string; refused: unknown };
    assert.equal(body.field, field);
    assert.match(body.detail, detail);
    assert.deepEqual(body.refused, refused);
    return;
  }
  assert.fail('not refused');
}

test('the config file holds scoped tokens; bad entries name the key, never the secret', () => {
  const file = JSON.stringify({ tokens: [{ name: 'reader', token: READER, read: [2, 4], sendGroups: [], kernel: false }] });
  const r = loadConfig({ argv: ['--config', '/c.json'], env: {}, readFile: () => file, fileExists: () => false });
  assert.equal(r.kind, 'config');
  if (r.kind !== 'config') return;
  assert.deepEqual(r.config.tokens, [{ name: 'reader', token: READER, read: [2, 4], sendGroups: [], kernel: false }]);
  const bad = (tokens: unknown, re: RegExp): void => {
    assert.throws(
      () => loadConfig({ argv: ['--config', '/c.json'], env: {}, readFile: () => JSON.stringify({ tokens }), fileExists: () => false }),
      (e: Error) => {
        assert.match(e.message, re);
        assert.ok(!e.message.includes(READER), 'the secret is not echoed');
        return true;
      },
    );
  };
  bad({}, /tokens: must be a list/);
  bad([{ name: 'a', token: READER, read: 'some' }], /tokens\[0\]\.read: must be "\*" or a list/);
  bad([{ name: 'a', token: READER, tokenFile: '/x' }], /exactly one of token, tokenFile, credential/);
  bad([{ name: 'a', token: READER, colour: 1 }], /tokens\[0\]\.colour: unknown key/);
  bad(
    [
      { name: 'a', token: READER },
      { name: 'a', token: SENDER },
    ],
    /used twice/,
  );
  bad([{ name: 'a', token: READER, kernel: 'no' }], /kernel: must be true or false/);
});

test('secrets from a file and from a systemd credential; auto mode then requires a token', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nlb-scopes-'));
  try {
    fs.writeFileSync(path.join(dir, 'token.reader'), READER + '\n');
    fs.writeFileSync(path.join(dir, 'sender.txt'), SENDER);
    const specs = parseTokenSpecs([
      { name: 'reader', credential: 'token.reader', read: [2] },
      { name: 'sender', tokenFile: path.join(dir, 'sender.txt'), sendGroups: [3], sendPorts: [1234], kernel: false },
    ]);
    const toks = resolveTokens(specs, { CREDENTIALS_DIRECTORY: dir });
    assert.equal(toks[0].token, READER);
    assert.deepEqual(toks[0].scope, { name: 'reader', read: [2], sendGroups: '*', sendPorts: '*', sendTypes: [16], kernel: true });
    assert.equal(toks[1].token, SENDER);
    assert.throws(() => resolveTokens(specs, {}), /credential token\.reader needs \$CREDENTIALS_DIRECTORY/);
    assert.throws(() => resolveTokens(parseTokenSpecs([{ name: 'short', token: 'abc' }]), {}), /at least 16/);
    const auth = setupAuth(
      { ...DEFAULTS, auth: 'auto', tokenOut: path.join(dir, 'main'), tokens: specs },
      { CREDENTIALS_DIRECTORY: dir },
      false,
    );
    assert.notEqual(auth.token, null, 'scoped tokens make auto require a token');
    assert.equal(auth.scoped?.length, 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scopeOf: the main token is unlimited, a scoped one has its scope, anything else nothing', () => {
  const scoped = resolveTokens(
    parseTokenSpecs([
      { name: 'reader', token: READER, read: [2] },
      { name: 'sender', token: SENDER, read: [] },
    ]),
    {},
  );
  const main = 'main-secret-0123456789abcdef';
  assert.equal(scopeOf(main, main, scoped), FULL_SCOPE);
  assert.equal(scopeOf(READER, main, scoped)?.name, 'reader');
  assert.equal(scopeOf(SENDER, main, scoped)?.name, 'sender');
  assert.equal(scopeOf(READER.slice(0, -1), main, scoped), null);
  assert.equal(scopeOf(READER + 'x', main, scoped), null);
});

test('read scope refuses groups outside it, naming them', () => {
  const s: Scope = { name: 'reader', read: [2, 4], sendGroups: '*', sendPorts: '*', sendTypes: [16], kernel: true };
  checkRead(s, [2, 4], 'mask');
  checkRead(null, [1, 2, 3], 'mask');
  denied(() => checkRead(s, [2, 3, 5], 'mask'), 'mask', /token "reader" may not read groups 3,5 \(it may read: 2,4\)/, { read: [3, 5] });
  denied(() => checkRead({ ...s, read: [] }, [1], 'list'), 'list', /may read: none/, { read: [1] });
});

test('send scope: message types, DATA only unless configured (a typed group copy is a kernel request)', () => {
  const [dataOnly] = resolveTokens(parseTokenSpecs([{ name: 'd', token: 'd'.repeat(16) }]), {});
  assert.deepEqual(dataOnly.scope.sendTypes, [16]);
  const data = Buffer.alloc(0);
  checkSend(dataOnly.scope, { groups: [3], data });
  checkSend(dataOnly.scope, { groups: [3], type: 16, data });
  denied(
    () => checkSend(dataOnly.scope, { groups: [3], type: 17, data }),
    'type',
    /token "d" may not send messages of type 17 \(it may send types: 16\)/,
    { types: [17] },
  );
  denied(() => checkSend(dataOnly.scope, { pid: 99, type: 18, data }), 'type', /type 18/, { types: [18] });
  const [typed] = resolveTokens(parseTokenSpecs([{ name: 't', token: 't'.repeat(16), sendTypes: [16, 0x30] }]), {});
  checkSend(typed.scope, { groups: [3], type: 0x30, data });
  const [any] = resolveTokens(parseTokenSpecs([{ name: 'a', token: 'a'.repeat(16), sendTypes: '*' }]), {});
  checkSend(any.scope, { groups: [3], type: 17, data });
  assert.throws(
    () => parseTokenSpecs([{ name: 'x', token: 'x'.repeat(16), sendTypes: [70000] }]),
    /tokens\[0\]\.sendTypes: must be "\*" or a list of integers 0\.\.65535/,
  );
});

test('send scope: groups, ports, kernel RELAY / BCAST / port 0', () => {
  const s: Scope = { name: 'sender', read: [], sendGroups: [3, 40], sendPorts: [1234], sendTypes: [16], kernel: false };
  const data = Buffer.alloc(0);
  checkSend(s, { groups: [3], data });
  checkSend(s, { pid: 1234, data });
  denied(() => checkSend(s, { groups: [3, 4], data }), 'groups', /may not send to group 4 \(it may send to groups: 3,40\)/, {
    groups: [4],
  });
  denied(() => checkSend(s, { pid: 99, data }), 'pid', /may not send to port 99/, { ports: [99] });
  denied(() => checkSend(s, { pid: 0, data }), 'pid', /kernel \(port 0\)/, { kernel: 'port 0' });
  denied(() => checkSend(s, { relay: 1234, data }), 'relay', /RELAY/, { kernel: 'RELAY' });
  denied(() => checkSend(s, { groups: [40], data }), 'groups', /BCAST/, { kernel: 'BCAST' });
  const k: Scope = { ...s, kernel: true };
  checkSend(k, { groups: [40], data });
  checkSend(k, { relay: 1234, data });
  denied(() => checkSend(k, { relay: 5, data }), 'relay', /relay to port 5/, { ports: [5] });
});

test('NATS sends without "natsSendScope" may do nothing: every destination is refused, naming the field', () => {
  const none = natsSendScopeOf(null);
  const data = Buffer.from('x');
  denied(() => checkSend(none, { groups: [2], data }), 'groups', /no "natsSendScope"/, { groups: [2] });
  denied(() => checkSend(none, { pid: 4242, data }), 'pid', /may not send to port 4242/, { ports: [4242] });
  denied(() => checkSend(none, { pid: 0, data }), 'pid', /port 0/, { kernel: 'port 0' });
  denied(() => checkSend(none, { relay: 7, data }), 'relay', /RELAY/, { kernel: 'RELAY' });
  denied(() => checkSend(none, { groups: [40], data }), 'groups', /may not send to group 40/, { groups: [40] });
});

test('"natsSendScope" reads as a scoped token\'s send keys, with their defaults and errors', () => {
  const s = natsSendScopeOf(parseSendLimitsSpec({ sendGroups: [5] }));
  assert.deepEqual([s.sendGroups, s.sendPorts, s.sendTypes, s.kernel], [[5], '*', [16], true]);
  checkSend(s, { groups: [5], data: Buffer.from('x') });
  denied(
    () => checkSend(s, { groups: [5], type: 17, data: Buffer.from('x') }),
    'type',
    /NATS sends \("natsSendScope"\) may not send messages of type 17/,
    {
      types: [17],
    },
  );
  assert.throws(() => parseSendLimitsSpec({ sendPorts: [-1] }), /natsSendScope\.sendPorts: must be "\*" or a list of integers/);
  assert.throws(() => parseSendLimitsSpec({ name: 'x' }), /natsSendScope\.name: unknown key/);
  assert.throws(() => parseSendLimitsSpec(null), /natsSendScope: must be an object/);
});

// daemon/config/: the schema is the one source of each option's default and
// help; the room imports nothing of the bus or HTTP; the flag parser keeps
// its order rules and names the flag at fault.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { helpText } from '../../daemon/config/help';
import { ConfigError, compileEveryOptionSchema, loadConfig } from '../../daemon/config/load';
import { DEFAULTS, OPTIONS, OPTION_SCHEMAS, RING_DEFAULTS_FROM_SCHEMA, RING_LINGER_MS_DEFAULT } from '../../daemon/config/schema';

const noFile = {
  fileExists: () => false,
  readFile: (): string => {
    throw new Error('no file');
  },
};
const CONFIG_DIST = path.resolve(__dirname, '../../daemon/config');
const MAIN = path.resolve(__dirname, '../../daemon/main.js');

test('every option schema compiles in strict mode, though the daemon compiles only those of the options it is given', () => {
  assert.equal(compileEveryOptionSchema(), OPTIONS.length);
  // And each default given as its variable loads (an empty one, a null or empty-list default, reads as unset).
  for (const o of OPTIONS) {
    const r = loadConfig({ argv: [], env: { [o.env]: o.schema.default === null ? '' : String(o.schema.default) }, ...noFile });
    assert.equal(r.kind, 'config', o.key);
  }
});

test('DEFAULTS are the schema defaults, and each "(default X)" in --help is rendered from them', () => {
  for (const o of OPTIONS) {
    assert.deepEqual(DEFAULTS[o.key], o.schema.default, o.key);
    if (o.schema.description.includes('{default}')) assert.ok(!o.help.includes('{default}'), o.key);
  }
  const help = helpText();
  assert.ok(help.includes('TCP port (default 8080)'));
  assert.ok(help.includes('octal file mode of the unix socket (default 0660)'));
  assert.ok(help.includes('(default localhost,127.0.0.1,[::1] with the port)'));
  assert.ok(help.includes(`a client can resume (default ${RING_LINGER_MS_DEFAULT})`));
  assert.equal(RING_LINGER_MS_DEFAULT, 60000, 'the bus lingers as long as --ring-linger-ms says by default');
  assert.deepEqual(RING_DEFAULTS_FROM_SCHEMA, {
    maxMessages: DEFAULTS.ringMessages,
    maxAgeMs: DEFAULTS.ringMaxAgeMs,
    maxBytes: DEFAULTS.ringMaxBytes,
  });
});

test('every option is in the schema with a flag, a variable, help and a default that passes its own bounds', () => {
  assert.equal(OPTIONS.length, Object.keys(OPTION_SCHEMAS).length);
  const flags = new Set(OPTIONS.map((o) => o.flag));
  const envs = new Set(OPTIONS.map((o) => o.env));
  assert.equal(flags.size, OPTIONS.length, 'flags are unique');
  assert.equal(envs.size, OPTIONS.length, 'variables are unique');
  for (const o of OPTIONS) {
    assert.match(o.flag, /^--[a-z][a-z-]+$/, o.key);
    assert.match(o.env, /^NLBRIDGE_[A-Z_]+$/, o.key);
    assert.ok(o.help.length > 10, o.key);
  }
  // Loading with nothing set runs no default through Ajv; this does, for every option at once.
  const file = Object.fromEntries(OPTIONS.map((o) => [o.key, o.schema.default]));
  const r = loadConfig({ argv: [], env: {}, fileExists: () => true, readFile: () => JSON.stringify(file) });
  assert.equal(r.kind, 'config');
});

test('flags: --help and --version win over what follows them, not over a bad flag before them', () => {
  assert.equal(loadConfig({ argv: ['--port', '1', '-h', '--bogus'], env: {}, ...noFile }).kind, 'help');
  assert.equal(loadConfig({ argv: ['-V', '--bogus'], env: {}, ...noFile }).kind, 'version');
  assert.throws(() => loadConfig({ argv: ['--bogus', '--help'], env: {}, ...noFile }), /^ConfigError: --bogus: unknown option/);
  assert.throws(
    () => loadConfig({ argv: ['--help=yes'], env: {}, ...noFile }),
    (e: unknown) => e instanceof ConfigError && e.message === '--help: unknown option',
  );
  assert.throws(
    () => loadConfig({ argv: ['-x'], env: {}, ...noFile }),
    (e: unknown) => e instanceof ConfigError && e.source === '-x' && e.code === 'ECONFIG',
  );
  // A flag's value may look like a flag: it is the value (and here a bad one).
  assert.throws(
    () => loadConfig({ argv: ['--port', '--host'], env: {}, ...noFile }),
    /^ConfigError: --port: must be a port number 0\.\.65535 or "off", got "--host"/,
  );
  assert.throws(() => loadConfig({ argv: ['--port='], env: {}, ...noFile }), /--port: must be a port number/);
});

test('digits only become numbers: signs, exponents and blanks are refused with the bounds', () => {
  for (const v of ['-1', '1e5', ' 2048', '0x400', '2048.0']) {
    assert.throws(
      () => loadConfig({ argv: ['--body-limit', v], env: {}, ...noFile }),
      /^ConfigError: --body-limit: must be an integer in 1024\.\.16777216/,
      v,
    );
  }
  const r = loadConfig({
    argv: [],
    env: { NLBRIDGE_UNIX_SOCKET_MODE: '600', NLBRIDGE_PROTOCOL: 'dummy' },
    fileExists: () => true,
    readFile: () => '{"unixSocket": "/run/nlb.sock", "port": null, "unixSocketGroup": "nlbridge", "protocol": 31}',
  });
  assert.ok(r.kind === 'config');
  assert.equal(r.config.unixSocketMode, 0o600);
  assert.equal(r.config.protocol, 'dummy', 'env beats the file');
  assert.equal(r.config.unixSocketGroup, 'nlbridge');
});

test('an unknown file key is named once with "see --help" (not twice), exit 2', () => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'nlb-cfg-')), 'bad.json');
  writeFileSync(file, '{"prot": "usersock"}');
  const r = spawnSync(process.execPath, [MAIN, '--config', file], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, `nlbridge: ${file}: "prot": unknown setting\n(see nlbridge --help)\n`);
});

test('daemon/config imports nothing of the bus, the scopes or HTTP (no import cycle through it)', () => {
  for (const f of readdirSync(CONFIG_DIST).filter((n) => n.endsWith('.js'))) {
    const text = readFileSync(path.join(CONFIG_DIST, f), 'utf8');
    const required = [...text.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
    for (const r of required) assert.ok(r.startsWith('./') || r.startsWith('node:') || r === 'ajv', `${f} requires ${r}`);
  }
});

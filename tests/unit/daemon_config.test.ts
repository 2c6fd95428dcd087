import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText } from '../../daemon/config/help';
import { ConfigError, loadConfig } from '../../daemon/config/load';
import { DEFAULTS, type Config } from '../../daemon/config/schema';

const noFile = {
  fileExists: () => false,
  readFile: (): string => {
    throw new Error('no file');
  },
};

function cfg(argv: string[], env: NodeJS.ProcessEnv = {}, file?: Record<string, unknown>): Config {
  const r = loadConfig({
    argv,
    env,
    ...(file ? { fileExists: () => true, readFile: () => JSON.stringify(file) } : noFile),
  });
  assert.equal(r.kind, 'config');
  return (r as { config: Config }).config;
}

test('defaults: 127.0.0.1:8080, protocol auto, auth auto, 64 KiB limits, 1 MiB client backlog', () => {
  const c = cfg([]);
  assert.deepEqual(c, DEFAULTS);
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.equal(c.bodyLimit, 65536);
  assert.equal(c.wsMaxPayload, 65536);
  assert.equal(c.wsBufferBytes, 1048576);
});

test('precedence: flag > env > file > default', () => {
  const file = { port: 1111, logLevel: 'warn', protocol: 'usersock', rcvbuf: 4096 };
  const env = { NLBRIDGE_PORT: '2222', NLBRIDGE_LOG_LEVEL: 'debug' };
  const c = cfg(['--port', '3333'], env, file);
  assert.equal(c.port, 3333, 'flag beats env and file');
  assert.equal(c.logLevel, 'debug', 'env beats file');
  assert.equal(c.protocol, 'usersock', 'file beats default');
  assert.equal(c.rcvbuf, 4096);
  assert.equal(c.host, '127.0.0.1', 'default');
  assert.equal(cfg(['--port=4444']).port, 4444, '--flag=value form');
});

test('values are converted: protocol numbers, octal modes, lists, port off', () => {
  const c = cfg([
    '--protocol',
    '25',
    '--unix-socket',
    '/run/x.sock',
    '--unix-socket-mode',
    '0600',
    '--allowed-hosts',
    'a.example:80, b',
    '--port',
    'off',
  ]);
  assert.equal(c.protocol, 25);
  assert.equal(c.unixSocketMode, 0o600);
  assert.deepEqual(c.allowedHosts, ['a.example:80', 'b']);
  assert.equal(c.port, null);
  assert.deepEqual(cfg([], {}, { allowedOrigins: ['https://x.example'] }).allowedOrigins, ['https://x.example']);
});

test('invalid values name the flag, variable or file key', () => {
  const cases: [string[], NodeJS.ProcessEnv, Record<string, unknown> | undefined, RegExp][] = [
    [['--port', 'http'], {}, undefined, /^--port: must be a port number/],
    [['--port', '70000'], {}, undefined, /^--port:/],
    [['--protocol', 'netlink'], {}, undefined, /^--protocol: must be auto, usersock, dummy/],
    [['--protocol', '32'], {}, undefined, /^--protocol:/],
    [['--auth', 'maybe'], {}, undefined, /^--auth: must be auto, token or none/],
    [['--body-limit', '10'], {}, undefined, /^--body-limit: must be an integer in 1024\.\./],
    [['--unix-socket-mode', '999'], {}, undefined, /^--unix-socket-mode: must be an octal file mode/],
    [['--log-level', 'loud'], {}, undefined, /^--log-level:/],
    [['--bogus', '1'], {}, undefined, /^--bogus: unknown option/],
    [['--port'], {}, undefined, /^--port: needs a value/],
    [['stray'], {}, undefined, /^stray: unknown option/],
    [[], { NLBRIDGE_RCVBUF: 'big' }, undefined, /^NLBRIDGE_RCVBUF: must be an integer/],
    [[], {}, { port: 'x' }, /"port": must be a port number/],
    [[], {}, { prot: 'usersock' }, /"prot": unknown setting/],
    [['--port', 'off'], {}, undefined, /^--port: is off and no --unix-socket/],
  ];
  for (const [argv, env, file, re] of cases) {
    assert.throws(
      () => cfg(argv, env, file),
      (err: unknown) => err instanceof ConfigError && re.test(err.message),
      `${argv.join(' ')} ${JSON.stringify(env)} ${JSON.stringify(file)}`,
    );
  }
});

test('a config file that is not JSON, or not an object, is refused by path', () => {
  assert.throws(
    () => loadConfig({ argv: ['--config', '/x.json'], env: {}, readFile: () => '{port:', fileExists: () => false }),
    /^Error: \/x\.json: is not valid JSON|\/x\.json: is not valid JSON/,
  );
  assert.throws(
    () => loadConfig({ argv: ['--config', '/x.json'], env: {}, readFile: () => '[1]', fileExists: () => false }),
    /\/x\.json: must hold a JSON object/,
  );
  assert.throws(
    () =>
      loadConfig({
        argv: ['--config', '/missing.json'],
        env: {},
        readFile: () => {
          throw new Error('ENOENT');
        },
        fileExists: () => false,
      }),
    /cannot read the config file/,
  );
});

test('NLBRIDGE_CONFIG names the file; /etc/nlbridge/nlbridge.json is read only when it exists', () => {
  let read = '';
  loadConfig({ argv: [], env: { NLBRIDGE_CONFIG: '/etc/other.json' }, readFile: (p) => ((read = p), '{}'), fileExists: () => false });
  assert.equal(read, '/etc/other.json');
  read = '';
  loadConfig({ argv: [], env: {}, readFile: (p) => ((read = p), '{}'), fileExists: (p) => p === '/etc/nlbridge/nlbridge.json' });
  assert.equal(read, '/etc/nlbridge/nlbridge.json');
});

test('--help lists every flag with its variable and file key', () => {
  const r = loadConfig({ argv: ['--port', '1', '--help'], env: {}, ...noFile });
  assert.equal(r.kind, 'help');
  const text = helpText();
  for (const key of Object.keys(DEFAULTS)) assert.match(text, new RegExp(`file key "${key}"`), key);
  for (const flag of [
    '--host',
    '--port',
    '--unix-socket',
    '--protocol',
    '--auth',
    '--token-file',
    '--allowed-hosts',
    '--allowed-origins',
    '--body-limit',
    '--ws-max-payload',
    '--ws-buffer-bytes',
    '--rcvbuf',
    '--config',
  ]) {
    assert.ok(text.includes(flag), flag);
  }
  assert.match(text, /NLBRIDGE_PORT/);
  assert.match(text, /flags > NLBRIDGE_\* environment > config file/);
});

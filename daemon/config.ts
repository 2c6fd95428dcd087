// One validated Config from, in order of precedence: command-line flags,
// NLBRIDGE_* environment variables, a JSON config file (--config,
// NLBRIDGE_CONFIG, else /etc/nlbridge/nlbridge.json when it exists), defaults.

import * as fs from 'node:fs';
import type { ProtocolSetting } from './netlink/protocol';
import { ScopeConfigError, parseTokenSpecs, type ScopedTokenSpec } from './scopes';

export type AuthMode = 'auto' | 'token' | 'none';

export interface Config {
  host: string;
  /** TCP port; null = no TCP listener (unix socket or socket activation only). */
  port: number | null;
  unixSocket: string | null;
  unixSocketMode: number;
  unixSocketGroup: string | null;
  protocol: ProtocolSetting;
  sysfsRoot: string;
  auth: AuthMode;
  tokenFile: string | null;
  /** Where an auto-generated token is written (default: see resolveTokenOut). */
  tokenOut: string | null;
  allowedHosts: string[];
  allowedOrigins: string[];
  bodyLimit: number;
  wsMaxPayload: number;
  wsBufferBytes: number;
  wsStallMs: number;
  rcvbuf: number;
  ackTimeoutMs: number;
  dedupeWindowMs: number;
  ringMessages: number;
  ringMaxAgeMs: number;
  ringMaxBytes: number;
  ringLingerMs: number;
  /** Scoped tokens (config file "tokens" only; see scopes.ts). */
  tokens: ScopedTokenSpec[];
  rateLimit: number;
  /** Connections each listener holds at most (WebSockets included). */
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxStreamsPerToken: number;
  maxUnicastPerToken: number;
  logLevel: string;
  shutdownTimeoutMs: number;
}

/** The daemon's exit statuses (help text, man page). */
export const EXIT_STATUS = [
  { code: 0, meaning: 'stopped by SIGTERM/SIGINT, or --help/--version' },
  { code: 1, meaning: 'a runtime failure (cannot open netlink, cannot listen, shutdown too slow)' },
  { code: 2, meaning: 'invalid settings, or the configured protocol is not available (not retried by the unit)' },
] as const;

export const DEFAULT_CONFIG_FILE = '/etc/nlbridge/nlbridge.json';

type Kind = 'string' | 'int' | 'port' | 'bool' | 'list' | 'mode' | 'protocol' | 'auth' | 'level';

export interface OptionSpec {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  min?: number;
  max?: number;
  nullable?: boolean;
}

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'host', flag: '--host', env: 'NLBRIDGE_HOST', kind: 'string', help: 'TCP address to listen on (default 127.0.0.1)' },
  { key: 'port', flag: '--port', env: 'NLBRIDGE_PORT', kind: 'port', help: 'TCP port (default 8080); "off" for no TCP listener' },
  { key: 'unixSocket', flag: '--unix-socket', env: 'NLBRIDGE_UNIX_SOCKET', kind: 'string', nullable: true, help: 'also listen on this unix socket path (access = its file mode and group, no token)' },
  { key: 'unixSocketMode', flag: '--unix-socket-mode', env: 'NLBRIDGE_UNIX_SOCKET_MODE', kind: 'mode', help: 'octal file mode of the unix socket (default 0660)' },
  { key: 'unixSocketGroup', flag: '--unix-socket-group', env: 'NLBRIDGE_UNIX_SOCKET_GROUP', kind: 'string', nullable: true, help: 'group (name or gid) owning the unix socket' },
  { key: 'protocol', flag: '--protocol', env: 'NLBRIDGE_PROTOCOL', kind: 'protocol', help: 'auto | usersock | dummy | a protocol number (default auto: dummy when the module is loaded, else usersock)' },
  { key: 'sysfsRoot', flag: '--sysfs-root', env: 'NLBRIDGE_SYSFS_ROOT', kind: 'string', help: 'where to look for module/dummy_netlink/parameters (default /sys)' },
  { key: 'auth', flag: '--auth', env: 'NLBRIDGE_AUTH', kind: 'auth', help: 'auto | token | none (default auto: a token is required when the daemon holds CAP_NET_ADMIN)' },
  { key: 'tokenFile', flag: '--token-file', env: 'NLBRIDGE_TOKEN_FILE', kind: 'string', nullable: true, help: 'file holding the bearer token (default $CREDENTIALS_DIRECTORY/token when set)' },
  { key: 'tokenOut', flag: '--token-out', env: 'NLBRIDGE_TOKEN_OUT', kind: 'string', nullable: true, help: 'where to write a generated token, kept across starts, with auth.header (a curl -H @FILE line) next to it (default $RUNTIME_DIRECTORY/token, else .cache/nlbridge/token)' },
  { key: 'allowedHosts', flag: '--allowed-hosts', env: 'NLBRIDGE_ALLOWED_HOSTS', kind: 'list', help: 'comma list of Host values accepted (default localhost,127.0.0.1,[::1] with the port)' },
  { key: 'allowedOrigins', flag: '--allowed-origins', env: 'NLBRIDGE_ALLOWED_ORIGINS', kind: 'list', help: 'comma list of extra Origins accepted (default none: only same-origin and no Origin)' },
  { key: 'bodyLimit', flag: '--body-limit', env: 'NLBRIDGE_BODY_LIMIT', kind: 'int', min: 1024, max: 16 * 1024 * 1024, help: 'largest request body in bytes (default 65536)' },
  { key: 'wsMaxPayload', flag: '--ws-max-payload', env: 'NLBRIDGE_WS_MAX_PAYLOAD', kind: 'int', min: 1024, max: 16 * 1024 * 1024, help: 'largest WebSocket frame a client may send, bytes (default 65536)' },
  { key: 'wsBufferBytes', flag: '--ws-buffer-bytes', env: 'NLBRIDGE_WS_BUFFER_BYTES', kind: 'int', min: 1024, max: 1024 * 1024 * 1024, help: 'per-client send backlog above which frames are dropped (default 1048576)' },
  { key: 'wsStallMs', flag: '--ws-stall-ms', env: 'NLBRIDGE_WS_STALL_MS', kind: 'int', min: 100, max: 3600000, help: 'a client over its backlog this long is closed with 1013 (default 10000)' },
  { key: 'rcvbuf', flag: '--rcvbuf', env: 'NLBRIDGE_RCVBUF', kind: 'int', min: 1024, max: 1024 * 1024 * 1024, help: 'netlink receive buffer in bytes (default 8388608)' },
  { key: 'ackTimeoutMs', flag: '--ack-timeout-ms', env: 'NLBRIDGE_ACK_TIMEOUT_MS', kind: 'int', min: 1, max: 60000, help: 'how long to wait for kernel acks and replies (default 1000)' },
  { key: 'dedupeWindowMs', flag: '--dedupe-window-ms', env: 'NLBRIDGE_DEDUPE_WINDOW_MS', kind: 'int', min: 0, max: 60000, help: 'copies of one message within this window are delivered once (default 1000)' },
  { key: 'ringMessages', flag: '--ring-messages', env: 'NLBRIDGE_RING_MESSAGES', kind: 'int', min: 0, max: 10000000, help: 'received messages kept for resume (?since, Last-Event-ID) and /recent (default 10000; 0 = none)' },
  { key: 'ringMaxAgeMs', flag: '--ring-max-age-ms', env: 'NLBRIDGE_RING_MAX_AGE_MS', kind: 'int', min: 1, max: 86400000, help: 'kept messages older than this are dropped (default 300000)' },
  { key: 'ringMaxBytes', flag: '--ring-max-bytes', env: 'NLBRIDGE_RING_MAX_BYTES', kind: 'int', min: 0, max: 4 * 1024 * 1024 * 1024, help: 'memory cap of the kept messages, bytes (default 16777216)' },
  { key: 'ringLingerMs', flag: '--ring-linger-ms', env: 'NLBRIDGE_RING_LINGER_MS', kind: 'int', min: 0, max: 86400000, help: 'a group stays joined this long after its last subscriber left, so a client can resume (default 60000)' },
  { key: 'rateLimit', flag: '--rate-limit', env: 'NLBRIDGE_RATE_LIMIT', kind: 'int', min: 0, max: 1e9, help: 'sends per minute per token (POST /send and WebSocket writes; default 0 = unlimited)' },
  { key: 'maxConnections', flag: '--max-connections', env: 'NLBRIDGE_MAX_CONNECTIONS', kind: 'int', min: 1, max: 1000000, help: 'connections each listener holds, WebSockets included; more are closed at once (default 4096)' },
  { key: 'headersTimeoutMs', flag: '--headers-timeout-ms', env: 'NLBRIDGE_HEADERS_TIMEOUT_MS', kind: 'int', min: 100, max: 3600000, help: 'a connection must send its request headers within this time (default 10000)' },
  { key: 'requestTimeoutMs', flag: '--request-timeout-ms', env: 'NLBRIDGE_REQUEST_TIMEOUT_MS', kind: 'int', min: 100, max: 3600000, help: 'and its whole request within this time; at least --headers-timeout-ms (default 30000)' },
  { key: 'keepAliveTimeoutMs', flag: '--keep-alive-timeout-ms', env: 'NLBRIDGE_KEEP_ALIVE_TIMEOUT_MS', kind: 'int', min: 100, max: 3600000, help: 'an idle kept-alive connection is closed after this time (default 5000)' },
  { key: 'maxStreamsPerToken', flag: '--max-streams-per-token', env: 'NLBRIDGE_MAX_STREAMS_PER_TOKEN', kind: 'int', min: 1, max: 1000000, help: 'WebSocket and SSE streams one token (or the unix socket) may hold (default 2048)' },
  { key: 'maxUnicastPerToken', flag: '--max-unicast-per-token', env: 'NLBRIDGE_MAX_UNICAST_PER_TOKEN', kind: 'int', min: 0, max: 100000, help: 'of them with ?unicast=1, each a netlink socket with its own receive buffer (default 16)' },
  { key: 'logLevel', flag: '--log-level', env: 'NLBRIDGE_LOG_LEVEL', kind: 'level', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  { key: 'shutdownTimeoutMs', flag: '--shutdown-timeout-ms', env: 'NLBRIDGE_SHUTDOWN_TIMEOUT_MS', kind: 'int', min: 100, max: 60000, help: 'force exit this long after SIGTERM (default 5000)' },
];

export const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: 8080,
  unixSocket: null,
  unixSocketMode: 0o660,
  unixSocketGroup: null,
  protocol: 'auto',
  sysfsRoot: '/sys',
  auth: 'auto',
  tokenFile: null,
  tokenOut: null,
  allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
  allowedOrigins: [],
  bodyLimit: 64 * 1024,
  wsMaxPayload: 64 * 1024,
  wsBufferBytes: 1024 * 1024,
  wsStallMs: 10000,
  rcvbuf: 8 * 1024 * 1024,
  ackTimeoutMs: 1000,
  dedupeWindowMs: 1000,
  ringMessages: 10000,
  ringMaxAgeMs: 300000,
  ringMaxBytes: 16 * 1024 * 1024,
  ringLingerMs: 60000,
  tokens: [],
  rateLimit: 0,
  maxConnections: 4096,
  headersTimeoutMs: 10000,
  requestTimeoutMs: 30000,
  keepAliveTimeoutMs: 5000,
  maxStreamsPerToken: 2048,
  maxUnicastPerToken: 16,
  logLevel: 'info',
  shutdownTimeoutMs: 5000,
};

/** A bad setting: `source` names the flag, variable or file key. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function convert(spec: OptionSpec, raw: unknown, source: string): unknown {
  const fail = (why: string): never => {
    throw new ConfigError(source, `${why}, got ${JSON.stringify(raw)}`);
  };
  if (raw === null && spec.nullable) return null;
  switch (spec.kind) {
    case 'string': {
      if (typeof raw !== 'string' || raw === '') fail('must be a non-empty string');
      return raw;
    }
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n) || n < (spec.min ?? 0) || n > (spec.max ?? Number.MAX_SAFE_INTEGER)) {
        fail(`must be an integer in ${spec.min ?? 0}..${spec.max}`);
      }
      return n;
    }
    case 'port': {
      if (raw === 'off' || raw === null) return null;
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 65535) fail('must be a port number 0..65535 or "off"');
      return n;
    }
    case 'bool': {
      if (raw === true || raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === false || raw === 'false' || raw === '0' || raw === 'no') return false;
      return fail('must be true or false');
    }
    case 'list': {
      if (Array.isArray(raw) && raw.every((s) => typeof s === 'string')) return raw.map((s: string) => s.trim()).filter(Boolean);
      if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
      return fail('must be a comma-separated list');
    }
    case 'mode': {
      const s = typeof raw === 'number' ? raw.toString(8) : raw;
      if (typeof s !== 'string' || !/^0?[0-7]{3}$/.test(s)) fail('must be an octal file mode such as 0660');
      return parseInt(s as string, 8);
    }
    case 'protocol': {
      if (raw === 'auto' || raw === 'usersock' || raw === 'dummy') return raw;
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 31) fail('must be auto, usersock, dummy or a protocol number 0..31');
      return n;
    }
    case 'auth': {
      if (raw === 'auto' || raw === 'token' || raw === 'none') return raw;
      return fail('must be auto, token or none');
    }
    case 'level': {
      if (typeof raw === 'string' && LEVELS.includes(raw)) return raw;
      return fail(`must be one of ${LEVELS.join(', ')}`);
    }
  }
}

export interface LoadOptions {
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Reads a config file; injectable for tests. */
  readFile?: (path: string) => string;
  fileExists?: (path: string) => boolean;
}

export type LoadResult = { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'config'; config: Config; configFile: string | null };

/** Parses flags, env and file. Throws ConfigError naming the offending source. */
export function loadConfig(opts: LoadOptions): LoadResult {
  const readFile = opts.readFile ?? ((p: string) => fs.readFileSync(p, 'utf8'));
  const fileExists = opts.fileExists ?? ((p: string) => fs.existsSync(p));

  // Flags first, so --help and --config work before anything else is read.
  const flagValues = new Map<OptionSpec, string>();
  let configPath: string | null = null;
  const byFlag = new Map(OPTIONS.map((o) => [o.flag, o]));
  const args = opts.argv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--help' || arg === '-h') return { kind: 'help', text: helpText() };
    if (arg === '--version' || arg === '-V') return { kind: 'version' };
    const eq = arg.indexOf('=');
    const name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    if (name === '--config') {
      value ??= args[++i];
      if (value === undefined || value === '') throw new ConfigError('--config', 'needs a file path');
      configPath = value;
      continue;
    }
    const spec = byFlag.get(name);
    if (!spec) throw new ConfigError(name, 'unknown option');
    if (value === undefined) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(name, 'needs a value');
    }
    flagValues.set(spec, value);
  }

  const config: Config = { ...DEFAULTS, allowedHosts: [...DEFAULTS.allowedHosts], allowedOrigins: [] };
  const set = (spec: OptionSpec, raw: unknown, source: string): void => {
    (config as unknown as Record<string, unknown>)[spec.key] = convert(spec, raw, source);
  };

  // File (lowest but defaults).
  if (configPath === null && opts.env.NLBRIDGE_CONFIG) configPath = opts.env.NLBRIDGE_CONFIG;
  let configFile: string | null = null;
  if (configPath !== null || fileExists(DEFAULT_CONFIG_FILE)) {
    configFile = configPath ?? DEFAULT_CONFIG_FILE;
    let text: string;
    try {
      text = readFile(configFile);
    } catch (err) {
      throw new ConfigError(configFile, `cannot read the config file: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(configFile, `is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new ConfigError(configFile, 'must hold a JSON object');
    }
    const byKey = new Map(OPTIONS.map((o) => [o.key as string, o]));
    for (const [k, v] of Object.entries(parsed)) {
      if (k === 'tokens') {
        try {
          config.tokens = parseTokenSpecs(v);
        } catch (err) {
          if (err instanceof ScopeConfigError) throw new ConfigError(`${configFile}: "tokens"`, err.message);
          throw err;
        }
        continue;
      }
      const spec = byKey.get(k);
      if (!spec) throw new ConfigError(`${configFile}: "${k}"`, 'unknown setting (see --help for names)');
      set(spec, v, `${configFile}: "${k}"`);
    }
  }

  for (const spec of OPTIONS) {
    const v = opts.env[spec.env];
    if (v !== undefined && v !== '') set(spec, v, spec.env);
  }
  for (const [spec, v] of flagValues) set(spec, v, spec.flag);

  if (config.port === null && config.unixSocket === null && !opts.env.LISTEN_FDS) {
    throw new ConfigError('--port', 'is off and no --unix-socket is set: nothing to listen on');
  }
  if (config.requestTimeoutMs < config.headersTimeoutMs) {
    throw new ConfigError('--request-timeout-ms', `must be at least --headers-timeout-ms (${config.headersTimeoutMs}), got ${config.requestTimeoutMs}`);
  }
  return { kind: 'config', config, configFile };
}

export function helpText(): string {
  const lines = [
    'usage: nlbridge [options]',
    '',
    'A bridge between raw netlink and HTTP/WebSocket.',
    'Precedence: flags > NLBRIDGE_* environment > config file (--config FILE or NLBRIDGE_CONFIG,',
    `else ${DEFAULT_CONFIG_FILE} when it exists; JSON with the camelCase keys below) > defaults.`,
    '',
    '  --config FILE                 JSON config file                                   [NLBRIDGE_CONFIG]',
  ];
  for (const o of OPTIONS) {
    const left = `  ${o.flag} VALUE`.padEnd(32);
    lines.push(`${left}${o.help}`);
    lines.push(`${''.padEnd(32)}env ${o.env}, file key "${o.key}"`);
  }
  lines.push('  --help, -h                    this text');
  lines.push('  --version, -V                 the version');
  lines.push('');
  lines.push('Scoped tokens: config file only, file key "tokens": a list of {"name", "token" | "tokenFile" |');
  lines.push('"credential" (a systemd credential name), "read", "sendGroups", "sendPorts" ("*" or a list; left out');
  lines.push('= no limit), "sendTypes" ("*" or a list of nlmsg_type values; default [16], DATA only),');
  lines.push('"kernel" (RELAY, BCAST and port 0; default true)}. Scoped tokens may not read /status, /metrics or');
  lines.push('/kernel/stats (they describe the whole daemon): those need the main token or the unix socket.');
  lines.push('');
  lines.push('Systemd: LISTEN_FDS (socket activation), NOTIFY_SOCKET, WATCHDOG_USEC, CREDENTIALS_DIRECTORY,');
  lines.push('RUNTIME_DIRECTORY are honoured.');
  lines.push('');
  lines.push(`Exit status: ${EXIT_STATUS.map((e) => `${e.code} ${e.meaning}`).join('; ')}.`);
  return lines.join('\n') + '\n';
}

// THE option table: one JSON Schema whose properties hold, per option, its
// type and bounds (validated by Ajv, see load.ts), its default, its flag, its
// environment variable and its help text. --help, the man page, DEFAULTS and
// the other rooms' defaults (the ring's bounds, the bus's linger) are all
// read from here, so a default is written once. Over 400 lines because it
// is that table: one entry per option, nothing else.
//
// Annotations beyond JSON Schema (registered with Ajv as a vocabulary):
//   x-flag      the command-line flag
//   x-env       the environment variable
//   x-text      how a text value (flag, env var, or a string in the file)
//               becomes the typed value: 'list' (comma-separated),
//               'octal' (a file mode), 'off-null' ("off" means null);
//               digits become a number wherever the type allows an integer
//   x-must-be   the error's wording where it is not "must be an integer in
//               MIN..MAX" (derived from the bounds)
// `description` is the help text; "{default}" in it is replaced by the
// default, rendered as a user would type it.

import type { ScopedTokenSpec, SendLimitsSpec } from './tokens';

export type ProtocolSetting = 'auto' | 'usersock' | 'dummy' | number;
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
  /** A network namespace file the netlink sockets are opened in; null = the daemon's own. */
  netns: string | null;
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
  /** Scoped tokens (config file "tokens" only; see tokens.ts). */
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
  /** NATS servers of the fleet (daemon/fleet/); empty = no NATS at all. */
  nats: string[];
  natsCreds: string | null;
  natsTokenFile: string | null;
  /** An nkey seed file (a user's "SU…" seed); the server's config names the public key. */
  natsNkey: string | null;
  /** PEM CA the NATS server's certificate must chain to (TLS required when set). */
  natsTlsCa: string | null;
  /** PEM client certificate and its key, for a server that verifies clients (both or neither). */
  natsTlsCert: string | null;
  natsTlsKey: string | null;
  /** This host's name on the bus; null = the hostname up to its first dot. */
  hostId: string | null;
  /** Groups published on NATS, as given (a mask, or a list with a comma); null = none. */
  natsPublish: string | null;
  natsBufferBytes: number;
  /** While busy (natsLingerAbove), the least time between two hand-overs of published messages to the NATS client, ms; 0 = at the end of every receive batch. */
  natsLingerMs: number;
  /** The linger holds only while messages come at least this fast, msg/s; 0 = always. */
  natsLingerAbove: number;
  /** Answer send requests on nlbridge.<host>.send ('off' by default: anyone who may publish there sends with the daemon's privileges). */
  natsSend: 'off' | 'on';
  /** What NATS sends may do (config file "natsSendScope" only; see tokens.ts); null = nothing. */
  natsSendScope: SendLimitsSpec | null;
  /** A JetStream stream holds the fleet's group subjects: /fleet streams resume with ?since= (daemon/fleet/jetstream.ts). */
  natsJetstream: 'off' | 'on';
  natsStream: string;
  natsStreamMaxBytes: number;
  natsStreamMaxAgeS: number;
  natsStreamDuplicateWindowS: number;
}

/** The keys a flag, variable and file key set ("tokens" and "natsSendScope" are file-only, see tokens.ts). */
export type OptionKey = Exclude<keyof Config, 'tokens' | 'natsSendScope'>;

/** One option's JSON Schema with the annotations above. */
export interface OptionSchema {
  type?: 'string' | 'integer' | 'array' | ReadonlyArray<'string' | 'integer' | 'null'>;
  enum?: readonly string[];
  anyOf?: readonly object[];
  items?: object;
  minLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  default: unknown;
  description: string;
  'x-flag': string;
  'x-env': string;
  'x-text'?: 'list' | 'octal' | 'off-null';
  'x-must-be'?: string;
}

export const DEFAULT_CONFIG_FILE = '/etc/nlbridge/nlbridge.json';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const MiB = 1024 * 1024;
const nonEmpty = { type: 'string', minLength: 1, 'x-must-be': 'must be a non-empty string' } as const;
const nullableText = { type: ['string', 'null'], minLength: 1, default: null, 'x-must-be': 'must be a non-empty string' } as const;
const list = { type: 'array', items: { type: 'string' }, 'x-text': 'list', 'x-must-be': 'must be a comma-separated list' } as const;
const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;

// Order is the order of --help and the man page.
export const OPTION_SCHEMAS = {
  host: {
    ...nonEmpty,
    default: '127.0.0.1',
    'x-flag': '--host',
    'x-env': 'NLBRIDGE_HOST',
    description: 'TCP address to listen on (default {default})',
  },
  port: {
    type: ['integer', 'null'],
    minimum: 0,
    maximum: 65535,
    default: 8080,
    'x-text': 'off-null',
    'x-must-be': 'must be a port number 0..65535 or "off"',
    'x-flag': '--port',
    'x-env': 'NLBRIDGE_PORT',
    description: 'TCP port (default {default}); "off" for no TCP listener',
  },
  unixSocket: {
    ...nullableText,
    'x-flag': '--unix-socket',
    'x-env': 'NLBRIDGE_UNIX_SOCKET',
    description: 'also listen on this unix socket path (access = its file mode and group, no token)',
  },
  unixSocketMode: {
    type: 'integer',
    minimum: 0,
    maximum: 0o777,
    default: 0o660,
    'x-text': 'octal',
    'x-must-be': 'must be an octal file mode such as 0660',
    'x-flag': '--unix-socket-mode',
    'x-env': 'NLBRIDGE_UNIX_SOCKET_MODE',
    description: 'octal file mode of the unix socket (default {default})',
  },
  unixSocketGroup: {
    ...nullableText,
    'x-flag': '--unix-socket-group',
    'x-env': 'NLBRIDGE_UNIX_SOCKET_GROUP',
    description: 'group (name or gid) owning the unix socket',
  },
  protocol: {
    anyOf: [{ enum: ['auto', 'usersock', 'dummy'] }, { type: 'integer', minimum: 0, maximum: 31 }],
    default: 'auto',
    'x-must-be': 'must be auto, usersock, dummy or a protocol number 0..31',
    'x-flag': '--protocol',
    'x-env': 'NLBRIDGE_PROTOCOL',
    description: 'auto | usersock | dummy | a protocol number (default {default}: dummy when the module is loaded, else usersock)',
  },
  sysfsRoot: {
    ...nonEmpty,
    default: '/sys',
    'x-flag': '--sysfs-root',
    'x-env': 'NLBRIDGE_SYSFS_ROOT',
    description: 'where to look for module/dummy_netlink/parameters (default {default})',
  },
  netns: {
    ...nullableText,
    'x-flag': '--netns',
    'x-env': 'NLBRIDGE_NETNS',
    description:
      "open every netlink socket inside the network namespace at this path (/run/netns/NAME, /proc/PID/ns/net), as ip netns exec would; HTTP and NATS stay in the daemon's own; needs CAP_SYS_ADMIN (default: the daemon's own)",
  },
  auth: {
    enum: ['auto', 'token', 'none'],
    default: 'auto',
    'x-must-be': 'must be auto, token or none',
    'x-flag': '--auth',
    'x-env': 'NLBRIDGE_AUTH',
    description: 'auto | token | none (default {default}: a token is required when the daemon holds CAP_NET_ADMIN)',
  },
  tokenFile: {
    ...nullableText,
    'x-flag': '--token-file',
    'x-env': 'NLBRIDGE_TOKEN_FILE',
    description: 'file holding the bearer token (default $CREDENTIALS_DIRECTORY/token when set)',
  },
  tokenOut: {
    ...nullableText,
    'x-flag': '--token-out',
    'x-env': 'NLBRIDGE_TOKEN_OUT',
    description:
      'where to write a generated token, kept across starts, with auth.header (a curl -H @FILE line) next to it (default $RUNTIME_DIRECTORY/token, else .cache/nlbridge/token)',
  },
  allowedHosts: {
    ...list,
    default: ['localhost', '127.0.0.1', '[::1]'],
    'x-flag': '--allowed-hosts',
    'x-env': 'NLBRIDGE_ALLOWED_HOSTS',
    description: 'comma list of Host values accepted (default {default} with the port)',
  },
  allowedOrigins: {
    ...list,
    default: [],
    'x-flag': '--allowed-origins',
    'x-env': 'NLBRIDGE_ALLOWED_ORIGINS',
    description: 'comma list of extra Origins accepted (default none: only same-origin and no Origin)',
  },
  bodyLimit: {
    ...int(1024, 16 * MiB),
    default: 64 * 1024,
    'x-flag': '--body-limit',
    'x-env': 'NLBRIDGE_BODY_LIMIT',
    description: 'largest request body in bytes (default {default})',
  },
  wsMaxPayload: {
    ...int(1024, 16 * MiB),
    default: 64 * 1024,
    'x-flag': '--ws-max-payload',
    'x-env': 'NLBRIDGE_WS_MAX_PAYLOAD',
    description: 'largest WebSocket frame a client may send, bytes (default {default})',
  },
  wsBufferBytes: {
    ...int(1024, 1024 * MiB),
    default: MiB,
    'x-flag': '--ws-buffer-bytes',
    'x-env': 'NLBRIDGE_WS_BUFFER_BYTES',
    description: 'per-client send backlog above which frames are dropped (default {default})',
  },
  wsStallMs: {
    ...int(100, 3600000),
    default: 10000,
    'x-flag': '--ws-stall-ms',
    'x-env': 'NLBRIDGE_WS_STALL_MS',
    description: 'a client over its backlog this long is closed with 1013 (default {default})',
  },
  rcvbuf: {
    ...int(1024, 1024 * MiB),
    default: 8 * MiB,
    'x-flag': '--rcvbuf',
    'x-env': 'NLBRIDGE_RCVBUF',
    description: 'netlink receive buffer in bytes (default {default})',
  },
  ackTimeoutMs: {
    ...int(1, 60000),
    default: 1000,
    'x-flag': '--ack-timeout-ms',
    'x-env': 'NLBRIDGE_ACK_TIMEOUT_MS',
    description: 'how long to wait for kernel acks and replies (default {default})',
  },
  dedupeWindowMs: {
    ...int(0, 60000),
    default: 1000,
    'x-flag': '--dedupe-window-ms',
    'x-env': 'NLBRIDGE_DEDUPE_WINDOW_MS',
    description: 'copies of one message within this window are delivered once (default {default})',
  },
  ringMessages: {
    ...int(0, 10000000),
    default: 10000,
    'x-flag': '--ring-messages',
    'x-env': 'NLBRIDGE_RING_MESSAGES',
    description: 'received messages kept for resume (?since, Last-Event-ID) and /recent (default {default}; 0 = none)',
  },
  ringMaxAgeMs: {
    ...int(1, 86400000),
    default: 300000,
    'x-flag': '--ring-max-age-ms',
    'x-env': 'NLBRIDGE_RING_MAX_AGE_MS',
    description: 'kept messages older than this are dropped (default {default})',
  },
  ringMaxBytes: {
    ...int(0, 4 * 1024 * MiB),
    default: 16 * MiB,
    'x-flag': '--ring-max-bytes',
    'x-env': 'NLBRIDGE_RING_MAX_BYTES',
    description: 'memory cap of the kept messages, bytes (default {default})',
  },
  ringLingerMs: {
    ...int(0, 86400000),
    default: 60000,
    'x-flag': '--ring-linger-ms',
    'x-env': 'NLBRIDGE_RING_LINGER_MS',
    description: 'a group stays joined this long after its last subscriber left, so a client can resume (default {default})',
  },
  rateLimit: {
    ...int(0, 1e9),
    default: 0,
    'x-flag': '--rate-limit',
    'x-env': 'NLBRIDGE_RATE_LIMIT',
    description: 'sends per minute per token (POST /send and WebSocket writes; default {default} = unlimited)',
  },
  maxConnections: {
    ...int(1, 1000000),
    default: 4096,
    'x-flag': '--max-connections',
    'x-env': 'NLBRIDGE_MAX_CONNECTIONS',
    description: 'connections each listener holds, WebSockets included; more are closed at once (default {default})',
  },
  headersTimeoutMs: {
    ...int(100, 3600000),
    default: 10000,
    'x-flag': '--headers-timeout-ms',
    'x-env': 'NLBRIDGE_HEADERS_TIMEOUT_MS',
    description: 'a connection must send its request headers within this time (default {default})',
  },
  requestTimeoutMs: {
    ...int(100, 3600000),
    default: 30000,
    'x-flag': '--request-timeout-ms',
    'x-env': 'NLBRIDGE_REQUEST_TIMEOUT_MS',
    description: 'and its whole request within this time; at least --headers-timeout-ms (default {default})',
  },
  keepAliveTimeoutMs: {
    ...int(100, 3600000),
    default: 5000,
    'x-flag': '--keep-alive-timeout-ms',
    'x-env': 'NLBRIDGE_KEEP_ALIVE_TIMEOUT_MS',
    description: 'an idle kept-alive connection is closed after this time (default {default})',
  },
  maxStreamsPerToken: {
    ...int(1, 1000000),
    default: 2048,
    'x-flag': '--max-streams-per-token',
    'x-env': 'NLBRIDGE_MAX_STREAMS_PER_TOKEN',
    description: 'WebSocket and SSE streams one token (or the unix socket) may hold (default {default})',
  },
  maxUnicastPerToken: {
    ...int(0, 100000),
    default: 16,
    'x-flag': '--max-unicast-per-token',
    'x-env': 'NLBRIDGE_MAX_UNICAST_PER_TOKEN',
    description: 'of them with ?unicast=1, each a netlink socket with its own receive buffer (default {default})',
  },
  logLevel: {
    enum: LOG_LEVELS,
    default: 'info',
    'x-must-be': `must be one of ${LOG_LEVELS.join(', ')}`,
    'x-flag': '--log-level',
    'x-env': 'NLBRIDGE_LOG_LEVEL',
    description: `${LOG_LEVELS.join('|')} (default {default})`,
  },
  shutdownTimeoutMs: {
    ...int(100, 60000),
    default: 5000,
    'x-flag': '--shutdown-timeout-ms',
    'x-env': 'NLBRIDGE_SHUTDOWN_TIMEOUT_MS',
    description: 'force exit this long after SIGTERM (default {default})',
  },
  nats: {
    ...list,
    items: { type: 'string', pattern: '^((nats|tls)://)?[^\\s/,]+$' },
    'x-must-be': 'must be a comma-separated list of NATS server URLs (nats://HOST:PORT)',
    default: [],
    'x-flag': '--nats',
    'x-env': 'NLBRIDGE_NATS',
    description: 'comma list of NATS servers of the fleet (default {default}: no NATS, nothing of it is loaded)',
  },
  natsCreds: {
    ...nullableText,
    'x-flag': '--nats-creds',
    'x-env': 'NLBRIDGE_NATS_CREDS',
    description:
      'NATS credentials file (a user JWT + its nkey seed, as nsc writes it); refused when group or others may read it, or when it holds no user JWT and matching seed',
  },
  natsTokenFile: {
    ...nullableText,
    'x-flag': '--nats-token-file',
    'x-env': 'NLBRIDGE_NATS_TOKEN_FILE',
    description: 'file holding the NATS token (never the token itself on the command line); refused when group or others may read it',
  },
  natsNkey: {
    ...nullableText,
    'x-flag': '--nats-nkey',
    'x-env': 'NLBRIDGE_NATS_NKEY',
    description: 'file holding a NATS user nkey seed (SU…); refused when group or others may read it',
  },
  natsTlsCa: {
    ...nullableText,
    'x-flag': '--nats-tls-ca',
    'x-env': 'NLBRIDGE_NATS_TLS_CA',
    description: "PEM file of the CA that signed the NATS server's certificate; TLS is then required",
  },
  natsTlsCert: {
    ...nullableText,
    'x-flag': '--nats-tls-cert',
    'x-env': 'NLBRIDGE_NATS_TLS_CERT',
    description: 'PEM client certificate for a NATS server that verifies clients (with --nats-tls-key)',
  },
  natsTlsKey: {
    ...nullableText,
    'x-flag': '--nats-tls-key',
    'x-env': 'NLBRIDGE_NATS_TLS_KEY',
    description: 'PEM private key of --nats-tls-cert; refused when group or others may read it',
  },
  hostId: {
    type: ['string', 'null'],
    // The same rule as daemon/fleet/subjects.ts's isSubjectToken and MAX_HOST_ID_LENGTH.
    pattern: '^[^.*>\\s\\x00-\\x1f\\x7f]{1,64}$',
    default: null,
    'x-must-be': 'must be a NATS subject token of at most 64 characters (no ".", "*", ">", whitespace or control characters)',
    'x-flag': '--host-id',
    'x-env': 'NLBRIDGE_HOST_ID',
    description: "this host's name in the fleet's NATS subjects (default: the hostname up to its first dot)",
  },
  natsPublish: {
    ...nullableText,
    'x-flag': '--nats-publish',
    'x-env': 'NLBRIDGE_NATS_PUBLISH',
    description:
      'groups published on NATS: a mask as in /groups/{mask} ("10", "0b1010": groups 2 and 4) or a list with a comma ("2,4", "2,") (default none)',
  },
  natsSend: {
    enum: ['off', 'on'],
    default: 'off',
    'x-must-be': 'must be off or on',
    'x-flag': '--nats-send',
    'x-env': 'NLBRIDGE_NATS_SEND',
    description:
      'on: answer NATS requests on nlbridge.<host>.send with the body and answers of POST /send, within the config file\'s "natsSendScope" (without one every send is refused 403) (default {default})',
  },
  natsBufferBytes: {
    ...int(1024, 1024 * MiB),
    default: 8 * MiB,
    'x-flag': '--nats-buffer-bytes',
    'x-env': 'NLBRIDGE_NATS_BUFFER_BYTES',
    description:
      'messages held for NATS while disconnected (or unconfirmed), bytes; beyond it they are dropped and counted (default {default})',
  },
  natsLingerMs: {
    ...int(0, 1000),
    default: 5,
    'x-flag': '--nats-linger-ms',
    'x-env': 'NLBRIDGE_NATS_LINGER_MS',
    description:
      'while messages come at --nats-linger-above or faster, hold published messages up to this long so that several receive batches go to NATS in one write: less CPU for the daemon and nats-server, for delay on NATS; 0: never hold (default {default})',
  },
  natsLingerAbove: {
    ...int(0, 100_000_000),
    default: 20_000,
    'x-flag': '--nats-linger-above',
    'x-env': 'NLBRIDGE_NATS_LINGER_ABOVE',
    description:
      'the rate of published messages, msg/s over the last 10 ms, from which --nats-linger-ms holds them; below it each receive batch goes at once; 0: hold at any rate (default {default})',
  },
  natsJetstream: {
    enum: ['off', 'on'],
    default: 'off',
    'x-must-be': 'must be off or on',
    'x-flag': '--nats-jetstream',
    'x-env': 'NLBRIDGE_NATS_JETSTREAM',
    description:
      'on: keep the published groups (nlbridge.*.g.*) in a JetStream stream, created if absent, so /fleet streams resume with ?since= (default {default})',
  },
  natsStream: {
    type: 'string',
    pattern: '^[A-Za-z0-9_-]{1,64}$',
    default: 'NLBRIDGE',
    'x-must-be': 'must be a JetStream stream name (1-64 of A-Z a-z 0-9 _ -)',
    'x-flag': '--nats-stream',
    'x-env': 'NLBRIDGE_NATS_STREAM',
    description: 'name of the JetStream stream of --nats-jetstream (default {default})',
  },
  natsStreamMaxBytes: {
    ...int(1024 * 1024, 1024 * 1024 * MiB),
    default: 256 * MiB,
    'x-flag': '--nats-stream-max-bytes',
    'x-env': 'NLBRIDGE_NATS_STREAM_MAX_BYTES',
    description: 'the stream keeps at most this many bytes, the oldest messages discarded first (default {default})',
  },
  natsStreamMaxAgeS: {
    ...int(1, 365 * 86400),
    default: 86400,
    'x-flag': '--nats-stream-max-age-s',
    'x-env': 'NLBRIDGE_NATS_STREAM_MAX_AGE_S',
    description: 'the stream keeps a message at most this many seconds (default {default})',
  },
  natsStreamDuplicateWindowS: {
    ...int(1, 3600),
    default: 120,
    'x-flag': '--nats-stream-duplicate-window-s',
    'x-env': 'NLBRIDGE_NATS_STREAM_DUPLICATE_WINDOW_S',
    description: 'a message resent (same Nats-Msg-Id) within this many seconds is stored once; at most the max age (default {default})',
  },
} as const satisfies Record<OptionKey, OptionSchema>;

/** The default, as --help and the man page show it (a mode in octal, a list comma-joined). */
export function defaultText(schema: OptionSchema): string {
  const d = schema.default;
  if (schema['x-text'] === 'octal') return `0${(d as number).toString(8)}`;
  if (Array.isArray(d)) return d.length ? d.join(',') : 'none';
  return String(d);
}

export interface OptionSpec {
  key: OptionKey;
  flag: string;
  env: string;
  help: string;
  schema: OptionSchema;
}

/** The options in table form (--help, the man page, the CLI tests). */
export const OPTIONS: readonly OptionSpec[] = (Object.entries(OPTION_SCHEMAS) as [OptionKey, OptionSchema][]).map(([key, schema]) => ({
  key,
  flag: schema['x-flag'],
  env: schema['x-env'],
  help: schema.description.replace('{default}', defaultText(schema)),
  schema,
}));

/** Every default, from the schema. Lists are frozen: loadConfig copies them. */
export const DEFAULTS: Readonly<Config> = Object.freeze({
  ...(Object.fromEntries(OPTIONS.map((o) => [o.key, o.schema.default])) as Omit<Config, 'tokens' | 'natsSendScope'>),
  tokens: [],
  natsSendScope: null,
});

/**
 * Defaults other rooms start from when built without a Config (tests, the
 * bench): the resume ring's bounds and the bus's linger. Import these rather
 * than retype the numbers.
 */
export const RING_DEFAULTS_FROM_SCHEMA = {
  maxMessages: OPTION_SCHEMAS.ringMessages.default,
  maxAgeMs: OPTION_SCHEMAS.ringMaxAgeMs.default,
  maxBytes: OPTION_SCHEMAS.ringMaxBytes.default,
} as const;
export const RING_LINGER_MS_DEFAULT: number = OPTION_SCHEMAS.ringLingerMs.default;

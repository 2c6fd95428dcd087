// One validated Config from, in order of precedence: command-line flags,
// NLBRIDGE_* environment variables, a JSON config file (--config,
// NLBRIDGE_CONFIG, else /etc/nlbridge/nlbridge.json when it exists), defaults.
// Flags are split by node:util parseArgs; every value, whatever its source,
// is checked by Ajv against its option's schema (schema.ts) where it is read,
// so the error names that source: the flag, the variable or the file key.

import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import Ajv, { type ValidateFunction } from 'ajv';
import { helpText } from './help';
import { DEFAULTS, DEFAULT_CONFIG_FILE, OPTIONS, type Config, type OptionKey, type OptionSchema, type OptionSpec } from './schema';
import { ScopeConfigError, parseSendLimitsSpec, parseTokenSpecs } from './tokens';

/** A bad setting: `source` names the flag, variable or file key. */
export class ConfigError extends Error {
  readonly code = 'ECONFIG';
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * Each option's validator, compiled the first time a value of that option is
 * read, by an Ajv instance that lives for one loadConfig call. Compiled up
 * front and kept, the validators of every option held 0.9 MiB of heap for the
 * daemon's life, and a daemon is given a handful of options.
 */
class OptionChecker {
  private ajv: Ajv | null = null;
  private readonly compiled = new Map<OptionKey, ValidateFunction>();

  validator(spec: OptionSpec): ValidateFunction {
    let v = this.compiled.get(spec.key);
    if (v === undefined) this.compiled.set(spec.key, (v = this.instance().compile(spec.schema)));
    return v;
  }

  private instance(): Ajv {
    if (this.ajv === null) {
      // Ajv knows the schema's own annotations, so strict mode still catches a
      // misspelt JSON Schema keyword in schema.ts (compileEveryOptionSchema, for the tests).
      this.ajv = new Ajv({ strict: true, allowUnionTypes: true });
      this.ajv.addVocabulary(['x-flag', 'x-env', 'x-text', 'x-must-be']);
    }
    return this.ajv;
  }
}

/** Compiles every option's schema in strict mode (what the daemon compiles only when an option is given); throws on a bad one. */
export function compileEveryOptionSchema(): number {
  const checker = new OptionChecker();
  for (const spec of OPTIONS) checker.validator(spec);
  return OPTIONS.length;
}

/** The wording of an option's error: its schema's x-must-be, else its integer bounds. */
function mustBe(schema: OptionSchema): string {
  return schema['x-must-be'] ?? `must be an integer in ${schema.minimum}..${schema.maximum}`;
}

function allowsInteger(schema: OptionSchema): boolean {
  const types = schema.anyOf ? schema.anyOf.map((s) => (s as OptionSchema).type) : [schema.type];
  return types.some((t) => t === 'integer' || (Array.isArray(t) && t.includes('integer')));
}

/**
 * A value as given (text from a flag or variable, JSON from the file) in the
 * typed form the schema checks. Anything it cannot read is passed on as it
 * is, for the schema to refuse.
 */
function decode(schema: OptionSchema, raw: unknown): unknown {
  switch (schema['x-text']) {
    case 'list':
      if (typeof raw === 'string')
        return raw
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
      if (Array.isArray(raw) && raw.every((s) => typeof s === 'string')) return raw.map((s: string) => s.trim()).filter(Boolean);
      return raw;
    case 'octal': {
      // A number in the file is read as the digits of its octal form (as before).
      const s = typeof raw === 'number' ? raw.toString(8) : raw;
      return typeof s === 'string' && /^0?[0-7]{3}$/.test(s) ? parseInt(s, 8) : raw;
    }
    case 'off-null':
      if (raw === 'off') return null;
      break;
  }
  if (typeof raw === 'string' && /^[0-9]+$/.test(raw) && allowsInteger(schema)) return Number(raw);
  return raw;
}

/** @raw from @source, decoded and checked; throws ConfigError naming @source. */
function checked(checker: OptionChecker, spec: OptionSpec, raw: unknown, source: string): unknown {
  const value = decode(spec.schema, raw);
  if (!checker.validator(spec)(value)) throw new ConfigError(source, `${mustBe(spec.schema)}, got ${JSON.stringify(raw)}`);
  return value;
}

export interface LoadOptions {
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** Reads a config file; injectable for tests. */
  readFile?: (path: string) => string;
  fileExists?: (path: string) => boolean;
}

export type LoadResult =
  { kind: 'help'; text: string } | { kind: 'version' } | { kind: 'config'; config: Config; configFile: string | null };

const BY_NAME = new Map(OPTIONS.map((o) => [o.flag.slice(2), o]));

const PARSE_OPTIONS = {
  ...Object.fromEntries(OPTIONS.map((o) => [o.flag.slice(2), { type: 'string' as const }])),
  config: { type: 'string' as const },
  help: { type: 'boolean' as const, short: 'h' },
  version: { type: 'boolean' as const, short: 'V' },
};

type Flags = { kind: 'help' } | { kind: 'version' } | { kind: 'values'; values: Map<OptionSpec, string>; configPath: string | null };

/**
 * The command line, read in order so that --help and --version win over
 * whatever follows them, and the first bad argument is the one reported.
 * parseArgs runs non-strict and hands back tokens: its own errors do not name
 * the flag in the form the rest of the daemon uses ("--port: needs a value").
 */
function readFlags(argv: string[]): Flags {
  const { tokens } = parseArgs({ args: argv, options: PARSE_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<OptionSpec, string>();
  let configPath: string | null = null;
  for (const t of tokens) {
    if (t.kind === 'positional') throw new ConfigError(t.value, 'unknown option');
    if (t.kind !== 'option') continue; // '--' ends the options; nothing follows it here
    if (t.name === 'help' && t.value === undefined) return { kind: 'help' };
    if (t.name === 'version' && t.value === undefined) return { kind: 'version' };
    if (t.name === 'config') {
      if (t.value === undefined || t.value === '') throw new ConfigError('--config', 'needs a file path');
      configPath = t.value;
      continue;
    }
    const spec = t.rawName.startsWith('--') ? BY_NAME.get(t.name) : undefined;
    if (!spec) throw new ConfigError(t.rawName, 'unknown option');
    if (t.value === undefined) throw new ConfigError(t.rawName, 'needs a value');
    values.set(spec, t.value);
  }
  return { kind: 'values', values, configPath };
}

/** The config file's settings, each checked and named by its key. */
function readFile(file: string, read: (path: string) => string, into: Config, checker: OptionChecker): void {
  let text: string;
  try {
    text = read(file);
  } catch (err) {
    throw new ConfigError(file, `cannot read the config file: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(file, `is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(file, 'must hold a JSON object');
  }
  const byKey = new Map<string, OptionSpec>(OPTIONS.map((o) => [o.key, o]));
  for (const [k, v] of Object.entries(parsed)) {
    // The two keys that are objects, not options: each has its own parser.
    if (k === 'tokens' || k === 'natsSendScope') {
      try {
        if (k === 'tokens') into.tokens = parseTokenSpecs(v);
        else into.natsSendScope = parseSendLimitsSpec(v);
      } catch (err) {
        if (err instanceof ScopeConfigError) throw new ConfigError(`${file}: "${k}"`, err.message);
        throw err;
      }
      continue;
    }
    const spec = byKey.get(k);
    // No "(see --help)" here: main.ts adds that line to every ConfigError.
    if (!spec) throw new ConfigError(`${file}: "${k}"`, 'unknown setting');
    set(into, spec, checked(checker, spec, v, `${file}: "${k}"`));
  }
}

function set(config: Config, spec: OptionSpec, value: unknown): void {
  (config as unknown as Record<string, unknown>)[spec.key] = value;
}

/** Parses flags, env and file. Throws ConfigError naming the offending source. */
export function loadConfig(opts: LoadOptions): LoadResult {
  const read = opts.readFile ?? ((p: string) => fs.readFileSync(p, 'utf8'));
  const fileExists = opts.fileExists ?? ((p: string) => fs.existsSync(p));

  // Flags first, so --help and --config work before anything else is read.
  const flags = readFlags(opts.argv);
  if (flags.kind === 'help') return { kind: 'help', text: helpText() };
  if (flags.kind === 'version') return flags;

  const config: Config = structuredClone(DEFAULTS) as Config;
  const checker = new OptionChecker();

  const configPath = flags.configPath ?? (opts.env.NLBRIDGE_CONFIG || null);
  let configFile: string | null = null;
  if (configPath !== null || fileExists(DEFAULT_CONFIG_FILE)) {
    configFile = configPath ?? DEFAULT_CONFIG_FILE;
    readFile(configFile, read, config, checker);
  }
  for (const spec of OPTIONS) {
    const v = opts.env[spec.env];
    if (v !== undefined && v !== '') set(config, spec, checked(checker, spec, v, spec.env));
  }
  for (const [spec, v] of flags.values) set(config, spec, checked(checker, spec, v, spec.flag));

  if (config.port === null && config.unixSocket === null && !opts.env.LISTEN_FDS) {
    throw new ConfigError('--port', 'is off and no --unix-socket is set: nothing to listen on');
  }
  if (config.nats.length === 0) {
    // The NATS options mean nothing without servers: a forgotten --nats would
    // otherwise leave the fleet silently off. One set to anything but its
    // default (null, off, or the linger's values) was set for NATS.
    for (const key of [
      'natsCreds',
      'natsTokenFile',
      'natsNkey',
      'natsTlsCa',
      'natsTlsCert',
      'natsTlsKey',
      'natsPublish',
      'natsSend',
      'natsJetstream',
      'natsLingerMs',
      'natsLingerAbove',
    ] as const) {
      if (config[key] !== DEFAULTS[key]) throw new ConfigError(OPTIONS.find((o) => o.key === key)!.flag, 'needs --nats (the NATS servers)');
    }
    if (config.natsSendScope !== null) throw new ConfigError(`${configFile}: "natsSendScope"`, 'needs --nats (the NATS servers)');
  }
  if (config.natsCreds !== null && config.natsTokenFile !== null) {
    throw new ConfigError('--nats-token-file', 'and --nats-creds both given: use one way to authenticate to NATS');
  }
  if (config.natsNkey !== null && (config.natsCreds !== null || config.natsTokenFile !== null)) {
    throw new ConfigError(
      '--nats-nkey',
      `and ${config.natsCreds !== null ? '--nats-creds' : '--nats-token-file'} both given: use one way to authenticate to NATS`,
    );
  }
  if (config.natsStreamDuplicateWindowS > config.natsStreamMaxAgeS) {
    throw new ConfigError(
      '--nats-stream-duplicate-window-s',
      `(${config.natsStreamDuplicateWindowS} s${config.natsStreamDuplicateWindowS === 120 ? ', the default' : ''}) must be at most --nats-stream-max-age-s (${config.natsStreamMaxAgeS} s): the server refuses a longer one (set both)`,
    );
  }
  if ((config.natsTlsCert === null) !== (config.natsTlsKey === null)) {
    throw new ConfigError(
      config.natsTlsCert === null ? '--nats-tls-key' : '--nats-tls-cert',
      'needs --nats-tls-cert and --nats-tls-key together',
    );
  }
  if (config.requestTimeoutMs < config.headersTimeoutMs) {
    throw new ConfigError(
      '--request-timeout-ms',
      `must be at least --headers-timeout-ms (${config.headersTimeoutMs}), got ${config.requestTimeoutMs}`,
    );
  }
  return { kind: 'config', config, configFile };
}

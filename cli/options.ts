// The options every client command takes, and argv parsing with node:util's
// parseArgs (strict: an unknown option is a usage error, not ignored).

import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DaemonClient } from './daemon_client';
import { findToken, resolveEndpoint } from './endpoint';
import { CliError, EXIT } from './exit_status';

export const COMMON_OPTIONS = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    // parseArgs says what is wrong ("Unknown option '--bogus'. …", several lines); keep the first sentence.
    const first = (err as Error).message.split('\n')[0].split('. ')[0].replace(/\.$/, '');
    throw new CliError(`${first} (see nlbridge ${command} --help)`, EXIT.usage);
  }
}

export function clientFor(
  values: { url?: string; 'token-file'?: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): DaemonClient {
  const endpoint = resolveEndpoint(values.url, env, cwd);
  return new DaemonClient(endpoint, findToken(endpoint, values['token-file'], env, cwd));
}

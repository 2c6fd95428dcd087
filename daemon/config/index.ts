// The config room: one schema (schema.ts) read once by loadConfig (load.ts).
// Imports nothing of the bus or HTTP, so every room may import it.

export { ConfigError, loadConfig, type LoadOptions, type LoadResult } from './load';
export { EXIT_STATUS, helpText } from './help';
export {
  DEFAULTS,
  DEFAULT_CONFIG_FILE,
  OPTIONS,
  OPTION_SCHEMAS,
  RING_DEFAULTS_FROM_SCHEMA,
  RING_LINGER_MS_DEFAULT,
  type AuthMode,
  type Config,
  type OptionSpec,
  type ProtocolSetting,
} from './schema';
export type { ScopedTokenSpec } from './tokens';

// Config → BusOptions: the one place the daemon's configuration is turned into
// the netlink bus's options (main.ts, the host tests' in-process daemon and
// the bench's inject run all build a Bus from a Config). It lives beside
// main.ts, not in config/ or netlink/, so neither of those rooms imports the
// other.
import type { Config } from './config/schema';
import type { BusOptions } from './netlink/bus';

/** What a Bus needs besides the configuration: the resolved protocol, a logger, the metrics. */
export type BusRuntime = Pick<BusOptions, 'protocol' | 'log' | 'metrics' | 'openSocket'>;

export type BusConfig = Pick<
  Config,
  'rcvbuf' | 'ackTimeoutMs' | 'dedupeWindowMs' | 'ringMessages' | 'ringMaxAgeMs' | 'ringMaxBytes' | 'ringLingerMs'
>;

export function busOptionsFrom(config: BusConfig, runtime: BusRuntime): BusOptions {
  return {
    ...runtime,
    rcvbuf: config.rcvbuf,
    ackTimeoutMs: config.ackTimeoutMs,
    dedupeWindowMs: config.dedupeWindowMs,
    ring: { maxMessages: config.ringMessages, maxAgeMs: config.ringMaxAgeMs, maxBytes: config.ringMaxBytes },
    ringLingerMs: config.ringLingerMs,
  };
}

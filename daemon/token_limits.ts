// What one credential may hold and spend: its streams (WebSocket and SSE),
// its unicast sockets (?unicast=1, each a netlink socket with its own receive
// buffer), and its sends per minute (POST /send and every WebSocket write
// draw from the same bucket).
//
// Keyed by credential, never by address: every local client is 127.0.0.1.
// A hand-written fixed window rather than @fastify/rate-limit: that plugin
// counts HTTP requests in its own hook and store, and WebSocket writes must
// draw from the same bucket as POST /send.

import type { Config } from './config';
import { Problem } from './errors';
import type { Metrics } from './metrics';

export type LimitsConfig = Pick<Config, 'rateLimit' | 'maxStreamsPerToken' | 'maxUnicastPerToken'>;

/** A client's credential as limits see it: "token:main", "scoped:<name>", "unix", or "ip:<address>" without auth. */
export type CredentialKey = string;

const WINDOW_MS = 60000;
/** Without auth the key is the client address: bounded, oldest windows go first. */
const MAX_KEYS = 10000;

interface Held {
  streams: number;
  unicast: number;
}

export class TokenLimits {
  private readonly windows = new Map<CredentialKey, { start: number; count: number }>();
  private readonly held = new Map<CredentialKey, Held>();

  constructor(
    private readonly config: LimitsConfig,
    private readonly metrics: Metrics,
  ) {}

  /** Spends one send from the key's budget; throws 429 RATE_LIMITED (with the seconds to wait) when it is spent. */
  spendSend(key: CredentialKey, now = Date.now()): void {
    if (this.config.rateLimit === 0) return;
    let w = this.windows.get(key);
    if (!w || now - w.start >= WINDOW_MS) {
      if (!w && this.windows.size >= MAX_KEYS) this.windows.delete(this.windows.keys().next().value!);
      this.windows.set(key, (w = { start: now, count: 0 }));
    }
    if (++w.count > this.config.rateLimit) {
      this.metrics.limitRefusals.inc({ limit: 'rate' });
      const retryAfter = Math.ceil((w.start + WINDOW_MS - now) / 1000);
      throw new Problem(
        'RATE_LIMITED',
        `more than ${this.config.rateLimit} sends per minute for this token (--rate-limit); retry in ${retryAfter} s`,
        {
          extra: { retryAfter },
        },
      );
    }
  }

  /** Throws 429 LIMIT_REACHED when the key may not open another stream (or unicast socket). */
  checkStream(key: CredentialKey, unicast: boolean): void {
    const h = this.held.get(key) ?? { streams: 0, unicast: 0 };
    if (h.streams >= this.config.maxStreamsPerToken) {
      this.metrics.limitRefusals.inc({ limit: 'streams' });
      throw new Problem('LIMIT_REACHED', `this token holds ${h.streams} streams, the most it may (--max-streams-per-token)`);
    }
    if (unicast && h.unicast >= this.config.maxUnicastPerToken) {
      this.metrics.limitRefusals.inc({ limit: 'unicast' });
      throw new Problem('LIMIT_REACHED', `this token holds ${h.unicast} unicast sockets, the most it may (--max-unicast-per-token)`, {
        field: 'unicast',
      });
    }
  }

  /** Takes a stream's place (checked again: upgrades may race past the first check); the returned function gives it back, once. */
  holdStream(key: CredentialKey, unicast: boolean): () => void {
    this.checkStream(key, unicast);
    let h = this.held.get(key);
    if (h === undefined) this.held.set(key, (h = { streams: 0, unicast: 0 }));
    const held = h;
    held.streams++;
    if (unicast) held.unicast++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      held.streams--;
      if (unicast) held.unicast--;
      if (held.streams === 0) this.held.delete(key);
    };
  }
}

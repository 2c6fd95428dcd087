// The shared state every plugin reads: decorated once on the root instance
// (bus, config, metrics, limits, auth), instead of passed as arguments.

import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Bus } from '../netlink/bus';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import type { Scope } from '../scopes';
import type { AuthSetup } from '../security';
import type { Fleet } from '../fleet/index';
import type { WsSubscription } from '../streams/ws_writer';
import { TokenLimits, type CredentialKey } from '../token_limits';

export interface AppDeps {
  bus: Bus;
  metrics: Metrics;
  auth: AuthSetup;
  /** pino logger; false = silent. */
  logger: import('pino').Logger | false;
  version?: string;
  /** The NATS side (daemon/fleet/), only with --nats: shown in /status, closed before the bus. */
  fleet?: Fleet | null;
}

export interface NlbridgeState {
  bus: Bus;
  config: Config;
  metrics: Metrics;
  auth: AuthSetup;
  limits: TokenLimits;
  version: string;
  /** Open WebSocket subscriptions (SSE ones are the streams plugin's own). */
  streams: Set<WsSubscription>;
  /** Set at preClose (or by main.ts on a signal): requests are answered 503 SHUTTING_DOWN. */
  stopping: boolean;
  /** The served routes, so a test can hold them against openapi.yaml. */
  routes: { method: string; url: string }[];
  fleet: Fleet | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The presented token's scope; null = unlimited (no token required, the main token, or the unix socket). */
    nlbridgeScope: Scope | null;
    /** Whose limits (streams, unicast sockets, sends per minute) this request draws on. */
    nlbridgeCredential: CredentialKey;
  }
  interface FastifyInstance {
    nlbridge: NlbridgeState;
  }
}

export const statePlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; deps: AppDeps }) => {
    const { config, deps } = opts;
    const routes: NlbridgeState['routes'] = [];
    app.decorate('nlbridge', {
      bus: deps.bus,
      config,
      metrics: deps.metrics,
      auth: deps.auth,
      limits: new TokenLimits(config, deps.metrics),
      version: deps.version ?? '0.1.0',
      streams: new Set(),
      stopping: false,
      routes,
      fleet: deps.fleet ?? null,
    } satisfies NlbridgeState);
    app.decorateRequest('nlbridgeScope', null);
    app.decorateRequest('nlbridgeCredential', 'unix');
    app.addHook('onRoute', (r) => {
      for (const method of Array.isArray(r.method) ? r.method : [r.method]) if (method !== 'HEAD') routes.push({ method, url: r.url });
    });
    app.addHook('preClose', async () => {
      app.nlbridge.stopping = true;
    });
    // The root's onClose runs after every plugin's (they close their
    // clients first) and after in-flight requests: then the netlink sockets go.
    app.addHook('onClose', async () => {
      await deps.fleet?.close();
      await deps.bus.close();
    });
  },
  { name: 'nlbridge-state' },
);

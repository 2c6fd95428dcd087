// What the daemon says about itself: GET /status, /kernel/stats, /metrics,
// /healthz, and the contracts it serves (/openapi.yaml, /asyncapi.yaml).

import fp from 'fastify-plugin';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DNL_STATS_COUNTERS } from '../../addon/dummy_netlink';
import { loadSpec } from '../spec';

/** asyncapi.yaml at the repo root (dist/daemon/http/status.js → ../../..). */
export const ASYNCAPI_PATH = path.resolve(__dirname, '../../../asyncapi.yaml');

const YAML = 'application/yaml; charset=utf-8';

export const statusRoutesPlugin = fp(
  async (app: FastifyInstance) => {
    const { bus, metrics, auth, version } = app.nlbridge;

    app.get('/status', async () => {
      const p = bus.protocol;
      return {
        version,
        protocol: { name: p.name, number: p.number, kernelEndpoint: p.kernelEndpoint, maxGroup: p.maxGroup, reason: p.reason },
        module: p.module,
        portIds: { tx: bus.tx.portId, rx: bus.rx.portId },
        groups: { joined: bus.joinedGroups(), subscribers: bus.subscriberCounts() },
        clients: { websocket: app.nlbridge.streams.size, unicast: bus.clientEndpointCount },
        auth: { mode: auth.mode, tokenRequired: auth.token !== null },
        counters: {
          sent: metrics.sent.total(),
          received: metrics.received.total(),
          duplicates: metrics.duplicates.total(),
          rejected: metrics.rejected.total(),
          overruns: metrics.overruns.total(),
          overrunLost: metrics.overrunLost.total(),
          sendErrors: metrics.sendErrors.total(),
          wsFramesSent: metrics.wsFrames.total(),
          wsFramesDropped: metrics.wsDropped.total(),
          wsClosedSlow: metrics.wsClosedSlow.total(),
        },
        uptimeSeconds: Math.round((Date.now() - bus.startedAt) / 100) / 10,
        ...(app.nlbridge.fleet ? { fleet: app.nlbridge.fleet.status() } : {}),
      };
    });

    app.get('/kernel/stats', async () => {
      const s = await bus.kernelStats();
      const out: Record<string, number> = { version: s.version, unit: s.unit };
      for (const k of DNL_STATS_COUNTERS) out[k] = Number(s[k]);
      return out;
    });

    metrics.readBus({
      joinedGroups: () => bus.joinedGroups().length,
      unicastClients: () => bus.clientEndpointCount,
      rxSocketDrops: () => {
        try {
          return bus.isClosed ? 0 : bus.rx.drops();
        } catch {
          // The socket went away under the scrape (shutdown): nothing more was dropped.
          return 0;
        }
      },
      ringMessages: () => bus.ring.size,
      ringBytes: () => bus.ring.bytes,
      ringMaxBytes: () => bus.ring.opts.maxBytes,
      ringEvicted: () => bus.ring.evicted,
    });
    app.get('/metrics', async (_request, reply) => {
      // No eviction here: a scrape only reads (the bus evicts aged messages
      // on its own timer, every second).
      reply.type(metrics.registry.contentType);
      return metrics.registry.metrics();
    });

    // No token needed (the Host check still applies).
    app.get('/healthz', async (_request, reply) => {
      const status = app.nlbridge.stopping ? 'stopping' : bus.isClosed || bus.rx.isClosed ? 'failed' : 'ok';
      if (status !== 'ok') reply.code(503);
      return { status, protocol: `${bus.protocol.name} (${bus.protocol.number})` };
    });

    app.get('/openapi.yaml', async (_request, reply) => {
      reply.type(YAML);
      return loadSpec().text;
    });
    let asyncapi: string | null = null;
    app.get('/asyncapi.yaml', async (_request, reply) => {
      asyncapi ??= fs.readFileSync(ASYNCAPI_PATH, 'utf8');
      reply.type(YAML);
      return asyncapi;
    });
  },
  { name: 'nlbridge-status', dependencies: ['nlbridge-state'] },
);

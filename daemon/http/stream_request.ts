// What a stream request asks for (groups, format, resume cursor), read the
// same way by the WebSocket and SSE routes.

import type { FastifyRequest } from 'fastify';
import type { Config } from '../config';
import { Problem } from '../errors';
import { GroupSpecError, parseGroupList, parseMaskText, type GroupList } from '../netlink/groups';
import type { SubscriptionOptions } from '../streams/subscription';

export interface StreamQuery {
  format?: 'json' | 'binary';
  batch?: string;
  unicast?: string;
  list?: string;
  since?: string;
}

export const truthy = (v: string | undefined): boolean => v === '1' || v === 'true';

/** The request's group field: `mask` in the path, or `?list=`. */
export const groupsField = (request: FastifyRequest): 'mask' | 'list' =>
  (request.params as { mask?: string }).mask !== undefined ? 'mask' : 'list';

/** Parses the stream's groups; throws Problem (400). */
export function streamGroups(request: FastifyRequest): GroupList {
  const params = request.params as { mask?: string };
  const query = request.query as StreamQuery;
  try {
    if (params.mask !== undefined) return parseMaskText(params.mask);
    return parseGroupList(query.list ?? '');
  } catch (err) {
    if (err instanceof GroupSpecError) {
      const field = groupsField(request);
      throw new Problem('BAD_GROUPS', `${field}: ${err.message}`, { field });
    }
    throw err;
  }
}

/** A subscription's options from the request and the daemon's limits. */
export function subscriptionOptions(groups: GroupList, query: StreamQuery, config: Config): SubscriptionOptions {
  return {
    groups,
    format: query.format ?? 'json',
    batch: truthy(query.batch),
    unicast: truthy(query.unicast),
    bufferBytes: config.wsBufferBytes,
    stallMs: config.wsStallMs,
    maxPayload: config.wsMaxPayload,
  };
}

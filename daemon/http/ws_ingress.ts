// What a WebSocket client writes, on its way to the planner: a text or
// binary frame is DATA to the stream's groups; a JSON object is a full
// /send request (with an optional `id` echoed in its `sent` or `error` frame).

import type { FastifyBaseLogger } from 'fastify';
import type { RawData } from 'ws';
import type { Bus } from '../netlink/bus';
import { Problem, problemOf } from '../errors';
import { checkSend, type Scope } from '../scopes';
import type { Subscription } from '../streams/subscription';
import { validateSendRequest } from '../validation';
import { toSendRequest, type SendBody } from './send_body';

export interface IngressContext {
  bus: Pick<Bus, 'send'>;
  /** The token's scope (null = unlimited): what the client writes is checked against it. */
  scope: Scope | null;
  /** Spends one send from the client's credential's budget (throws 429 RATE_LIMITED when spent). */
  spendSend: () => void;
  log: FastifyBaseLogger;
}

/** A JSON object the client wrote, or null when the frame is plain data. */
function jsonObjectOf(text: string): Record<string, unknown> | null {
  if (!text.trimStart().startsWith('{')) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? { ...(parsed as Record<string, unknown>) } : null;
}

export async function onClientMessage(sub: Subscription, ctx: IngressContext, data: RawData, isBinary: boolean): Promise<void> {
  const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  const from = sub.endpoint ?? undefined;
  const body = isBinary ? null : jsonObjectOf(buf.toString('utf8'));
  if (body !== null) {
    const id = body.id;
    delete body.id;
    const idField = id === undefined ? {} : { id };
    try {
      validateSendRequest(body);
      const req = toSendRequest(body as SendBody);
      checkSend(ctx.scope, req);
      ctx.spendSend();
      const report = await ctx.bus.send(req, from);
      if (!sub.isClosed) sub.event('sent', { ...idField, report });
    } catch (err) {
      replyError(sub, ctx, err, idField);
    }
    return;
  }
  try {
    const req = { groups: sub.groups, data: buf };
    checkSend(ctx.scope, req);
    ctx.spendSend();
    await ctx.bus.send(req, from);
  } catch (err) {
    replyError(sub, ctx, err, {});
  }
}

function replyError(sub: Subscription, ctx: IngressContext, err: unknown, idField: Record<string, unknown>): void {
  if (sub.isClosed) return;
  const problem = problemOf(err);
  if (problem !== null) {
    sub.event('error', { ...idField, problem: problem.body() });
    return;
  }
  ctx.log.error({ err }, 'WebSocket send failed');
  sub.event('error', { ...idField, problem: new Problem('INTERNAL', 'internal error').body() });
}

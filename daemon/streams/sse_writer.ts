// A Subscription as Server-Sent Events (GET /groups/:mask/events), for curl -N
// and EventSource. The frames are those of the WebSocket stream (same JSON,
// same per-stream n); a message's SSE id is its cursor, so a reconnecting
// EventSource resumes with Last-Event-ID (or ?since=) like a WebSocket does.

import type { FastifyBaseLogger } from 'fastify';
import type { ServerResponse } from 'node:http';
import type { RxMessage } from '../netlink/message';
import type { Metrics } from '../metrics';
import { Subscription, transportLabels, type StreamBus, type SubscriptionOptions } from './subscription';
import type { StreamWriter } from './writer';

/** A comment line this often keeps proxies and idle timers from cutting a quiet stream. */
export const SSE_HEARTBEAT_MS = 15000;
/** What EventSource waits before reconnecting. */
export const SSE_RETRY_MS = 1000;

export class SseWriter implements StreamWriter {
  readonly transport = 'sse';
  readonly binary = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    /** Called once per frame written. */
    private readonly countFrame: () => void,
  ) {
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), SSE_HEARTBEAT_MS);
    this.heartbeat.unref();
    res.once('close', () => clearInterval(this.heartbeat));
  }

  open(hello: string): void {
    this.write(`retry: ${SSE_RETRY_MS}\n\n`);
    this.event('hello', hello);
  }

  message(frame: string | Buffer, m: RxMessage): void {
    const id = m.cursor === undefined ? '' : `id: ${m.cursor}\n`;
    this.write(`${id}event: message\ndata: ${String(frame)}\n\n`);
    this.countFrame();
  }

  event(type: string, frame: string): void {
    this.write(`event: ${type}\ndata: ${frame}\n\n`);
    this.countFrame();
  }

  flush(): void {
    // Written as they come; the socket coalesces.
  }

  backlogBytes(): number {
    return this.res.writableLength;
  }

  isOpen(): boolean {
    return !this.res.destroyed;
  }

  /** SSE has no close code: the connection is cut, and EventSource reconnects with Last-Event-ID. */
  closeSlow(): void {
    this.res.destroy();
  }

  /** Ends the response (daemon shutdown). */
  end(): void {
    clearInterval(this.heartbeat);
    this.res.end();
  }

  private write(text: string): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.res.write(text);
  }
}

/** A subscription carried by Server-Sent Events. */
export type SseSubscription = Subscription<SseWriter>;

export function sseSubscription(
  res: ServerResponse,
  opts: SubscriptionOptions,
  bus: StreamBus,
  metrics: Metrics,
  log: FastifyBaseLogger,
): SseSubscription {
  const labels = transportLabels('sse');
  return new Subscription(new SseWriter(res, () => metrics.wsFrames.inc(labels)), opts, bus, metrics, log);
}

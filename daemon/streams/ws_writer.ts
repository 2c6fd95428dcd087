// A Subscription over a WebSocket: JSON text frames, ?batch=1 lines, or
// ?format=binary netlink bytes, written in bulk by FrameWriter.
//
// Works on the raw `ws` socket and its bufferedAmount (the stream wrapper of
// @fastify/websocket stalls at a 16 kB highWaterMark: fastify-websocket#289).

import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import type { Metrics } from '../metrics';
import { Subscription, type StreamBus, type SubscriptionOptions } from './subscription';
import { FrameWriter } from './ws_frame_writer';
import type { StreamWriter } from './writer';

/** A client that answers no ping for this long is cut (half-open TCP would hold its subscription forever). */
export const PING_INTERVAL_MS = 30000;

/**
 * A batched frame is sent once it holds this many bytes, even mid-batch: a
 * receive batch can hold thousands of messages, and one multi-megabyte frame
 * makes the client wait for all of it and the daemon build it in one piece.
 */
const BATCH_FRAME_BYTES = 64 * 1024;

export class WsWriter implements StreamWriter {
  readonly transport = 'websocket';
  readonly binary: boolean;
  private batchLines: string[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  private alive = true;
  /** Frames leave in one socket write per netlink batch (see ws_frame_writer.ts). */
  private readonly frames: FrameWriter;

  constructor(
    readonly ws: WebSocket,
    private readonly format: { binary: boolean; batch: boolean },
    /** Called with the number of frames each socket write carried. */
    countFrames: (frames: number) => void,
  ) {
    this.binary = format.binary;
    this.frames = new FrameWriter(ws, countFrames);
  }

  open(hello: string): void {
    this.frames.push(hello);
  }

  message(frame: string | Buffer): void {
    if (typeof frame === 'string' && this.format.batch) this.addLine(frame);
    else this.frames.push(frame);
  }

  event(_type: string, frame: string): void {
    if (this.format.batch && !this.binary) {
      this.addLine(frame);
      // Events raised outside a receive batch (sent, error, dropped) flush on their own.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    } else {
      // Queued like messages, in order: a peer sending only malformed
      // datagrams must not cost a write per datagram (reliability case 2).
      this.frames.push(frame);
    }
  }

  private addLine(line: string): void {
    this.batchLines.push(line);
    this.batchBytes += line.length;
    if (this.batchBytes >= BATCH_FRAME_BYTES) this.sendBatch();
  }

  private sendBatch(): void {
    if (this.batchLines.length === 0) return;
    const lines = this.batchLines;
    this.batchLines = [];
    this.batchBytes = 0;
    this.frames.push(lines);
  }

  flush(): void {
    this.sendBatch();
    this.frames.flush();
  }

  backlogBytes(): number {
    return this.ws.bufferedAmount;
  }

  isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  /** 1013, and cut a second later: a client that does not read will not complete the closing handshake either. */
  closeSlow(): void {
    this.close(1013, 'too slow: backlog over limit');
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  /** Closes the connection after what is queued (ws writes its close frame straight to the socket). */
  close(code: number, reason: string): void {
    this.frames.flush();
    this.ws.close(code, reason);
  }

  /** Called every PING_INTERVAL_MS: cuts a client that did not answer the previous ping. Returns false when it was cut. */
  ping(): boolean {
    if (!this.alive) {
      this.ws.terminate();
      return false;
    }
    this.alive = false;
    this.frames.flush();
    this.ws.ping();
    return true;
  }

  pong(): void {
    this.alive = true;
  }
}

/** A subscription carried by a WebSocket. */
export type WsSubscription = Subscription<WsWriter>;

export function wsSubscription(
  ws: WebSocket,
  opts: SubscriptionOptions,
  bus: StreamBus,
  metrics: Metrics,
  log: FastifyBaseLogger,
): WsSubscription {
  const writer = new WsWriter(ws, { binary: opts.format === 'binary', batch: opts.batch }, (frames) => metrics.wsFrames.inc({}, frames));
  return new Subscription(writer, opts, bus, metrics, log);
}

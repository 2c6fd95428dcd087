// A Server-Sent Events client over node:http for the SSE tests: parses the
// event stream, checks every data frame against openapi.yaml's StreamFrame.

import * as http from 'node:http';
import { assertFrameMatchesSpec, assertMatchesSpec } from './daemon_spec';

export interface SseEvent {
  id: string | null;
  event: string;
  data: Record<string, unknown> & { type: string; n: number };
}

export class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  readonly specErrors: string[] = [];
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  body = '';
  retry: number | null = null;
  private buf = '';
  private req: http.ClientRequest | null = null;
  private res: http.IncomingMessage | null = null;
  readonly ended: Promise<void>;
  private endResolve!: () => void;

  constructor() {
    this.ended = new Promise((r) => (this.endResolve = r));
  }

  /** Resolves once the response head is in. */
  open(url: string, headers: Record<string, string> = {}): Promise<this> {
    return new Promise((resolve, reject) => {
      this.req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (c: string) => this.onData(c));
        res.on('end', () => this.endResolve());
        res.on('close', () => this.endResolve());
        res.on('error', () => this.endResolve());
        try {
          const ct = String(res.headers['content-type'] ?? '');
          if (this.status === 200) assertMatchesSpec('GET', new URL(url).pathname, 200, ct, '');
        } catch (err) {
          this.specErrors.push((err as Error).message);
        }
        resolve(this);
      });
      this.req.on('error', reject);
    });
  }

  private onData(chunk: string): void {
    if (this.status !== 200) {
      this.body += chunk;
      return;
    }
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n\n')) >= 0) {
      const block = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 2);
      let id: string | null = null;
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line);
        else if (line.startsWith('id: ')) id = line.slice(4);
        else if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
        else if (line.startsWith('retry: ')) this.retry = Number(line.slice(7));
      }
      if (data.length === 0) continue;
      const frame = JSON.parse(data.join('\n')) as SseEvent['data'];
      try {
        assertFrameMatchesSpec(frame);
        if (frame.type !== event) throw new Error(`event: ${event} carries a ${frame.type} frame`);
      } catch (err) {
        this.specErrors.push((err as Error).message);
      }
      this.events.push({ id, event, data: frame });
    }
  }

  /** Cuts the connection as a crashed client would. */
  kill(): void {
    this.req?.destroy();
    this.res?.destroy();
  }
}

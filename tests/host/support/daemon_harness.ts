// Helpers of the daemon host tests: an in-process daemon on a real TCP port,
// HTTP calls whose every response is checked against openapi.yaml, WebSocket
// clients with a frame queue, and the C tools (rr_nlk, ww_nlk) as peers.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import pino from 'pino';
import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import { NETLINK_USERSOCK } from '../../../addon/codec';
import { buildApp } from '../../../daemon/app';
import { Bus } from '../../../daemon/netlink/bus';
import { DEFAULTS, type Config } from '../../../daemon/config/schema';
import { Metrics } from '../../../daemon/metrics';
import { resolveProtocol } from '../../../daemon/netlink/protocol';
import type { AuthSetup } from '../../../daemon/security';
import type { ScopedToken } from '../../../daemon/scopes';
import type { Fleet } from '../../../daemon/fleet/index';
import { assertFrameMatchesSpec, assertMatchesSpec } from './daemon_spec';
import { busOptionsFrom } from '../../../daemon/bus_options';

export const ROOT = path.resolve(__dirname, '../../../..');
export const TOOLS = path.join(ROOT, 'module/tools');
export const USERSOCK = NETLINK_USERSOCK;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const bit = (g: number): number => (1 << (g - 1)) >>> 0;

/** A per-run tag so payloads from this test run are recognisable among host traffic. */
export const TAG = `t${process.pid}-${Date.now().toString(36)}`;

let toolsBuilt = false;
/** Builds rr_nlk and ww_nlk (make -C module tools) once per process. */
export function buildTools(): void {
  if (toolsBuilt) return;
  execFileSync('make', ['-s', '-C', path.join(ROOT, 'module'), 'tools'], { stdio: ['ignore', 'ignore', 'inherit'] });
  toolsBuilt = true;
}

export interface Daemon {
  app: FastifyInstance;
  bus: Bus;
  metrics: Metrics;
  config: Config;
  port: number;
  base: string;
  wsBase: string;
  token: string | null;
  close(): Promise<void>;
}

export interface StartOptions {
  config?: Partial<Config>;
  token?: string | null;
  /** Scoped tokens accepted besides `token` (config "tokens"). */
  scoped?: ScopedToken[];
  /** Capture log lines (JSON objects) here. */
  logs?: Record<string, unknown>[];
  /** The fleet (daemon/fleet/startFleet), made over this daemon's bus, as main.ts does with --nats. */
  fleet?: (bus: Bus, config: Config, logger: pino.Logger) => Fleet;
}

/** buildApp + listen on 127.0.0.1:0 with the protocol forced to USERSOCK (the host has no module). */
export async function startDaemon(opts: StartOptions = {}): Promise<Daemon> {
  const config: Config = { ...DEFAULTS, protocol: 'usersock', port: 0, auth: opts.token ? 'token' : 'none', ...opts.config };
  const protocol = resolveProtocol(config.protocol, config.sysfsRoot);
  const metrics = new Metrics();
  const logs = opts.logs;
  const logger = logs
    ? pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) })
    : pino({ level: 'silent' });
  const bus = new Bus(busOptionsFrom(config, { protocol, log: logger, metrics }));
  const token = opts.token ?? null;
  const auth: AuthSetup = { mode: config.auth, token, source: token ? 'test' : null, generated: false, scoped: opts.scoped ?? [] };
  const fleet = opts.fleet?.(bus, config, logger) ?? null;
  const app = await buildApp(config, { bus, metrics, auth, logger, fleet });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return {
    app,
    bus,
    metrics,
    config,
    port,
    base: `http://127.0.0.1:${port}`,
    wsBase: `ws://127.0.0.1:${port}`,
    token,
    close: () => app.close(),
  };
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: unknown;
}

/** fetch + check of the response against openapi.yaml (status, content type, body schema). */
export async function call(
  d: Pick<Daemon, 'base' | 'token'>,
  method: string,
  urlPath: string,
  opts: { body?: unknown; rawBody?: string; headers?: Record<string, string>; auth?: boolean } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.auth !== false && d.token && !('authorization' in headers)) headers.authorization = `Bearer ${d.token}`;
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(d.base + urlPath, { method, headers, body });
  const text = await res.text();
  let json: unknown = null;
  const ct = res.headers.get('content-type') ?? '';
  if (ct.includes('json')) json = JSON.parse(text);
  assertMatchesSpec(method, urlPath, res.status, ct, json ?? text);
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * Calls `onLine` with each line a process writes, parsed as JSON (the
 * daemon's pino log); a line that is not JSON comes as { raw: line }.
 */
export function onJsonLines(stream: Readable, onLine: (line: Record<string, unknown>) => void): void {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(line) as Record<string, unknown>;
    } catch {
      j = { raw: line };
    }
    onLine(j);
  });
}

/** Raw HTTP/1.1 request (fetch cannot set Host). */
export function rawRequest(
  port: number,
  lines: string[],
  body = '',
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const net = require('node:net') as typeof import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    s.on('data', (c) => (data += c.toString('latin1')));
    s.on('error', reject);
    s.on('end', () => {
      const [head, ...rest] = data.split('\r\n\r\n');
      const [statusLine, ...hl] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const h of hl) {
        const i = h.indexOf(':');
        headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    s.write([...lines, 'Connection: close', '', body].join('\r\n'));
  });
}

export type Frame = Record<string, unknown> & { type: string; n: number };

/** A WebSocket client that queues frames for `next`. */
export class WsClient {
  readonly frames: (Frame | Buffer)[] = [];
  /** Every frame ever received (next() does not take from this one). */
  readonly all: (Frame | Buffer)[] = [];
  private waiters: (() => void)[] = [];
  /** Frames that did not match openapi.yaml's StreamFrame. */
  readonly specErrors: string[] = [];
  closeCode: number | null = null;
  closeReason = '';
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) {
        this.frames.push(Buffer.from(data));
        this.all.push(Buffer.from(data));
      } else {
        for (const line of data.toString('utf8').split('\n')) {
          const frame = JSON.parse(line) as Frame;
          try {
            assertFrameMatchesSpec(frame);
          } catch (err) {
            this.specErrors.push((err as Error).message);
          }
          this.frames.push(frame);
          this.all.push(frame);
        }
      }
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = reason.toString();
        this.wake();
        resolve(code);
      });
    });
    ws.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until some frame satisfies `pred` (removing frames up to it); throws on timeout. */
  async next(pred: (f: Frame) => boolean = () => true, timeoutMs = 3000, what = 'a frame'): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.specErrors.length) throw new Error(this.specErrors[0]);
      const i = this.frames.findIndex((f) => !Buffer.isBuffer(f) && pred(f));
      if (i >= 0) return this.frames.splice(0, i + 1)[i] as Frame;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.frames.slice(-5))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
    return this.closed;
  }
}

export interface WsOptions {
  headers?: Record<string, string>;
  protocols?: string[];
  origin?: string;
  auth?: boolean;
}

/** Opens a stream and waits for its hello (or rejects with the HTTP status of a refusal). */
export function connect(
  d: Pick<Daemon, 'wsBase' | 'token'>,
  urlPath: string,
  opts: WsOptions = {},
): Promise<{ client: WsClient; hello: Frame }> {
  return new Promise((resolve, reject) => {
    const headers = { ...(opts.headers ?? {}) };
    if (opts.auth !== false && d.token && !opts.protocols) headers.authorization = `Bearer ${d.token}`;
    const ws = new WebSocket(d.wsBase + urlPath, opts.protocols ?? [], { headers, ...(opts.origin ? { origin: opts.origin } : {}) });
    const client = new WsClient(ws);
    ws.once('unexpected-response', (req, res) => {
      res.on('end', () => req.destroy());
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        const err = new Error(`HTTP ${res.statusCode}: ${body}`) as Error & { status?: number; body?: string; headers?: unknown };
        err.status = res.statusCode;
        err.body = body;
        err.headers = res.headers;
        reject(err);
      });
    });
    ws.once('error', reject);
    client
      .next((f) => f.type === 'hello' || f.type === 'error', 3000, 'hello')
      .then((hello) => {
        if (hello.type === 'error') reject(Object.assign(new Error(`stream refused: ${JSON.stringify(hello)}`), { frame: hello }));
        else resolve({ client, hello });
      }, reject);
  });
}

/** rr_nlk -p 2 -j as a peer; resolves once it is listening. */
export class RrNlk {
  readonly lines: Record<string, unknown>[] = [];
  private readonly proc: ChildProcess;
  readonly portId: Promise<number>;

  constructor(args: string[]) {
    buildTools();
    this.proc = spawn(path.join(TOOLS, 'rr_nlk'), ['-p', String(USERSOCK), '-j', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    this.proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i);
        out = out.slice(i + 1);
        if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    this.portId = new Promise((resolve, reject) => {
      let err = '';
      this.proc.stderr!.on('data', (c: Buffer) => {
        err += c.toString();
        const m = /listening on protocol \d+ port (\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      this.proc.on('exit', (code) => reject(new Error(`rr_nlk exited ${code}: ${err}`)));
    });
  }

  /** Lines whose payload contains `marker`. */
  with(marker: string): Record<string, unknown>[] {
    return this.lines.filter((l) => String(l.data ?? '').includes(marker));
  }

  kill(): void {
    this.proc.kill('SIGTERM');
  }
}

/** Runs ww_nlk -p 2 with `args`; resolves with its exit code and output. */
export function wwNlk(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  buildTools();
  return new Promise((resolve) => {
    const p = spawn(path.join(TOOLS, 'ww_nlk'), ['-p', String(USERSOCK), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function readJsonLines(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

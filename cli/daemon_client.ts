// One connection's worth of talking to the daemon: JSON requests over node:http
// (fetch cannot reach a unix socket) and the WebSocket URL and options for
// streams, with the token in a header when the endpoint is TCP. Failures come
// back as CliErrors: unreachable (exit 3) or the daemon's problem (exit 1).

import * as http from 'node:http';
import type { ClientOptions } from 'ws';
import type { Endpoint, TokenLookup } from './endpoint';
import { CliError, EXIT } from './exit_status';

/** The answer of a request, with its JSON body. */
export interface Answer {
  status: number;
  body: unknown;
}

/** application/problem+json as openapi.yaml describes it. */
export interface Problem {
  status: number;
  code: string;
  detail: string;
  title?: string;
  errno?: string;
  results?: unknown[];
}

/** Longer than the daemon's longest answer: a send waits up to --ack-timeout-ms (at most 60 s). */
const REQUEST_TIMEOUT_MS = 65_000;

const NOT_RUNNING = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export class DaemonClient {
  constructor(
    readonly endpoint: Endpoint,
    readonly token: TokenLookup,
  ) {}

  private headers(): Record<string, string> {
    return this.token.token !== null ? { authorization: `Bearer ${this.token.token}` } : {};
  }

  /** The CliError for a connection that failed before any answer. */
  unreachable(err: NodeJS.ErrnoException): CliError {
    const code = err.code ?? err.message;
    const hint = NOT_RUNNING.has(code)
      ? 'is it running? (choose another with --url or NLBRIDGE_URL)'
      : code === 'EACCES'
        ? 'the socket is not accessible to you (its mode and group decide who may connect)'
        : '';
    return new CliError(`cannot reach the daemon at ${this.endpoint.shown} (${code})${hint ? `: ${hint}` : ''}`, EXIT.unreachable);
  }

  /** The CliError for a problem answer: its code and detail, and what to do about a refused token. */
  refusal(problem: Problem): CliError {
    let msg = `${problem.code} (${problem.status}): ${problem.detail}`;
    if (problem.code === 'UNAUTHORIZED') {
      msg +=
        this.token.source !== null
          ? `; the token was read from ${this.token.source}`
          : `; no token file was found (looked in ${this.token.tried.join(', ')}): set NLBRIDGE_TOKEN_FILE or --token-file, or use the unix socket (--url unix:PATH)`;
    }
    return new CliError(msg, EXIT.refused);
  }

  /** A request whose answer is JSON; a problem answer is returned, not thrown (send prints its results). */
  request(method: string, path: string, body?: unknown): Promise<Answer> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string | number> = { ...this.headers(), accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = payload.length;
    }
    const where =
      this.endpoint.kind === 'unix' ? { socketPath: this.endpoint.socketPath } : { host: this.endpoint.host, port: this.endpoint.port };
    return new Promise((resolve, reject) => {
      const req = http.request({ ...where, method, path, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(this.unreachable(err)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
          } catch {
            reject(
              new CliError(
                `${this.endpoint.shown} answered ${method} ${path} with ${res.statusCode} and no JSON: is it an nlbridge daemon? (${text.slice(0, 80)})`,
                EXIT.refused,
              ),
            );
          }
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(this.unreachable(err)));
      req.end(payload);
    });
  }

  /** A request that must succeed: its body, or the daemon's problem as a CliError. */
  async get(path: string): Promise<unknown> {
    const answer = await this.request('GET', path);
    if (answer.status >= 400) throw this.refusal(answer.body as Problem);
    return answer.body;
  }

  /** Where a stream of `path` (with its query) is opened with `ws`. */
  streamUrl(path: string): string {
    return this.endpoint.kind === 'unix'
      ? `ws+unix://${this.endpoint.socketPath}:${path}`
      : `ws://${this.endpoint.shown.slice('http://'.length)}${path}`;
  }

  streamOptions(): ClientOptions {
    // maxPayload: a batch or a catch-up frame is bounded by the daemon, not by us.
    return { headers: this.headers(), handshakeTimeout: 10_000, maxPayload: 64 * 1024 * 1024 };
  }
}

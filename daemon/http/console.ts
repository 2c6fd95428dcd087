// GET / and GET /console/{file}: the live console, a static page that talks to
// the daemon only through the public API (WebSocket /groups, POST /send,
// GET /status). Self-contained: it takes nothing but the app
// (consoleRoutesPlugin below).

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Problem } from '../errors';
import { parametersSchema } from '../spec';

/**
 * console/ beside dist/: from dist/daemon/routes/console.js that is ../../..,
 * in a checkout and in the installed layout (/usr/lib/nlbridge/dist/… →
 * /usr/lib/nlbridge/console, which systemd/install.sh copies).
 */
export const CONSOLE_DIR = path.resolve(__dirname, '../../../console');

/**
 * Every file served under /console/, with its type. An explicit list, not a
 * directory listing: nothing else in the folder (a tsconfig, an editor's
 * backup) is ever served, and a name is never joined to a path unchecked.
 */
export const CONSOLE_FILES: Readonly<Record<string, string>> = {
  'console.css': 'text/css; charset=utf-8',
  'main.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'stream.js': 'text/javascript; charset=utf-8',
  'rows.js': 'text/javascript; charset=utf-8',
  'rate_chart.js': 'text/javascript; charset=utf-8',
  'send_form.js': 'text/javascript; charset=utf-8',
  'status_panel.js': 'text/javascript; charset=utf-8',
  'payload.js': 'text/javascript; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

const PAGE = 'index.html';

/**
 * The paths served without a token. They carry no data, only the page and
 * its code; everything the page then shows comes from routes that do need
 * the token. The Host and Origin checks apply to them like to every route.
 */
export const CONSOLE_PUBLIC_PATHS: readonly string[] = ['/', ...Object.keys(CONSOLE_FILES).map((f) => `/console/${f}`)];

/**
 * The page's Content-Security-Policy: its own scripts and styles only (no
 * inline code, no eval), no plugins, no framing, no form posts elsewhere.
 * connect-src names the WebSocket origin explicitly: CSP 3 lets 'self' match
 * ws:/wss: on the same host, but browsers before it (Safari < 15.4) do not.
 */
export function contentSecurityPolicy(host: string | undefined): string {
  // Host passed the allow-list before this runs; the pattern keeps a
  // wildcard allow-list (--allowed-hosts '*') from writing policy text.
  const ws = host !== undefined && /^[A-Za-z0-9.\-[\]:]{1,300}$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src 'self'${ws}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Reads a file once and keeps it (a few KB each); null when it is not installed. */
function loader(dir: string): (name: string, type: string) => Asset | null {
  const cache = new Map<string, Asset>();
  return (name, type) => {
    let asset = cache.get(name);
    if (asset) return asset;
    let body: Buffer;
    try {
      body = fs.readFileSync(path.join(dir, name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    asset = { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    cache.set(name, asset);
    return asset;
  };
}

export function consoleRoutes(app: FastifyInstance, dir: string = CONSOLE_DIR): void {
  const load = loader(dir);

  const serve = (request: FastifyRequest, reply: FastifyReply, name: string, type: string): Buffer | string => {
    const asset = load(name, type);
    if (asset === null) throw new Problem('NOT_FOUND', `the console is not installed (${path.join(dir, name)} is missing)`);
    reply.header('content-security-policy', contentSecurityPolicy(request.headers.host));
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
    reply.header('cross-origin-resource-policy', 'same-origin');
    // Revalidated on every load (an upgrade changes the files under the same
    // names); the ETag makes that a 304 without a body.
    reply.header('cache-control', 'no-cache');
    reply.header('etag', asset.etag);
    if (request.headers['if-none-match'] === asset.etag) {
      reply.code(304);
      return '';
    }
    reply.type(asset.type);
    return asset.body;
  };

  app.get('/', async (request, reply) => serve(request, reply, PAGE, 'text/html; charset=utf-8'));
  app.get<{ Params: { file: string } }>(
    '/console/:file',
    { schema: { params: parametersSchema('/console/{file}', 'get', 'path') } },
    async (request, reply) => {
      const name = request.params.file;
      const type = Object.hasOwn(CONSOLE_FILES, name) ? CONSOLE_FILES[name] : undefined;
      if (type === undefined) throw new Problem('NOT_FOUND', `no console file ${JSON.stringify(name.slice(0, 100))}`);
      return serve(request, reply, name, type);
    },
  );
}

/** The console as a plugin of its own (daemon/app.ts registers it with the other route families). */
export const consoleRoutesPlugin = fp(async (app: FastifyInstance) => consoleRoutes(app), {
  name: 'nlbridge-console',
  dependencies: ['nlbridge-admission'],
});

// What a request looks like in the log: secrets in the query masked.

/** Query values that look like secrets are masked before a URL reaches the log. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((kv) => {
      const eq = kv.indexOf('=');
      const key = eq < 0 ? kv : kv.slice(0, eq);
      return eq >= 0 && /token|auth|key|secret|pass|bearer/i.test(key) ? `${key}=[REDACTED]` : kv;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

/** pino's `req` serializer for fastify's request logger. */
export const requestSerializer = (req: {
  method?: string;
  url?: string;
  host?: string;
  hostname?: string;
  ip?: string;
  socket?: { remotePort?: number };
}): Record<string, unknown> => ({
  method: req.method,
  url: redactUrl(req.url ?? ''),
  host: req.host ?? req.hostname,
  remoteAddress: req.ip,
  remotePort: req.socket?.remotePort,
});

/** The path of a URL, without its query. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

// @ts-check
// The page's one door to the daemon: the same public API every client uses.
// REST carries the token in the Authorization header; a browser WebSocket
// cannot set headers, so there the token travels as the subprotocol
// `bearer.<token>`, offered with `nlbridge` (the daemon answers `nlbridge`,
// never echoing the secret). The token lives in sessionStorage: this tab
// only, gone when it closes, never in a URL.

const TOKEN_KEY = 'nlbridge.token';

/** @returns {string | null} */
export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string | null} token */
export function storeToken(token) {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/**
 * @typedef {{ status: number, code?: string, title?: string, detail?: string, field?: string, errno?: string, results?: unknown[] }} Problem
 * @typedef {{ ok: true, status: number, body: any } | { ok: false, status: number, problem: Problem }} ApiAnswer
 */

/**
 * A REST call with the stored token. Never throws for an HTTP refusal: the
 * answer says what the daemon said (its problem+json), or what the network did.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<ApiAnswer>}
 */
export async function call(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  const token = storedToken();
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  } catch (err) {
    return { ok: false, status: 0, problem: { status: 0, code: 'NETWORK', detail: `the daemon cannot be reached (${String(err)})` } };
  }
  const type = res.headers.get('content-type') ?? '';
  const parsed = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (res.ok) return { ok: true, status: res.status, body: parsed };
  const problem =
    parsed !== null && typeof parsed === 'object' ? /** @type {Problem} */ (parsed) : { status: res.status, detail: String(parsed) };
  return { ok: false, status: res.status, problem };
}

/** @param {Problem} p */
export function problemText(p) {
  const code = p.code ? ` ${p.code}` : '';
  return `${p.status || ''}${code}: ${p.detail ?? p.title ?? 'refused'}`.trim();
}

/**
 * The WebSocket for a stream path (e.g. `/groups?list=2&batch=1`), on the
 * page's own origin.
 * @param {string} pathAndQuery
 */
export function openStream(pathAndQuery) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const token = storedToken();
  const protocols = token === null ? ['nlbridge'] : ['nlbridge', `bearer.${token}`];
  return new WebSocket(`${scheme}//${location.host}${pathAndQuery}`, protocols);
}

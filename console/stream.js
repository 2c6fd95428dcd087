// @ts-check
// One subscription: a WebSocket on /groups with ?batch=1 (the messages of one
// netlink receive batch arrive in one frame, one JSON object per line, so a
// flood costs the page far fewer WebSocket events). It reconnects after a
// connection that had worked is lost, resuming with ?since= from the last
// cursor it saw, so the daemon's ring fills the hole or a `gap` frame says
// how much is gone.

import { openStream } from './api.js';

const RECONNECT_MS = 1000;

/**
 * @typedef {{ type: string, n: number, [k: string]: any }} Frame
 * @typedef {{
 *   onHello(frame: Frame): void,
 *   onMessage(frame: Frame): void,
 *   onEvent(frame: Frame): void,
 *   onMissingFrames(count: number, fromN: number): void,
 *   onClose(code: number, reason: string, everOpened: boolean, willRetry: boolean): void,
 * }} StreamHandlers
 */

/**
 * The stream path for what the user typed: a list (`2,4,40`) or a mask
 * (`10`, `0xa`, `0b1010`), as the daemon's two WebSocket routes take them.
 * @param {'list' | 'mask'} kind
 * @param {string} text
 * @param {string | null} since
 */
export function streamPath(kind, text, since) {
  const groups = text.trim();
  const query = new URLSearchParams({ batch: '1' });
  if (since !== null) query.set('since', since);
  if (kind === 'list') {
    query.set('list', groups.replace(/\s+/g, ''));
    return `/groups?${query}`;
  }
  return `/groups/${encodeURIComponent(groups)}?${query}`;
}

export class Subscription {
  /**
   * @param {'list' | 'mask'} kind
   * @param {string} groups
   * @param {StreamHandlers} handlers
   */
  constructor(kind, groups, handlers) {
    this.kind = kind;
    this.groups = groups;
    this.handlers = handlers;
    /** @type {string | null} the last message cursor seen, for ?since= */
    this.cursor = null;
    this.stopped = false;
    /** @type {number} the stream's last frame counter (frames a slow client lost use up theirs) */
    this.lastN = 0;
    /** @type {WebSocket | null} */
    this.ws = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.retry = null;
    this.connect();
  }

  connect() {
    let ws;
    try {
      ws = openStream(streamPath(this.kind, this.groups, this.cursor));
    } catch (err) {
      // The browser refuses a subprotocol with separators ("/", ",", "@", …):
      // a token from --token-file may hold them; a generated one is hex.
      this.handlers.onEvent({
        type: 'error',
        n: 0,
        problem: {
          status: 0,
          code: 'TOKEN_NOT_USABLE',
          detail: `the WebSocket cannot carry this token as the subprotocol bearer.<token> (${String(err)}): use a token of letters and digits`,
        },
      });
      this.handlers.onClose(0, 'not opened', true, false);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      for (const line of ev.data.split('\n')) {
        if (line) this.frame(/** @type {Frame} */ (JSON.parse(line)));
      }
    };
    ws.onopen = () => {
      opened = true;
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // A refusal after the upgrade (1008) or a stop is final; a connection
      // that never opened was refused at the upgrade (the page asks /status why).
      const willRetry = !this.stopped && opened && ev.code !== 1008;
      this.handlers.onClose(ev.code, ev.reason, opened, willRetry);
      if (willRetry) this.retry = setTimeout(() => this.connect(), RECONNECT_MS);
    };
  }

  /** @param {Frame} f */
  frame(f) {
    if (f.type === 'hello') {
      this.lastN = 0;
      this.handlers.onHello(f);
      return;
    }
    if (typeof f.n === 'number') {
      if (f.n > this.lastN + 1) this.handlers.onMissingFrames(f.n - this.lastN - 1, this.lastN + 1);
      this.lastN = f.n;
    }
    if (f.type === 'message') {
      if (typeof f.cursor === 'string') this.cursor = f.cursor;
      this.handlers.onMessage(f);
    } else {
      this.handlers.onEvent(f);
    }
  }

  stop() {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.ws?.close(1000, 'stopped');
    this.ws = null;
  }
}

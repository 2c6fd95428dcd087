// @ts-check
// The message table, bounded two ways so a flood cannot freeze the page:
// rows are rendered once per animation frame at most ROWS_PER_SECOND on
// average (what the eye can follow), and the table keeps MAX_ROWS. Messages
// beyond that are counted, not rendered. Notices (overrun, dropped, gap,
// errors) always get their row, in order, where they happened.

import { payloadText } from './payload.js';

export const ROWS_PER_SECOND = 300;
const MAX_ROWS = 500;
const MAX_KEPT_NOTICES = 50;
/** Messages waiting for a frame; past this the oldest waiting are counted instead (about half a second of rows). */
const MAX_WAITING = ROWS_PER_SECOND / 2;

/**
 * @typedef {{ kind: 'message', frame: any } | { kind: 'notice', text: string, cls: string, at: Date }} Entry
 */

/** @param {Date} d */
function clock(d) {
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/**
 * @param {string} text
 * @param {string} cls
 */
function cell(text, cls) {
  const el = document.createElement('span');
  el.textContent = text;
  el.className = cls;
  return el;
}

export class RowList {
  /**
   * Rows are blocks of fixed height, each laid out on its own (console.css:
   * contain), not table rows: a table re-laid out all its 500 rows at every
   * insertion, which kept a loaded machine's main thread busy under a flood.
   * @param {HTMLElement} body
   */
  constructor(body) {
    this.body = body;
    /** @type {Entry[]} */
    this.waiting = [];
    this.waitingMessages = 0;
    this.allowance = ROWS_PER_SECOND / 10;
    this.lastFlush = performance.now();
    this.asHex = false;
    /** messages received and shown as a row */
    this.shown = 0;
    /** messages received and only counted (over the rendering budget) */
    this.counted = 0;
  }

  /** @param {any} frame */
  message(frame) {
    this.waiting.push({ kind: 'message', frame });
    this.waitingMessages++;
    // Amortized: trim only when twice over, keeping every notice and the newest messages.
    if (this.waitingMessages > 2 * MAX_WAITING) {
      let drop = this.waitingMessages - MAX_WAITING;
      this.counted += drop;
      this.waitingMessages -= drop;
      this.waiting = this.waiting.filter((e) => e.kind === 'notice' || drop-- <= 0);
    }
  }

  /**
   * @param {string} text
   * @param {string} cls  notice-overrun, notice-dropped, notice-gap, notice-error, notice-info
   */
  notice(text, cls) {
    this.waiting.push({ kind: 'notice', text, cls, at: new Date() });
  }

  /** Renders what the budget allows; called once per animation frame. */
  flush() {
    const now = performance.now();
    this.allowance = Math.min(this.allowance + ((now - this.lastFlush) * ROWS_PER_SECOND) / 1000, MAX_WAITING);
    this.lastFlush = now;
    if (this.waiting.length === 0) return;
    const rows = [];
    let taken = 0;
    while (taken < this.waiting.length) {
      const e = this.waiting[taken];
      if (e.kind === 'message') {
        if (this.allowance < 1) break;
        this.allowance--;
        this.waitingMessages--;
        this.shown++;
      }
      rows.push(this.row(e));
      taken++;
    }
    this.waiting.splice(0, taken);
    // Newest on top.
    const fragment = document.createDocumentFragment();
    for (let i = rows.length - 1; i >= 0; i--) fragment.append(rows[i]);
    this.body.prepend(fragment);
    this.trim();
  }

  /**
   * Keeps MAX_ROWS, removing the oldest messages first: the newest
   * MAX_KEPT_NOTICES notices stay (sinking to the bottom, in order) while the
   * messages around them go, so an overrun is still on screen after a flood.
   */
  trim() {
    let extra = this.body.childElementCount - MAX_ROWS;
    if (extra <= 0) return;
    let removableNotices = this.body.querySelectorAll(':scope > .notice').length - MAX_KEPT_NOTICES;
    let row = this.body.lastElementChild;
    while (extra > 0 && row) {
      const above = row.previousElementSibling;
      const notice = row.classList.contains('notice');
      if (!notice || removableNotices-- > 0) {
        row.remove();
        extra--;
      }
      row = above;
    }
  }

  /** @param {Entry} e */
  row(e) {
    const row = document.createElement('div');
    if (e.kind === 'notice') {
      row.className = `row notice ${e.cls}`;
      row.append(cell(clock(e.at), 'time'), cell(e.text, 'text'));
      return row;
    }
    const f = e.frame;
    row.className = 'row message';
    row.append(
      cell(clock(new Date(f.receivedAt)), 'time'),
      cell(String(f.group), 'group'),
      cell(String(f.portId), 'port'),
      cell(String(f.seq), 'seq'),
      cell(String(f.msgType), 'type'),
      cell(String(f.length), 'bytes'),
      cell(payloadText(f, this.asHex), 'payload'),
    );
    return row;
  }

  clear() {
    this.body.replaceChildren();
  }
}

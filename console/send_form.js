// @ts-check
// The send form: one POST /send per submit, and the daemon's answer shown as
// it is, destination by destination (delivered, no kernel endpoint,
// port unreachable, busy, the kernel's ack) or as the problem that refused it.

import { call, problemText } from './api.js';

/**
 * The /send request for what the form holds.
 * @param {string} to  'groups' (a list) | 'mask' | 'pid' | 'relay'
 * @param {string} target
 * @param {string} data
 * @param {string} encoding
 * @param {boolean} ack
 * @returns {Record<string, unknown>}
 */
export function sendRequest(to, target, data, encoding, ack) {
  /** @type {Record<string, unknown>} */
  const req = { data, encoding };
  const t = target.trim();
  // A list goes as numbers (so the daemon's schema names a bad one); a mask
  // as the text typed, which the daemon parses at any width.
  if (to === 'groups') req.groups = t.split(',').map((g) => (/^\s*\d+\s*$/.test(g) ? Number(g) : g.trim()));
  else if (to === 'mask') req.groups = t;
  else if (to === 'pid') req.pid = Number(t);
  else req.relay = Number(t);
  if (ack) req.ack = true;
  return req;
}

/**
 * @param {string} text
 * @param {string} [cls]
 */
function el(tag = 'td', text = '', cls = '') {
  const e = document.createElement(tag);
  e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** @param {any[]} results */
function resultsTable(results) {
  const table = document.createElement('table');
  table.className = 'report';
  const head = document.createElement('tr');
  head.append(el('th', 'to'), el('th', 'where'), el('th', 'result'), el('th', 'ack'));
  table.append(head);
  for (const r of results) {
    const tr = document.createElement('tr');
    tr.className = `result-${r.result}`;
    const where = r.to === 'group' ? `group ${r.group}` : r.portId !== undefined ? `port ${r.portId}` : '';
    tr.append(el('td', r.to), el('td', where), el('td', r.code ? `${r.result} (${r.code})` : r.result), el('td', r.ack ? r.ack.code : ''));
    table.append(tr);
  }
  return table;
}

/**
 * @param {HTMLFormElement} form
 * @param {HTMLElement} out
 */
export function wireSendForm(form, out) {
  const field = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const req = sendRequest(
      field('send-to').value,
      field('send-target').value,
      field('send-data').value,
      field('send-encoding').value,
      field('send-ack').checked,
    );
    out.replaceChildren(el('p', 'sending…'));
    const answer = await call('POST', '/send', req);
    if (answer.ok) {
      const r = answer.body;
      out.replaceChildren(
        el(
          'p',
          `${r.ok ? 'every destination reached' : 'some destinations not reached'}: seq ${r.seq}, from port ${r.portId}, ${r.bytes} bytes`,
          r.ok ? 'ok' : 'problem',
        ),
        resultsTable(r.results),
      );
      out.dataset.outcome = r.ok ? 'ok' : 'partial';
    } else {
      const p = answer.problem;
      out.replaceChildren(el('p', problemText(p), 'problem'), ...(Array.isArray(p.results) ? [resultsTable(p.results)] : []));
      out.dataset.outcome = 'refused';
    }
  });
}

// @ts-check
// GET /status as the page shows it: the protocol and why it was chosen, the
// module's parameters, the socket port ids, joined groups, clients, auth and
// the counters. Only the main token (or no token required) may read it; a
// scoped token's 403 is shown, and the rest of the page goes on.

/**
 * @param {string} title
 * @param {[string, string][]} pairs
 */
function table(title, pairs) {
  const section = document.createElement('div');
  const h = document.createElement('h3');
  h.textContent = title;
  const t = document.createElement('table');
  t.className = 'kv';
  for (const [k, v] of pairs) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.textContent = k;
    const td = document.createElement('td');
    td.textContent = v;
    td.dataset.key = k;
    tr.append(th, td);
    t.append(tr);
  }
  section.append(h, t);
  return section;
}

/**
 * @param {HTMLElement} out
 * @param {any} s  the Status object of openapi.yaml
 */
export function renderStatus(out, s) {
  const p = s.protocol;
  const module = s.module === null ? [['module', 'not loaded']] : Object.entries(s.module).map(([k, v]) => [k, String(v)]);
  const subscribers = Object.entries(s.groups.subscribers)
    .map(([g, n]) => `${g} (${n})`)
    .join(', ');
  out.replaceChildren(
    table('Protocol', [
      ['protocol', `${p.name} (${p.number})`],
      ['why', p.reason],
      ['kernel endpoint', p.kernelEndpoint ? 'yes' : 'no'],
      ['max group', String(p.maxGroup)],
    ]),
    table('Module parameters', /** @type {[string, string][]} */ (module)),
    table('Daemon', [
      ['version', s.version],
      ['uptime', `${s.uptimeSeconds} s`],
      ['port ids', `tx ${s.portIds.tx}, rx ${s.portIds.rx}`],
      ['joined groups', subscribers || 'none'],
      ['clients', `${s.clients.websocket} streams, ${s.clients.unicast} unicast`],
      ['auth', `${s.auth.mode}${s.auth.tokenRequired ? ', token required' : ', no token'}`],
    ]),
    table(
      'Counters',
      Object.entries(s.counters).map(([k, v]) => [k, Number(v).toLocaleString('en')]),
    ),
  );
}

// @ts-check
// The console's wiring: find out whether a token is needed (GET /status
// answers 401), ask for it once, then watch, send and show the status. Every
// byte the page shows comes from the public API.

import { call, problemText, storeToken, storedToken } from './api.js';
import { Subscription } from './stream.js';
import { RowList } from './rows.js';
import { RateChart } from './rate_chart.js';
import { wireSendForm } from './send_form.js';
import { renderStatus } from './status_panel.js';

const STATUS_EVERY_MS = 2000;
/** The chart's buckets are whole seconds: drawing it more often shows nothing new. */
const CHART_EVERY_MS = 1000;
const SUMMARY_EVERY_MS = 500;
/**
 * Rows go into the list four times a second, not at every animation frame:
 * each insertion costs a style, layout and paint pass, and sixty of them a
 * second kept the main thread busy under a flood on a loaded machine.
 */
const ROWS_EVERY_MS = 250;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const input = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (document.getElementById(id));

const rows = new RowList($('row-body'));
const chart = new RateChart(/** @type {HTMLCanvasElement} */ ($('rate-chart')), $('rate-legend'));

/** What the stream brought, for the summary line. */
const totals = { received: 0, dropped: 0, overrunLost: 0, gapLost: 0, malformed: 0, missingFrames: 0 };
/** @type {Subscription | null} */
let subscription = null;

/** @param {string} text */
function setConnection(text, state = '') {
  const badge = $('connection');
  badge.textContent = text;
  badge.dataset.state = state;
}

/** @param {string} message */
function askForToken(message) {
  $('auth').hidden = false;
  $('auth-message').textContent = message;
  input('token-input').focus();
}

/** Reads /status; false when the page cannot go on without a (new) token. */
async function refreshStatus() {
  const answer = await call('GET', '/status');
  if (answer.ok) {
    $('status-message').textContent = '';
    renderStatus($('status-body'), answer.body);
    const p = answer.body.protocol;
    $('protocol-line').textContent = `${p.name} (protocol ${p.number}): ${p.reason}`;
    return true;
  }
  const p = answer.problem;
  if (answer.status === 401) {
    const hadToken = storedToken() !== null;
    storeToken(null);
    askForToken(hadToken ? `The token was refused: ${problemText(p)}` : 'A token is required.');
    setConnection('token needed', 'refused');
    return false;
  }
  // A scoped token may stream and send but not read the whole daemon's state.
  $('status-message').textContent = problemText(p);
  return answer.status !== 0;
}

/** A stream that closed before it opened was refused at the upgrade; the browser does not say why, so ask the REST side of the same check. */
async function explainRefusal() {
  if (!(await refreshStatus())) return;
  rows.notice(
    'the stream was refused when it opened (a group this token may not read, a limit, or the daemon stopping); see the status',
    'notice-error',
  );
}

function subscribe() {
  subscription?.stop();
  rows.clear();
  chart.reset();
  const kind = /** @type {'list' | 'mask'} */ (input('subscribe-kind').value);
  const groups = input('subscribe-groups').value;
  setConnection('connecting…', 'connecting');
  subscription = new Subscription(kind, groups, {
    onHello(f) {
      setConnection(`watching ${f.groups.join(', ')}`, 'open');
      rows.notice(`subscribed to groups ${f.groups.join(', ')} (stream port ${f.portId}, ${f.protocol.name})`, 'notice-info');
    },
    onMessage(f) {
      totals.received++;
      chart.count(f.group);
      rows.message(f);
    },
    onEvent(f) {
      switch (f.type) {
        case 'overrun':
          totals.overrunLost += f.lost;
          chart.mark('overrun');
          rows.notice(`overrun: the netlink receive queue overflowed, ${f.lost} messages lost by the kernel`, 'notice-overrun');
          break;
        case 'dropped':
          totals.dropped += f.count;
          chart.mark('dropped');
          rows.notice(`dropped: this page fell behind, the daemon dropped ${f.count} frames for it`, 'notice-dropped');
          break;
        case 'gap':
          totals.gapLost += f.lost ?? 0;
          chart.mark('gap');
          rows.notice(
            `gap after ${f.since} (${f.reason}): ${f.lost ?? 'an unknown number of'} messages no longer held; resuming at ${f.resumeFrom}`,
            'notice-gap',
          );
          break;
        case 'malformed':
          totals.malformed++;
          rows.notice(`malformed datagram from port ${f.portId} on group ${f.group}: ${f.reason}`, 'notice-error');
          break;
        case 'error':
          rows.notice(problemText(f.problem), 'notice-error');
          break;
        default:
          break;
      }
    },
    onMissingFrames(count) {
      totals.missingFrames += count;
    },
    onClose(code, reason, everOpened, willRetry) {
      if (!everOpened) {
        setConnection('refused', 'refused');
        void explainRefusal();
        return;
      }
      setConnection(willRetry ? 'reconnecting…' : `closed (${code})`, willRetry ? 'connecting' : 'closed');
      rows.notice(
        `stream closed: ${code}${reason ? ` ${reason}` : ''}${willRetry ? '; resuming after the last message seen' : ''}`,
        'notice-error',
      );
    },
  });
}

function summary() {
  const t = totals;
  const parts = [
    `${t.received.toLocaleString('en')} received`,
    `${rows.shown.toLocaleString('en')} shown`,
    `${rows.counted.toLocaleString('en')} counted, not shown`,
  ];
  if (t.dropped) parts.push(`${t.dropped.toLocaleString('en')} dropped by the daemon`);
  if (t.overrunLost) parts.push(`${t.overrunLost.toLocaleString('en')} lost in overruns`);
  if (t.gapLost) parts.push(`${t.gapLost.toLocaleString('en')} lost in gaps`);
  if (t.malformed) parts.push(`${t.malformed} malformed`);
  const el = $('stream-summary');
  el.textContent = parts.join(' · ');
  el.dataset.received = String(t.received);
  el.dataset.shown = String(rows.shown);
  el.dataset.counted = String(rows.counted);
  el.dataset.dropped = String(t.dropped);
  el.dataset.overrunLost = String(t.overrunLost);
  el.dataset.gapLost = String(t.gapLost);
}

let lastChart = 0;
let lastRows = 0;
let lastSummary = 0;
/** @param {number} now */
function frame(now) {
  if (now - lastRows >= ROWS_EVERY_MS) {
    lastRows = now;
    rows.flush();
  }
  if (now - lastChart >= CHART_EVERY_MS) {
    lastChart = now;
    chart.draw();
  }
  if (now - lastSummary >= SUMMARY_EVERY_MS) {
    lastSummary = now;
    summary();
  }
  requestAnimationFrame(frame);
}

function wire() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    storeToken(input('token-input').value.trim());
    input('token-input').value = '';
    void start();
  });
  $('subscribe-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    subscribe();
  });
  $('unsubscribe').addEventListener('click', () => {
    subscription?.stop();
    subscription = null;
    setConnection('stopped', 'closed');
  });
  $('clear-rows').addEventListener('click', () => rows.clear());
  input('payload-hex').addEventListener('change', () => {
    rows.asHex = input('payload-hex').checked;
  });
  wireSendForm(/** @type {HTMLFormElement} */ ($('send-form')), $('send-report'));
  setInterval(() => {
    if ($('auth').hidden) void refreshStatus();
  }, STATUS_EVERY_MS);
  requestAnimationFrame(frame);
}

async function start() {
  if (!(await refreshStatus())) return;
  $('auth').hidden = true;
  document.body.dataset.ready = 'true';
  setConnection('ready', 'ready');
}

wire();
void start();

// @ts-check
// Messages per second per group over the last minutes, drawn by hand on a
// canvas (no library: the page loads nothing but its own files). Each
// received message counts in its arrival group's one-second bucket; the
// moments of overruns, drops and gaps are marked on the time axis.

const WINDOW_SECONDS = 300;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

export class RateChart {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} legend
   */
  constructor(canvas, legend) {
    this.canvas = canvas;
    this.legend = legend;
    /** @type {Map<number, Float64Array>} group → counts per second, indexed by (second % WINDOW) */
    this.buckets = new Map();
    /** @type {Map<number, number>} group → the newest second written in its buckets */
    this.newest = new Map();
    /** @type {{ second: number, kind: string }[]} */
    this.marks = [];
  }

  /** @param {number} group */
  count(group) {
    const second = Math.floor(Date.now() / 1000);
    let b = this.buckets.get(group);
    if (!b) {
      b = new Float64Array(WINDOW_SECONDS);
      this.buckets.set(group, b);
      this.newest.set(group, second);
    }
    this.advance(group, b, second);
    b[second % WINDOW_SECONDS]++;
  }

  /**
   * Zeroes the buckets of the seconds that passed without a message.
   * @param {number} group
   * @param {Float64Array} b
   * @param {number} second
   */
  advance(group, b, second) {
    const last = /** @type {number} */ (this.newest.get(group));
    if (second <= last) return;
    for (let s = Math.max(last + 1, second - WINDOW_SECONDS + 1); s <= second; s++) b[s % WINDOW_SECONDS] = 0;
    this.newest.set(group, second);
  }

  /** @param {string} kind  overrun, dropped, gap */
  mark(kind) {
    this.marks.push({ second: Math.floor(Date.now() / 1000), kind });
    if (this.marks.length > 200) this.marks.splice(0, 100);
  }

  /** The rate of each group over the last complete second. */
  rates() {
    const now = Math.floor(Date.now() / 1000);
    /** @type {Map<number, number>} */
    const out = new Map();
    for (const [g, b] of this.buckets) {
      this.advance(g, b, now);
      out.set(g, b[(now - 1) % WINDOW_SECONDS]);
    }
    return out;
  }

  reset() {
    this.buckets.clear();
    this.newest.clear();
    this.marks = [];
  }

  draw() {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.canvas;
    const left = 48;
    const bottom = height - 18;
    const now = Math.floor(Date.now() / 1000);
    const rates = this.rates();
    let max = 1;
    for (const b of this.buckets.values()) for (const v of b) if (v > max) max = v;
    const x = (/** @type {number} */ s) => left + ((s - (now - WINDOW_SECONDS)) / WINDOW_SECONDS) * (width - left - 4);
    const y = (/** @type {number} */ v) => bottom - (v / max) * (bottom - 8);

    ctx.clearRect(0, 0, width, height);
    ctx.font = '11px sans-serif';
    ctx.fillStyle = '#666';
    ctx.strokeStyle = '#ddd';
    ctx.lineWidth = 1;
    for (const frac of [0, 0.5, 1]) {
      ctx.beginPath();
      ctx.moveTo(left, y(max * frac));
      ctx.lineTo(width, y(max * frac));
      ctx.stroke();
      ctx.fillText(String(Math.round(max * frac)), 2, y(max * frac) + 4);
    }
    for (let m = 0; m <= WINDOW_SECONDS / 60; m++)
      ctx.fillText(m === 0 ? 'now' : `-${m} min`, x(now - m * 60) - (m === 0 ? 20 : 14), height - 4);

    for (const mk of this.marks) {
      if (mk.second < now - WINDOW_SECONDS) continue;
      ctx.strokeStyle = mk.kind === 'gap' ? '#b58900' : '#c00';
      ctx.beginPath();
      ctx.moveTo(x(mk.second), 8);
      ctx.lineTo(x(mk.second), bottom);
      ctx.stroke();
    }

    const legend = [];
    let i = 0;
    for (const [g, b] of [...this.buckets].sort((p, q) => p[0] - q[0])) {
      const color = COLORS[i++ % COLORS.length];
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      for (let s = now - WINDOW_SECONDS + 1; s < now; s++) {
        const v = b[((s % WINDOW_SECONDS) + WINDOW_SECONDS) % WINDOW_SECONDS];
        if (s === now - WINDOW_SECONDS + 1) ctx.moveTo(x(s), y(v));
        else ctx.lineTo(x(s), y(v));
      }
      ctx.stroke();
      let peak = 0;
      for (const v of b) if (v > peak) peak = v;
      legend.push({ g, color, rate: rates.get(g) ?? 0, peak });
    }
    this.legend.replaceChildren(
      ...legend.map(({ g, color, rate, peak }) => {
        const span = document.createElement('span');
        span.className = `legend legend-${COLORS.indexOf(color)}`;
        span.dataset.group = String(g);
        span.dataset.rate = String(rate);
        span.dataset.peak = String(peak);
        span.textContent = `group ${g}: ${rate.toLocaleString('en')} msg/s (peak ${peak.toLocaleString('en')})`;
        return span;
      }),
    );
  }
}

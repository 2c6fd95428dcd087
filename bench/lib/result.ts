// What a scenario hands back: one measurement per (figure, system). A figure
// that could not be measured keeps `value: null` and says why, so the table
// and the JSON always have every row.

export interface Measurement {
  /** The figure's main number (msg/s, deliveries/s, µs, req/s, bytes). */
  value: number | null;
  error?: string;
  [detail: string]: unknown;
}

export type Figures = Record<string, Record<string, Measurement>>;

export function failed(err: unknown): Measurement {
  const msg = err instanceof Error ? err.message : String(err);
  // Child failures carry a stack or a loader banner: keep the line that names the error.
  const lines = msg
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const named = lines.find((l) => /(Error\b|ERR_[A-Z_]+|\bE[A-Z]{3,}\b)/.test(l) && !l.startsWith('at '));
  const head = lines[0] ?? 'failed';
  return { value: null, error: (named && named !== head ? `${head} … ${named}` : head).slice(0, 300) };
}

export function put(figures: Figures, figure: string, system: string, m: Measurement): void {
  (figures[figure] ??= {})[system] = m;
}

/** Run a measurement; a failure becomes a null value with its reason. */
export async function measure(figures: Figures, figure: string, system: string, fn: () => Promise<Measurement>): Promise<Measurement> {
  let m: Measurement;
  try {
    m = await fn();
  } catch (err) {
    m = failed(err);
  }
  if (m.value !== null && !Number.isFinite(m.value)) m = { ...m, value: null, error: m.error ?? 'no data' };
  put(figures, figure, system, m);
  const v = m.value === null ? `n/a (${m.error})` : Number(m.value.toFixed(2));
  process.stderr.write(`bench: ${figure} / ${system}: ${v}\n`);
  return m;
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : NaN;
}

/**
 * Runs a measurement `runs` times and keeps the best: on a shared machine,
 * noise only ever slows a run down. Every run's value is kept in `runs`; a
 * process that died in any run makes `survived` false.
 */
export async function bestOf(
  runs: number,
  fn: () => Promise<Measurement>,
  better: (a: Measurement, b: Measurement) => boolean,
): Promise<Measurement> {
  const all: Measurement[] = [];
  const errors: string[] = [];
  let best: Measurement | null = null;
  let lastError: unknown = null;
  for (let i = 0; i < runs; i++) {
    try {
      const m = await fn();
      all.push(m);
      if (m.value !== null && Number.isFinite(m.value) && (best === null || better(m, best))) best = m;
    } catch (err) {
      lastError = err;
      errors.push(failed(err).error ?? 'failed');
    }
  }
  if (best === null) {
    if (all.length > 0) return all[all.length - 1];
    throw lastError;
  }
  // Every run whole (bar the best, which is the measurement itself), so a check can see each run's inputs.
  const out: Measurement = { ...best, runs: all.map((m) => m.value), runDetails: all.map((m) => (m === best ? 'best' : m)) };
  if (errors.length > 0) out.failedRuns = errors;
  if (all.some((m) => m.survived === false)) out.survived = false;
  return out;
}

export const higherValue = (a: Measurement, b: Measurement): boolean => (a.value ?? -Infinity) > (b.value ?? -Infinity);
export const lowerP99 = (a: Measurement, b: Measurement): boolean => num(a.p99_us) < num(b.p99_us);

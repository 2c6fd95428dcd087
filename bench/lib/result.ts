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
  const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
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

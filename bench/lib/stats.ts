// Small numeric helpers shared by agents and the runner.

export interface LatencySummary {
  n: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))));
  return sorted[idx];
}

/** The median (the mean of the two middle values of an even count); null for none. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Latency summary from samples in nanoseconds. */
export function summarizeNs(samplesNs: number[]): LatencySummary {
  const sorted = Float64Array.from(samplesNs).sort();
  return {
    n: sorted.length,
    p50_us: percentile(sorted, 0.5) / 1e3,
    p99_us: percentile(sorted, 0.99) / 1e3,
    max_us: sorted.length ? sorted[sorted.length - 1] / 1e3 : 0,
  };
}

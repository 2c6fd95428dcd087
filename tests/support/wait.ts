// Waiting for an event that proves a state, instead of for a length of time.
//
// A fixed sleep is a guess at how long the machine takes; on a busy host
// (two cores shared by a CI run and a VM under TCG) the guess is wrong and
// the test fails on timing alone. waitFor polls what proves the state (a
// frame counted, a metric in /metrics, a log line, a /proc counter) until it
// holds, and past a deadline fails saying what it waited for and what it saw
// last.

export interface WaitOptions<T> {
  /** Give up after this long (the failure names `what` and the last value seen). */
  timeoutMs: number;
  /** Between two probes (default 20 ms). */
  intervalMs?: number;
  /** When the probe's value proves the state (default: a value other than undefined, null and false). */
  until?: (value: T) => boolean;
  /** How the last value reads in the failure (default JSON, cut at 500 characters). */
  show?: (value: T) => string;
}

const describe = (v: unknown): string => {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  let s: string;
  try {
    s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 500 ? `${s.slice(0, 500)}…` : s;
};

/**
 * Probes until `until(value)` holds and returns that value. A probe that
 * throws (a fetch while a daemon restarts) counts as not yet, and its error
 * is the last thing seen.
 */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, opts: WaitOptions<T>): Promise<T> {
  const until = opts.until ?? ((v: T) => v !== undefined && v !== null && v !== false);
  const interval = opts.intervalMs ?? 20;
  const start = Date.now();
  let last: string = 'nothing (never probed)';
  for (let probes = 1; ; probes++) {
    try {
      const v = await probe();
      if (until(v)) return v;
      last = opts.show ? opts.show(v) : describe(v);
    } catch (err) {
      last = `the probe threw ${describe(err)}`;
    }
    const spent = Date.now() - start;
    if (spent >= opts.timeoutMs) {
      throw new Error(`timed out after ${spent} ms (${probes} probes) waiting for ${what}; last seen: ${last}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(interval, Math.max(1, opts.timeoutMs - spent))));
  }
}

/** A value of `name` in Prometheus text (`name N` or `name{labels} N`, labels as written), or undefined. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc(name)}${labels ? esc(labels) : ''} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

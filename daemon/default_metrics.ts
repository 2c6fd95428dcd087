// prom-client's default metrics (process_*, nodejs_*) without its GC
// histogram, nodejs_gc_duration_seconds.
//
// That one watches every garbage collection through a perf_hooks 'gc'
// PerformanceObserver. With it the daemon's scavenges promoted over a quarter
// more under load (1.77 against 1.38 MB over the bench's 50,000 messages to
// one reading client), and V8 doubled its young generation in 15 of 35
// paused-client bench runs, against 2 of 15 without it (issue 16;
// bench/README.md has the runs). collectDefaultMetrics has no switch for one
// metric, so each of the others is registered from its own module in
// prom-client, by the names prom-client lists as its defaults
// (collectDefaultMetrics.metricsList), as collectDefaultMetrics does.
// prom-client is pinned by package-lock.json; a renamed module fails at
// start, and tests/host/daemon_metrics.test.ts reads the families.

import { createRequire } from 'node:module';
import { collectDefaultMetrics, type Registry } from 'prom-client';

/** The one default left out, and why: the header above. */
const LEFT_OUT_DEFAULT_METRIC = 'gc';

type DefaultMetric = (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;

const load = createRequire(__filename);

/** Registers every prom-client default metric but the GC histogram in @registry. */
export function registerDefaultMetrics(registry: Registry): void {
  for (const name of collectDefaultMetrics.metricsList) {
    if (name === LEFT_OUT_DEFAULT_METRIC) continue;
    // prom-client's own default: event-loop delay sampled every 10 ms.
    (load(`prom-client/lib/metrics/${name}`) as DefaultMetric)(registry, { eventLoopMonitoringPrecision: 10 });
  }
}

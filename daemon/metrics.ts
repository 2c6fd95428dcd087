// The bridge's metrics, exposed by prom-client from a Registry of their own
// (not prom-client's global one, so a test process can build several apps).
//
// The hot path does not touch prom-client: the bus and the streams count in
// plain Families (a Map from label text to a number, the same work as before
// prom-client), and each prom-client metric copies its Family in collect(),
// which prom-client calls once per scrape. So a message costs what it did;
// a scrape costs one pass over the label sets.
//
// Families whose label values are a closed set (reasons, limits) start with
// every value at 0, so a rate() over them sees the first event. Groups,
// errno codes and routes are open sets: a series appears with its first count.

import { Counter, Gauge, Registry } from 'prom-client';
import { registerDefaultMetrics } from './default_metrics';
import { HotHistogram } from './hot_histogram';

type Labels = Record<string, string | number>;

/** A hot-path count: inc() is a Map update, read by prom-client at scrape time. */
export class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: 'counter' | 'gauge',
    /** The label name and its known values, each exposed at 0 before its first count. */
    readonly known: { label: string; values: readonly string[] } | null = null,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const v = this.values.get(key);
    if (v) v.value += by;
    else this.values.set(key, { labels, value: by });
  }

  set(labels: Labels, value: number): void {
    this.values.set(labelText(labels), { labels, value });
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }

  total(): number {
    let t = 0;
    for (const v of this.values.values()) t += v.value;
    return t;
  }

  /** The label names its samples carry (prom-client wants them up front). */
  labelNames(): string[] {
    if (this.known) return [this.known.label];
    return LABEL_NAMES[this.name] ?? [];
  }
}

// The map key only: prom-client escapes label values itself when it renders.
// Called for every message received and every request (bench/, issue 6):
// one label, the common case, needs no sort.
function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  if (keys.length === 1) return `${keys[0]}\u0000${labels[keys[0]]}`;
  keys.sort();
  return keys.map((k) => `${k}\u0000${labels[k]}`).join('\u0001');
}

/** Label names of the families with open label sets. */
const LABEL_NAMES: Record<string, string[]> = {
  nlbridge_sent_messages_total: ['group'],
  nlbridge_received_messages_total: ['group'],
  nlbridge_send_errors_total: ['code'],
  nlbridge_kernel_acks_total: ['code'],
  nlbridge_http_requests_total: ['route', 'status'],
  // WebSocket series carry no label (their names predate SSE); SSE ones carry transport="sse".
  nlbridge_websocket_frames_sent_total: ['transport'],
  nlbridge_websocket_frames_dropped_total: ['transport'],
  nlbridge_websocket_closed_slow_total: ['transport'],
};

/**
 * Series exposed at 0 before their first count, for families whose label set
 * is not one known list: the WebSocket frame counters' unlabelled series
 * (what dashboards and tests read) and their SSE series.
 */
const SERIES_FROM_START: Record<string, Labels[]> = {
  nlbridge_websocket_frames_sent_total: [{}, { transport: 'sse' }],
  nlbridge_websocket_frames_dropped_total: [{}, { transport: 'sse' }],
  nlbridge_websocket_closed_slow_total: [{}, { transport: 'sse' }],
};

/** Why the codec (addon/codec.ts CodecErrorCode) or the dummy protocol's payload decoder refused a datagram. */
export const REJECT_REASONS = ['ETOOSHORT', 'EBADLEN', 'EZEROLEN', 'ETRUNC', 'EDNLPAYLOAD'] as const;
/** Why app.ts refused a request before its route ran. */
export const AUTH_REFUSAL_REASONS = ['peer-gone', 'host', 'origin', 'no-token', 'bad-token', 'scope'] as const;
/** The bounds that refuse connections, streams, sends and requests. */
export const LIMITS = ['connections', 'request-timeout', 'streams', 'unicast', 'rate'] as const;
/** Why the resume ring drops a message (ring.ts evicted). */
export const RING_EVICTION_REASONS = ['count', 'age', 'bytes'] as const;

/** Why a message meant for NATS was dropped (daemon/fleet/publisher.ts). */
export const NATS_DROP_REASONS = ['buffer', 'max-payload', 'host-id'] as const;

/** What a scrape reads from the fleet. */
export interface FleetGauges {
  published: number;
  dropped: Partial<Record<(typeof NATS_DROP_REASONS)[number], number>>;
  connected: boolean;
  reconnects: number;
  heldBytes: number;
  /** Send requests (--nats-send on) answered, by the answer's HTTP status. */
  sendAnswers: Readonly<Record<string, number>>;
  /** --nats-jetstream on: whether the stream is ready; null when off. */
  jetstreamReady: boolean | null;
  /** Whether another daemon claims this daemon's --host-id (daemon/fleet/host_claim.ts). */
  hostIdConflict: boolean;
}

/** What a scrape reads from the bus (routes/metrics.ts connects it). */
export interface BusGauges {
  joinedGroups(): number;
  unicastClients(): number;
  /** SK_MEMINFO_DROPS of the shared receive socket (monotonic: a counter). */
  rxSocketDrops(): number;
  ringMessages(): number;
  ringBytes(): number;
  ringMaxBytes(): number;
  ringEvicted(): Readonly<Record<(typeof RING_EVICTION_REASONS)[number], number>>;
}

/** Buckets of the delivery histogram, seconds: the synchronous path is tens of µs, a stalled one milliseconds. */
const DELIVERY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

export class Metrics {
  readonly sent = new Family(
    'nlbridge_sent_messages_total',
    'Messages sent, by destination group (0 = unicast to a port or the kernel)',
    'counter',
  );
  readonly received = new Family('nlbridge_received_messages_total', 'Messages received, by arrival group (0 = unicast)', 'counter');
  readonly duplicates = new Family(
    'nlbridge_received_duplicates_total',
    'Extra copies of one message (same sender, pid, seq, type) on several joined groups',
    'counter',
  );
  readonly rejected = new Family(
    'nlbridge_received_rejected_total',
    'Datagrams (or their tails) rejected by the codec, by reason',
    'counter',
    { label: 'reason', values: REJECT_REASONS },
  );
  readonly truncated = new Family('nlbridge_received_truncated_total', 'Datagrams longer than the read buffer (cut)', 'counter');
  readonly overruns = new Family(
    'nlbridge_netlink_overruns_total',
    'Receive-queue overruns (ENOBUFS episodes reported by the socket)',
    'counter',
  );
  readonly overrunLost = new Family(
    'nlbridge_netlink_overrun_lost_messages_total',
    'Messages the kernel dropped on our receive queues (SK_MEMINFO_DROPS)',
    'counter',
  );
  readonly sendErrors = new Family('nlbridge_send_errors_total', 'Failed sends, by errno code', 'counter');
  readonly kernelAcks = new Family('nlbridge_kernel_acks_total', 'Kernel acks received, by errno code (OK = success)', 'counter');
  readonly wsClients = new Family('nlbridge_websocket_clients', 'Open WebSocket clients', 'gauge');
  readonly wsFrames = new Family('nlbridge_websocket_frames_sent_total', 'Frames sent to WebSocket clients', 'counter');
  readonly wsDropped = new Family('nlbridge_websocket_frames_dropped_total', 'Frames dropped because a client was slow', 'counter');
  readonly wsClosedSlow = new Family(
    'nlbridge_websocket_closed_slow_total',
    'Clients closed with 1013 for staying over their backlog',
    'counter',
  );
  readonly httpRequests = new Family('nlbridge_http_requests_total', 'HTTP requests, by route and status', 'counter');
  readonly authFailures = new Family(
    'nlbridge_auth_refusals_total',
    'Requests refused by Host, Origin or token checks, by reason',
    'counter',
    { label: 'reason', values: AUTH_REFUSAL_REASONS },
  );
  readonly limitRefusals = new Family(
    'nlbridge_limit_refusals_total',
    'Connections, streams, sends and requests refused by a bound, by limit (connections, request-timeout, streams, unicast, rate)',
    'counter',
    { label: 'limit', values: LIMITS },
  );

  readonly registry = new Registry();

  /**
   * Netlink-to-client delivery: from a receive batch reaching the bus to the
   * frames of that batch written to every subscribed client's socket.
   * Observed once per receive batch that reached a client (the bus's
   * onRxBatch), not per message: a batch is up to 64 datagrams, so the hot
   * path gains one performance.now() pair and one observe per batch, which
   * allocates nothing (hot_histogram.ts says why it is not prom-client's).
   */
  readonly deliveryLatency: HotHistogram;

  private bus: BusGauges | null = null;

  constructor(build: { version?: string } = {}) {
    const registers = [this.registry];
    for (const f of [
      this.sent,
      this.received,
      this.duplicates,
      this.rejected,
      this.truncated,
      this.overruns,
      this.overrunLost,
      this.sendErrors,
      this.kernelAcks,
      this.wsClients,
      this.wsFrames,
      this.wsDropped,
      this.wsClosedSlow,
      this.httpRequests,
      this.authFailures,
      this.limitRefusals,
    ]) {
      exposeFamily(f, registers);
    }
    this.deliveryLatency = new HotHistogram(
      'nlbridge_delivery_latency_seconds',
      'Time from a netlink receive batch reaching the daemon to its frames written to every subscribed client socket, once per batch',
      DELIVERY_BUCKETS,
      this.registry,
    );

    const bus = (): BusGauges | null => this.bus;
    const gauge = (name: string, help: string, read: (b: BusGauges) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const b = bus();
          this.set(b ? read(b) : 0);
        },
      });
    };
    gauge('nlbridge_joined_groups', 'Groups the receive socket belongs to', (b) => b.joinedGroups());
    gauge('nlbridge_unicast_clients', 'WebSocket clients with a netlink socket of their own', (b) => b.unicastClients());
    gauge('nlbridge_ring_messages', 'Messages held in the resume ring', (b) => b.ringMessages());
    gauge('nlbridge_ring_bytes', 'Accounted bytes of the resume ring', (b) => b.ringBytes());
    gauge('nlbridge_ring_max_bytes', 'Memory cap of the resume ring (--ring-max-bytes)', (b) => b.ringMaxBytes());
    new Counter({
      name: 'nlbridge_rx_socket_drops_total',
      help: 'SK_MEMINFO_DROPS of the shared receive socket (messages the kernel dropped on it)',
      registers,
      collect() {
        this.reset();
        const b = bus();
        this.inc(b ? b.rxSocketDrops() : 0);
      },
    });
    new Counter({
      name: 'nlbridge_ring_evicted_messages_total',
      help: 'Messages dropped from the resume ring, by reason (count, age, bytes)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const evicted = bus()?.ringEvicted();
        for (const reason of RING_EVICTION_REASONS) this.inc({ reason }, evicted?.[reason] ?? 0);
      },
    });
    new Gauge({
      name: 'nlbridge_build_info',
      help: 'The running build: always 1, with the version as a label',
      labelNames: ['version'],
      registers,
    }).set({ version: build.version ?? 'unknown' }, 1);
    // process_* and nodejs_*: CPU, memory, fds, event-loop lag, heap. They
    // are read at scrape time too, but for the event-loop delay monitor (a
    // native histogram); prom-client's GC histogram is left out (default_metrics.ts).
    registerDefaultMetrics(this.registry);
    // Three of them are gauges named _total, which promtool refuses; their
    // totals are the sums of nodejs_active_handles, _requests, _resources.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      this.registry.removeSingleMetric(name);
  }

  /**
   * The fleet's series (daemon/fleet/), registered only when it runs: a
   * daemon without --nats exposes none of them. Read at scrape time.
   */
  exposeFleet(read: () => FleetGauges, jetstream = false): void {
    const registers = [this.registry];
    new Counter({
      name: 'nlbridge_nats_published_total',
      help: 'Messages published on NATS and confirmed by the server (a flush answered after them)',
      registers,
      collect() {
        this.reset();
        this.inc(read().published);
      },
    });
    new Counter({
      name: 'nlbridge_nats_dropped_total',
      help: 'Messages meant for NATS and dropped, by reason (buffer: --nats-buffer-bytes full; max-payload: larger than the server takes; host-id: another daemon holds this --host-id)',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const d = read().dropped;
        for (const reason of NATS_DROP_REASONS) this.inc({ reason }, d[reason] ?? 0);
      },
    });
    new Gauge({
      name: 'nlbridge_nats_connected',
      help: '1 while connected to a NATS server, else 0',
      registers,
      collect() {
        this.set(read().connected ? 1 : 0);
      },
    });
    new Counter({
      name: 'nlbridge_nats_reconnects_total',
      help: 'Reconnections to NATS after a lost connection',
      registers,
      collect() {
        this.reset();
        this.inc(read().reconnects);
      },
    });
    new Counter({
      name: 'nlbridge_nats_send_requests_total',
      help: 'Send requests on nlbridge.<host>.send (--nats-send on) answered, by the status of the answer (403: outside "natsSendScope")',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        for (const [status, n] of Object.entries(read().sendAnswers)) this.inc({ status }, n);
      },
    });
    if (jetstream)
      new Gauge({
        name: 'nlbridge_nats_jetstream_ready',
        help: '--nats-jetstream on: 1 while the stream is created or found fit to use, 0 while pending, refused or unfit (see /status fleet.jetstream.error); checked every 10 s',
        registers,
        collect() {
          this.set(read().jetstreamReady === true ? 1 : 0);
        },
      });
    new Gauge({
      name: 'nlbridge_nats_host_id_conflict',
      help: '1 while another daemon claims this --host-id on the bus (see /status fleet.hostClaim: which one holds it), else 0',
      registers,
      collect() {
        this.set(read().hostIdConflict ? 1 : 0);
      },
    });
    new Gauge({
      name: 'nlbridge_nats_held_bytes',
      help: 'Bytes of messages held for NATS (waiting, or not yet confirmed)',
      registers,
      collect() {
        this.set(read().heldBytes);
      },
    });
  }

  /** The bus whose state the scrape-time gauges read (one per app). */
  readBus(bus: BusGauges): void {
    this.bus = bus;
  }
}

/** A prom-client counter or gauge that copies @f when scraped. */
function exposeFamily(f: Family, registers: Registry[]): void {
  const labelNames = f.labelNames();
  const config = { name: f.name, help: f.help, labelNames, registers };
  if (f.kind === 'gauge') {
    new Gauge({
      ...config,
      collect() {
        this.reset();
        if (labelNames.length === 0) this.set(0);
        for (const { labels, value } of f.values.values()) this.set(labels, value);
      },
    });
    return;
  }
  new Counter({
    ...config,
    collect() {
      this.reset();
      if (labelNames.length === 0) this.inc(0);
      if (f.known) for (const v of f.known.values) this.inc({ [f.known.label]: v }, 0);
      for (const labels of SERIES_FROM_START[f.name] ?? []) this.inc(labels, 0);
      for (const { labels, value } of f.values.values()) this.inc(labels, value);
    },
  });
}

// Counters of the bridge, rendered as Prometheus text exposition format 0.0.4.

type Labels = Record<string, string | number>;

class Family {
  readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly kind: 'counter' | 'gauge',
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
}

const NEEDS_ESCAPE = /[\\\n"]/;

function escapeLabel(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

// Called for every message received and every request (bench/, issue 6):
// one numeric label, the common case, needs no sort and no escaping.
function labelText(labels: Labels): string {
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  if (keys.length === 1) {
    const v = labels[keys[0]];
    return `{${keys[0]}="${typeof v === 'number' ? v : escapeLabel(v)}"}`;
  }
  if (keys.length === 2) {
    // Route and status of every HTTP request: in name order without a sort.
    const [a, b] = keys[0] < keys[1] ? [keys[0], keys[1]] : [keys[1], keys[0]];
    return `{${a}="${escapeLabel(String(labels[a]))}",${b}="${escapeLabel(String(labels[b]))}"}`;
  }
  keys.sort();
  return `{${keys.map((k) => `${k}="${escapeLabel(String(labels[k]))}"`).join(',')}}`;
}

export class Metrics {
  readonly sent = new Family('nlbridge_sent_messages_total', 'Messages sent, by destination group (0 = unicast to a port or the kernel)', 'counter');
  readonly received = new Family('nlbridge_received_messages_total', 'Messages received, by arrival group (0 = unicast)', 'counter');
  readonly duplicates = new Family('nlbridge_received_duplicates_total', 'Extra copies of one message (same sender, pid, seq, type) on several joined groups', 'counter');
  readonly rejected = new Family('nlbridge_received_rejected_total', 'Datagrams (or their tails) rejected by the codec, by reason', 'counter');
  readonly truncated = new Family('nlbridge_received_truncated_total', 'Datagrams longer than the read buffer (cut)', 'counter');
  readonly overruns = new Family('nlbridge_netlink_overruns_total', 'Receive-queue overruns (ENOBUFS episodes reported by the socket)', 'counter');
  readonly overrunLost = new Family('nlbridge_netlink_overrun_lost_messages_total', 'Messages the kernel dropped on our receive queues (SK_MEMINFO_DROPS)', 'counter');
  readonly sendErrors = new Family('nlbridge_send_errors_total', 'Failed sends, by errno code', 'counter');
  readonly kernelAcks = new Family('nlbridge_kernel_acks_total', 'Kernel acks received, by errno code (OK = success)', 'counter');
  readonly wsClients = new Family('nlbridge_websocket_clients', 'Open WebSocket clients', 'gauge');
  readonly wsFrames = new Family('nlbridge_websocket_frames_sent_total', 'Frames sent to WebSocket clients', 'counter');
  readonly wsDropped = new Family('nlbridge_websocket_frames_dropped_total', 'Frames dropped because a client was slow', 'counter');
  readonly wsClosedSlow = new Family('nlbridge_websocket_closed_slow_total', 'Clients closed with 1013 for staying over their backlog', 'counter');
  readonly httpRequests = new Family('nlbridge_http_requests_total', 'HTTP requests, by route and status', 'counter');
  readonly authFailures = new Family('nlbridge_auth_refusals_total', 'Requests refused by Host, Origin or token checks, by reason', 'counter');
  readonly limitRefusals = new Family('nlbridge_limit_refusals_total', 'Connections, streams, sends and requests refused by a bound, by limit (connections, request-timeout, streams, unicast, rate)', 'counter');
  readonly ringEvicted = new Family('nlbridge_ring_evicted_messages_total', 'Messages dropped from the resume ring, by reason (count, age, bytes)', 'counter');

  private readonly families: Family[] = [
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
    this.ringEvicted,
    this.limitRefusals,
  ];

  render(gauges: Record<string, { help: string; value: number }> = {}): string {
    const out: string[] = [];
    for (const f of this.families) {
      out.push(`# HELP ${f.name} ${f.help}`);
      out.push(`# TYPE ${f.name} ${f.kind}`);
      if (f.values.size === 0 && f.kind === 'gauge') out.push(`${f.name} 0`);
      if (f.values.size === 0 && f.kind === 'counter' && !hasLabels(f)) out.push(`${f.name} 0`);
      for (const { labels, value } of f.values.values()) out.push(`${f.name}${labelText(labels)} ${value}`);
    }
    for (const [name, g] of Object.entries(gauges)) {
      out.push(`# HELP ${name} ${g.help}`);
      out.push(`# TYPE ${name} gauge`);
      out.push(`${name} ${g.value}`);
    }
    return out.join('\n') + '\n';
  }
}

// Families whose every sample carries a label print nothing until they have one.
function hasLabels(f: Family): boolean {
  return f !== undefined && ['nlbridge_sent_messages_total', 'nlbridge_received_messages_total', 'nlbridge_received_rejected_total', 'nlbridge_send_errors_total', 'nlbridge_kernel_acks_total', 'nlbridge_http_requests_total', 'nlbridge_auth_refusals_total'].includes(f.name);
}

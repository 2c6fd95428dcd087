// nlbridge status: GET /status as a table (or --json).

import { table } from './format';
import { EXIT, CliError } from './exit_status';
import { clientFor, parse } from './options';
import { helpText } from './usage';

interface Status {
  version: string;
  protocol: { name: string; number: number; kernelEndpoint: boolean; maxGroup: number; reason: string };
  module: Record<string, number | boolean> | null;
  portIds: { tx: number; rx: number };
  groups: { joined: number[]; subscribers: Record<string, number> };
  clients: { websocket: number; unicast: number };
  auth: { mode: string; tokenRequired: boolean };
  counters: Record<string, number>;
  uptimeSeconds: number;
  /** Only with --nats. */
  fleet?: Fleet | null;
}

interface Fleet {
  connected: boolean;
  url: string | null;
  host: string;
  groups: number[];
  reconnects: number;
  published: number;
  dropped: number;
  heldMessages: number;
  jetstream: { stream: string; state: string; error: string | null } | null;
  /** Absent from daemons before it. */
  hostClaim?: { state: string; other: { hostname: string; pid: number } | null };
}

/** Whether this daemon speaks for its host id, and who else claims it (daemon/README.md, "One daemon per host id"). */
function claimText(c: NonNullable<Fleet['hostClaim']>): string {
  const other = c.other === null ? '' : ` (pid ${c.other.pid} on ${c.other.hostname})`;
  if (c.state === 'standing-aside') return `standing aside: another daemon holds it${other}`;
  if (c.state === 'unchecked') return 'unchecked (the server refuses the claim subject)';
  return c.other === null ? c.state : `${c.state}; another daemon claims it too${other}`;
}

/** The fleet's rows: a daemon with --nats says where it stands on the bus. */
function fleetRows(f: Fleet): [string, string][] {
  return [
    [
      'fleet',
      `host ${f.host}, ${f.connected ? `connected to ${f.url ?? '?'}` : 'not connected'}, ${f.reconnects} reconnect${f.reconnects === 1 ? '' : 's'}`,
    ],
    [
      '  publishing',
      f.groups.length === 0
        ? 'none (no --nats-publish)'
        : `groups ${f.groups.join(', ')}: ${f.published} published, ${f.dropped} dropped, ${f.heldMessages} held`,
    ],
    [
      '  jetstream',
      f.jetstream === null
        ? 'off'
        : `stream ${f.jetstream.stream} ${f.jetstream.state}${f.jetstream.error ? `: ${f.jetstream.error}` : ''}`,
    ],
    ...(f.hostClaim ? [['  host id', claimText(f.hostClaim)] as [string, string]] : []),
  ];
}

export function statusRows(s: Status): [string, string][] {
  const joined =
    s.groups.joined.length === 0 ? 'none' : s.groups.joined.map((g) => `${g} (${s.groups.subscribers[String(g)] ?? 0} streams)`).join(', ');
  return [
    ['version', s.version],
    ['protocol', `${s.protocol.name} (${s.protocol.number}), groups up to ${s.protocol.maxGroup}: ${s.protocol.reason}`],
    ['kernel endpoint', s.protocol.kernelEndpoint ? 'yes' : 'no'],
    [
      'module',
      s.module === null
        ? 'not loaded'
        : Object.entries(s.module)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(' '),
    ],
    ['port ids', `tx ${s.portIds.tx}, rx ${s.portIds.rx}`],
    ['groups joined', joined],
    ['clients', `${s.clients.websocket} streams, ${s.clients.unicast} unicast`],
    ['auth', `${s.auth.mode}, token ${s.auth.tokenRequired ? 'required' : 'not required'}`],
    ['uptime', `${s.uptimeSeconds} s`],
    ...(s.fleet ? fleetRows(s.fleet) : []),
    ['counters', ''],
    ...Object.entries(s.counters).map(([k, v]): [string, string] => [`  ${k}`, String(v)]),
  ];
}

export async function status(argv: string[]): Promise<number> {
  const { values, positionals } = parse('status', argv, {});
  if (values.help) {
    process.stdout.write(helpText('status'));
    return EXIT.ok;
  }
  if (positionals.length > 0) throw new CliError(`status takes no argument, got "${positionals[0]}"`, EXIT.usage);
  const body = (await clientFor(values).get('/status')) as Status;
  process.stdout.write(values.json ? JSON.stringify(body) + '\n' : table(statusRows(body)));
  return EXIT.ok;
}

// nlbridge send: POST /send, its per-destination report as text (or --json),
// and an exit status that says whether everything, something or nothing was
// reached.

import * as fs from 'node:fs';
import type { Problem } from './daemon_client';
import { CliError, EXIT } from './exit_status';
import { table } from './format';
import { parseGroupList, parseMask, parseNumber } from './groups';
import { clientFor, parse } from './options';
import { helpText } from './usage';

interface Destination {
  to: string;
  group?: number;
  portId?: number;
  result: string;
  code?: string;
  ack?: { errno: number | null; code: string };
}

interface Report {
  seq: number;
  portId: number;
  type: number;
  flags: number;
  bytes: number;
  ok: boolean;
  results: Destination[];
}

/** A destination's result counts as reached (the daemon's `ok` uses the same rule). */
const REACHED = new Set(['delivered', 'kernel-broadcast', 'no-kernel-endpoint']);

function destinationName(d: Destination): string {
  if (d.to === 'group') return `group ${d.group}`;
  if (d.to === 'port') return `port ${d.portId}`;
  if (d.to === 'relay') return `relay to port ${d.portId}`;
  return 'kernel';
}

function destinationRows(results: Destination[]): [string, string][] {
  return results.map((d) => [`  ${destinationName(d)}`, `${d.result}${d.code ? ` (${d.code})` : ''}${d.ack ? `, ack ${d.ack.code}` : ''}`]);
}

function readData(positionals: string[], hexData: boolean): string {
  if (positionals.length > 1)
    throw new CliError(`one DATA argument at most, got ${positionals.length} (quote text with spaces)`, EXIT.usage);
  let data = positionals[0] ?? '';
  if (data === '-') data = fs.readFileSync(0, 'utf8');
  if (hexData && !/^([0-9a-fA-F]{2})*$/.test(data.trim()))
    throw new CliError('--hex: DATA must be an even number of hex digits', EXIT.usage);
  return hexData ? data.trim() : data;
}

export async function send(argv: string[]): Promise<number> {
  const { values, positionals } = parse('send', argv, {
    groups: { type: 'string', short: 'g' },
    list: { type: 'string', short: 'l' },
    pid: { type: 'string', short: 'i' },
    relay: { type: 'string' },
    hex: { type: 'boolean' },
    type: { type: 'string' },
    ack: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(helpText('send'));
    return EXIT.ok;
  }
  const body: Record<string, unknown> = {};
  if (values.groups !== undefined && values.list !== undefined) throw new CliError('give -g MASK or -l LIST, not both', EXIT.usage);
  if (values.groups !== undefined) body.groups = parseMask(values.groups, '-g');
  if (values.list !== undefined) body.groups = parseGroupList(values.list, '-l');
  if (values.pid !== undefined) body.pid = parseNumber(values.pid, '-i', 0, 0xffffffff);
  if (values.relay !== undefined) body.relay = parseNumber(values.relay, '--relay', 1, 0xffffffff);
  if (body.groups === undefined && body.pid === undefined && body.relay === undefined) {
    throw new CliError('where to? give -g MASK, -l LIST, -i PID or --relay PID (see nlbridge send --help)', EXIT.usage);
  }
  if (values.type !== undefined) body.type = parseNumber(values.type, '--type', 16, 65535);
  if (values.ack) body.ack = true;
  body.data = readData(positionals, values.hex === true);
  if (values.hex) body.encoding = 'hex';

  const client = clientFor(values);
  const answer = await client.request('POST', '/send', body);
  if (values.json) process.stdout.write(JSON.stringify(answer.body) + '\n');
  if (answer.status >= 400) {
    const problem = answer.body as Problem;
    // A problem with results (PORT_UNREACHABLE, PEER_BUSY): nothing was reached; say where it was tried.
    if (!values.json && Array.isArray(problem.results))
      process.stdout.write(table([['nothing reached', ''], ...destinationRows(problem.results as Destination[])]));
    throw client.refusal(problem);
  }
  const report = answer.body as Report;
  const reached = report.results.filter((d) => REACHED.has(d.result)).length;
  if (!values.json) {
    const summary = report.ok ? `all ${report.results.length} reached` : `${reached} of ${report.results.length} reached`;
    process.stdout.write(
      table([
        ['sent', `seq ${report.seq} from port ${report.portId}, type ${report.type}, ${report.bytes} bytes: ${summary}`],
        ...destinationRows(report.results),
      ]),
    );
  }
  return report.ok ? EXIT.ok : reached > 0 ? EXIT.partial : EXIT.refused;
}

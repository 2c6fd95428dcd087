// `npm run bench`: nlbridge against the C ceiling, npm `netlink` and
// websocketd + rr_nlk, in one run on one machine (issue 6). Prints the table
// with ratios; writes JSON, Markdown and an SVG chart.
//
//   node dist/bench/run.js [--smoke] [--only=socket,websocketd,nlbridge,http,latency,fanout,fleet] [--out=DIR] [--cpu-prof]
//
// `http` is POST /send against the bare fastify route alone (also part of `nlbridge`).
//
// BENCH_SMOKE=1 is the same as --smoke (tiny counts, written under
// .cache/bench/smoke/ unless --out says otherwise).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { CACHE_DIR, ROOT } from './lib/proc';
import { groupMembers } from './lib/netlink_groups';
import { FULL, SMOKE } from './lib/profile';
import { addedLatency, figureDefs, machine, markdown, svgChart, targets } from './lib/report';
import type { Figures } from './lib/result';
import { runHttpSend, runNlbridge, runNlbridgeLatency } from './scenarios/nlbridge';
import { buildC, runCeiling, runNodeReceivers, runSocketLatency } from './scenarios/socket_level';
import { runWebsocketd, runWebsocketdLatency } from './scenarios/websocketd';
import { runFanout } from './scenarios/fanout';
import { runFleet } from './scenarios/fleet';

// latency: every latency at 1,000 msg/s back to back (C floor, addon, npm netlink,
// both bridges by both readers), so the ratios between them come from one stretch of time.
// fleet: netlink → nlbridge → NATS against the bare NATS pair, and the WS flood with publishing off and on (issue 18).
const SECTIONS = ['socket', 'websocketd', 'nlbridge', 'http', 'latency', 'fanout', 'fleet'] as const;
type Section = (typeof SECTIONS)[number];

const USAGE = `usage: node dist/bench/run.js [--smoke] [--only=${SECTIONS.join(',')}] [--out=DIR] [--cpu-prof]`;

/** The command line, strictly: an unknown flag or section is refused, never a silent full run. */
function parseCommandLine(): { smoke: boolean; only: Section[] | null; out: string | null; cpuProf: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        smoke: { type: 'boolean', default: false },
        only: { type: 'string' },
        out: { type: 'string' },
        'cpu-prof': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  let only: Section[] | null = null;
  if (values.only !== undefined) {
    only = values.only.split(',') as Section[];
    const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
    if (unknown.length > 0 || only.length === 0) {
      process.stderr.write(`bench: --only: unknown section ${JSON.stringify(unknown.join(','))}\n${USAGE}\n`);
      process.exit(2);
    }
  }
  return { smoke: values.smoke, only, out: values.out ?? null, cpuProf: values['cpu-prof'] };
}

async function main(): Promise<void> {
  const cli = parseCommandLine();
  const smoke = cli.smoke || process.env.BENCH_SMOKE === '1';
  const p = smoke ? SMOKE : FULL;
  const only = cli.only;
  const sections = new Set<Section>(only ?? SECTIONS);
  const outDir = path.resolve(cli.out ?? (smoke ? path.join(CACHE_DIR, 'smoke') : path.join(ROOT, 'bench', 'results')));
  const cpuProf = cli.cpuProf;

  const started = new Date();
  const loadAtStart = os.loadavg()[0];
  const t0 = Date.now();
  const figures: Figures = {};
  buildC();
  // Anything else on the bench group receives every flood too and takes CPU from the run.
  const strangers = groupMembers(2, p.group);
  if (strangers > 0)
    process.stderr.write(
      `bench: WARNING: ${strangers} socket(s) already on NETLINK_USERSOCK group ${p.group}; figures will be low (see /proc/net/netlink)\n`,
    );
  let saturation = NaN;
  if (sections.has('socket')) {
    saturation = await runCeiling(p, figures);
    await runNodeReceivers(p, figures);
  }
  if (sections.has('websocketd')) await runWebsocketd(p, figures);
  const nlbridgeOptions = { cpuProfDir: cpuProf ? path.join(CACHE_DIR, 'prof') : undefined, ceiling: saturation };
  if (sections.has('nlbridge')) await runNlbridge(p, figures, nlbridgeOptions);
  else if (sections.has('http')) await runHttpSend(p, figures, nlbridgeOptions);
  if (sections.has('latency')) {
    await runSocketLatency(p, figures);
    await runWebsocketdLatency(p, figures);
    await runNlbridgeLatency(p, figures, nlbridgeOptions);
  }
  if (sections.has('fanout')) await runFanout(p, figures, nlbridgeOptions);
  if (sections.has('fleet')) await runFleet(p, figures, nlbridgeOptions);
  addedLatency(figures);
  const seconds = (Date.now() - t0) / 1000;
  // Other work on the machine during the run (1-minute load average), to read the figures by.
  const load = { atStart: loadAtStart, atEnd: os.loadavg()[0] };

  const defs = figureDefs([...p.fanoutClients, ...p.websocketdFanoutClients]);
  const largestFanout = Math.max(...p.fanoutClients);
  // Issue 6: ≥ 100,000 deliveries/s to 1,000 clients with no loss (the smoke ramp starts lower).
  const fanoutGoal = p.name === 'full' ? 100_000 : p.fanoutRamp.startDeliveries;
  const tgs = targets(figures, largestFanout, fanoutGoal);
  const m = machine();
  const when = started.toISOString().replace(/\.\d+Z$/, 'Z');
  let table = markdown(figures, defs, tgs, m, when, p.name, load);
  if (strangers > 0) table = `**Warning: ${strangers} other socket(s) listened on the bench group during this run.**\n\n` + table;
  const result = {
    bench: 'nlbridge issue 6',
    profile: p.name,
    sections: [...sections],
    startedAt: started.toISOString(),
    seconds,
    machine: m,
    settings: p,
    groupListenersAtStart: strangers,
    loadAverage: load,
    figures,
    targets: tgs,
  };

  fs.mkdirSync(outDir, { recursive: true });
  const stamp = when.replace(/[:]/g, '').replace(/-/g, '');
  fs.writeFileSync(path.join(outDir, 'latest.json'), JSON.stringify(result, null, 2) + '\n');
  if (p.name === 'full') fs.writeFileSync(path.join(outDir, `${stamp}.json`), JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'latest.md'), table);
  fs.writeFileSync(
    path.join(outDir, 'latest.svg'),
    svgChart(figures, defs, `nlbridge vs C ceiling, npm netlink and websocketd — ${when}, ${m.cpus} × ${m.cpu}`),
  );

  // A full run of every section refreshes the table in the READMEs that carry the markers.
  if (p.name === 'full' && !only && !cli.out) {
    for (const readme of [path.join(ROOT, 'README.md'), path.join(ROOT, 'bench', 'README.md')]) updateReadme(readme, table);
  }

  process.stdout.write('\n' + table);
  process.stdout.write(
    `\nbench: ${seconds.toFixed(1)} s; results in ${path.relative(process.cwd(), outDir) || '.'}/latest.{json,md,svg}\n`,
  );
}

const START = '<!-- bench:latest:start -->';
const END = '<!-- bench:latest:end -->';

/** Replace what sits between the markers, when the file has them. */
function updateReadme(file: string, table: string): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return;
  const chart = path.relative(path.dirname(file), path.join(ROOT, 'bench', 'results', 'latest.svg'));
  const body = `${START}\n${table}\n![nlbridge vs C ceiling, npm netlink and websocketd](${chart})\n${END}`;
  fs.writeFileSync(file, text.slice(0, a) + body + text.slice(b + END.length));
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});

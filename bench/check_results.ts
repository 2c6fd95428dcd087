// Recomputes a bench result file's derived numbers from its raw values:
//   node dist/bench/check_results.js [bench/results/latest.json]
// - every target's inputs are the figures' fields, and its ratio is inputs[0] ÷ inputs[1]
//   (a target of one input measures that input itself);
// - a best-of figure's value is one of its runs;
// - a saturation figure's value is its highest step that a majority of its
//   attempts found clean, and each attempt's verdict follows from its counts;
// - an added latency is its p50 minus the C floor.
// Prints one line per problem and exits 1 if there was any.

import * as fs from 'node:fs';
import * as path from 'node:path';

type Obj = Record<string, unknown>;
const file = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'bench', 'results', 'latest.json'));
const result = JSON.parse(fs.readFileSync(file, 'utf8')) as { figures: Record<string, Record<string, Obj>>; targets: Obj[] };
const problems: string[] = [];
let checked = 0;
const near = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));

for (const t of result.targets) {
  const inputs = t.inputs as { figure: string; system: string; field: string; value: number | null }[] | undefined;
  if (!inputs) continue;
  for (const i of inputs) {
    const m = result.figures[i.figure]?.[i.system];
    const v = m && m.value !== null ? m[i.field] : undefined;
    if ((typeof v === 'number' ? v : null) !== i.value)
      problems.push(
        `target ${String(t.id)}: input ${i.figure}.${i.system}.${i.field} is ${String(v)} in the figures, ${String(i.value)} in the target`,
      );
  }
  if (inputs.length === 2 && inputs[0].value !== null && inputs[1].value !== null && typeof t.measured === 'number') {
    checked++;
    if (!near(inputs[0].value / inputs[1].value, t.measured))
      problems.push(`target ${String(t.id)}: ${inputs[0].value} ÷ ${inputs[1].value} ≠ ${t.measured}`);
  }
  if (inputs.length === 1 && inputs[0].value !== null) {
    checked++;
    if (inputs[0].value !== t.measured)
      problems.push(`target ${String(t.id)}: measured ${String(t.measured)}, its input ${inputs[0].value}`);
  }
}

for (const [figure, systems] of Object.entries(result.figures)) {
  for (const [system, m] of Object.entries(systems)) {
    const name = `${figure}/${system}`;
    if (m.value === null) continue;
    if (Array.isArray(m.runs)) {
      checked++;
      if (!(m.runs as unknown[]).includes(m.value))
        problems.push(`${name}: value ${String(m.value)} is none of its runs ${JSON.stringify(m.runs)}`);
    }
    if (Array.isArray(m.steps)) {
      checked++;
      const s = m.settings as { tries: number };
      const needed = Math.ceil((s.tries + 1) / 2);
      let best = 0;
      for (const st of m.steps as { deliveries: number; rate: number; clean: boolean; attempts: Obj[] }[]) {
        for (const a of st.attempts) {
          const n = (k: string): number => a[k] as number;
          const countsClean = n('sendRate') >= 0.97 * n('rate') && n('min') >= n('sent') && n('max') <= n('sent') && n('disorder') === 0;
          // An attempt may be unclean for what the counts do not show (a client closed, late, drops): never clean against them.
          if (a.clean && !countsClean)
            problems.push(`${name}: attempt at ${st.deliveries}/s marked clean against its counts ${JSON.stringify(a)}`);
        }
        const clean = st.attempts.filter((a) => a.clean).length >= needed;
        if (clean !== st.clean)
          problems.push(
            `${name}: step ${st.deliveries}/s marked ${st.clean} but ${st.attempts.filter((a) => a.clean).length} of ${st.attempts.length} attempts clean`,
          );
        if (clean) best = Math.max(best, st.deliveries);
      }
      if (best !== m.value) problems.push(`${name}: value ${String(m.value)}, highest clean step ${best}`);
    }
    if (figure === 'added_latency_1k') {
      checked++;
      const p50 = result.figures.latency_1k?.[system]?.p50_us as number;
      const floor = result.figures.latency_1k?.c?.p50_us as number;
      if (!near(p50 - floor, m.value as number)) problems.push(`${name}: ${p50} − ${floor} ≠ ${String(m.value)}`);
    }
  }
}

for (const p of problems) process.stdout.write(`${p}\n`);
process.stdout.write(
  `check_results: ${checked} derived numbers checked in ${path.relative(process.cwd(), file)}, ${problems.length} problem(s)\n`,
);
process.exit(problems.length ? 1 : 0);

// Reads a V8 .cpuprofile (node --cpu-prof, as `npm run bench -- --cpu-prof`
// writes for the daemon under .cache/bench/prof/) and prints where the time
// went: self time per function, and inclusive time of the daemon's and the
// addon's own functions.
//
//   node dist/bench/prof_top.js FILE.cpuprofile [TOP] [all]
//
// With `all`, inclusive time lists every function, not only project code.

import * as fs from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function where(cf: CallFrame): string {
  const file = cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/|dist\/)/, '$1');
  return `${cf.functionName || '(anonymous)'} ${file}${file ? `:${cf.lineNumber + 1}` : ''}`;
}

function main(): void {
  const file = process.argv[2];
  const top = Number(process.argv[3] ?? 25);
  if (!file) {
    process.stderr.write('usage: node dist/bench/prof_top.js FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0;
    selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + dt);
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
  let idle = 0;

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)') idle += us;
    const key = where(n.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    // Inclusive: every distinct frame on the stack of this sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = where(byId.get(cur)!.callFrame);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + us);
    }
  }
  const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)} %`;
  process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled, idle ${pct(idle)}\n\nself time:\n`);
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`);
  const all = process.argv[4] === 'all';
  process.stdout.write(`\ninclusive time, ${all ? 'every function' : 'project code (dist/)'}:\n`);
  for (const [k, us] of [...inclusive]
    .filter(([k]) => all || k.includes('dist/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)) {
    process.stdout.write(`${pct(us)}  ${k}\n`);
  }
}

main();

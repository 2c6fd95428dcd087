// Sorts last among the reliability files: gathers what each case recorded in
// this and earlier runs (the newest record per case wins) into REPORT.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, readCases } from './support/report';

test('reliability report: every recorded case passed; REPORT.md written', () => {
  const newest = new Map<string, ReturnType<typeof readCases>[number]>();
  for (const c of readCases()) newest.set(c.name, c);
  const rows = [...newest.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  assert.ok(rows.length > 0, 'no reliability case recorded a result');
  const table = [
    '| case | figure | result | run at |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.figure.replace(/\|/g, '\\|')} | ${r.pass ? 'pass' : 'FAIL'} | ${r.at} |`),
  ].join('\n');
  const report = `# Reliability report\n\nWritten by \`npm run test:reliability\` (part of \`npm test\`).\n\n${table}\n`;
  writeFileSync(path.join(REPO_ROOT, 'tests', 'reliability', 'REPORT.md'), report);
  console.log(table);
  assert.deepEqual(
    rows.filter((r) => !r.pass).map((r) => r.name),
    [],
  );
});

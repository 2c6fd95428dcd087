// Each reliability case records its figure here; report.test.ts (which sorts
// last) turns the records into tests/reliability/REPORT.md and a table.

import { appendFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '../../../..');
const RESULTS = path.join(REPO_ROOT, '.cache', 'reliability', 'results.jsonl');

export interface CaseResult {
  /** Case number and name from the issue, e.g. "1. Codec fuzz". */
  name: string;
  /** What was measured, in words with numbers. */
  figure: string;
  pass: boolean;
}

export function recordCase(result: CaseResult): void {
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  appendFileSync(RESULTS, JSON.stringify({ ...result, at: new Date().toISOString() }) + '\n');
}

export function readCases(): (CaseResult & { at: string })[] {
  if (!existsSync(RESULTS)) return [];
  return readFileSync(RESULTS, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as CaseResult & { at: string });
}

export function resultsPath(): string {
  return RESULTS;
}

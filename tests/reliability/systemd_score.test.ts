// Case 11: systemd's own exposure score for the shipped unit. The same check
// lives in tests/host/systemd_analyze.test.ts; here it is recorded with its figure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, recordCase } from './support/report';
import { skipUnless } from '../support/prerequisites';

const UNIT = path.join(REPO_ROOT, 'systemd', 'nlbridge.service');
const MAX = 1.5;
const NETWORKD = 2.8; // FACTS.md: systemd-networkd, which holds the same capability

test(`case 11: systemd-analyze security --offline=yes systemd/nlbridge.service <= ${MAX}`, { skip: skipUnless('systemd-analyze') }, () => {
  const out = execFileSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_COLORS: '0' },
  });
  const m = /Overall exposure level for nlbridge\.service: ([0-9.]+)/.exec(out);
  assert.ok(m, `no exposure level in:\n${out}`);
  const score = Number(m[1]);
  const open = out.split('\n').filter((l) => l.startsWith('✗')).length;
  recordCase({
    name: '11. systemd-analyze security',
    figure: `exposure ${score} (limit ${MAX}; systemd-networkd ${NETWORKD}), ${open} checks marked ✗`,
    pass: score <= MAX,
  });
  assert.ok(score <= MAX, `exposure ${score} > ${MAX}`);
});

// systemd/nlbridge.service: the exposure score systemd itself computes
// (systemd-analyze security --offline=yes, which needs no systemd as PID 1).
// The unit's shape is checked without systemd in tests/unit/systemd_security.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { skipUnless } from '../support/prerequisites';

const ROOT = path.resolve(__dirname, '../../..');
const UNIT = path.join(ROOT, 'systemd', 'nlbridge.service');
const MAX_EXPOSURE = 1.5;

test(`systemd-analyze security --offline=yes rates nlbridge.service <= ${MAX_EXPOSURE}`, { skip: skipUnless('systemd-analyze') }, () => {
  // systemd-analyze exits non-zero when the score is above --threshold; read
  // the figure ourselves so a failure shows it.
  const out = execFileSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], {
    encoding: 'utf8',
    env: { ...process.env, SYSTEMD_COLORS: '0' },
  });
  const m = /Overall exposure level for nlbridge\.service: ([0-9.]+)/.exec(out);
  assert.ok(m, `no exposure level in:\n${out}`);
  const score = Number(m[1]);
  assert.ok(
    score <= MAX_EXPOSURE,
    `exposure ${score} > ${MAX_EXPOSURE}:\n${out
      .split('\n')
      .filter((l) => l.startsWith('✗'))
      .join('\n')}`,
  );
});

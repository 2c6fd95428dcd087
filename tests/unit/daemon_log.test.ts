// Logging under journald: each pino line carries its syslog priority prefix,
// and only when stdout really is the journal's stream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as fs from 'node:fs';
import { stdoutIsJournal, syslogPriority, withPriorityPrefix } from '../../daemon/log';

test('pino levels map to syslog priorities (fatal crit, error err, warn warning, info, debug)', () => {
  assert.deepEqual([60, 50, 40, 30, 20, 10].map(syslogPriority), [2, 3, 4, 6, 7, 7]);
});

test('a line is prefixed with its priority; a line without a leading level is left alone', () => {
  assert.equal(withPriorityPrefix('{"level":50,"msg":"x"}\n'), '<3>{"level":50,"msg":"x"}\n');
  assert.equal(withPriorityPrefix('{"level":30,"msg":"x"}\n'), '<6>{"level":30,"msg":"x"}\n');
  assert.equal(withPriorityPrefix('{"msg":"x","level":50}\n'), '{"msg":"x","level":50}\n');
});

test('JOURNAL_STREAM counts only when fd 1 is that stream (device:inode)', () => {
  const stat = (dev: number, ino: number) => (): fs.Stats => ({ dev, ino }) as fs.Stats;
  assert.equal(stdoutIsJournal({ JOURNAL_STREAM: '8:1234' }, stat(8, 1234)), true);
  assert.equal(stdoutIsJournal({ JOURNAL_STREAM: '8:1234' }, stat(8, 999)), false, 'stdout redirected elsewhere');
  assert.equal(stdoutIsJournal({}, stat(8, 1234)), false);
  assert.equal(stdoutIsJournal({ JOURNAL_STREAM: 'junk' }, stat(8, 1234)), false);
});

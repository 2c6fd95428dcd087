// daemon/fleet/stream_config.ts: what in an existing JetStream stream's
// configuration is an error (the stream cannot serve nlbridge) or a warning
// (it keeps less or otherwise than the flags ask), each setting named with
// its value. The host test (fleet_jetstream_config) shows the same on a
// real server; this one covers every setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StreamConfig } from '@nats-io/jetstream';
import { judgeStream, subjectCovers } from '../../daemon/fleet/stream_config';

const SUBJECT = 'nlbridge.*.g.*';
const WANT = {
  subjects: [SUBJECT],
  retention: 'limits',
  storage: 'file',
  discard: 'old',
  max_bytes: 1000,
  max_age: 60e9,
  duplicate_window: 10e9,
} as unknown as Partial<StreamConfig>;
/** As the server reports a stream made with WANT: its unset limits at -1. */
const AS_MADE = {
  ...WANT,
  max_msgs: -1,
  max_msgs_per_subject: -1,
  max_consumers: -1,
  max_msg_size: -1,
  sealed: false,
} as Partial<StreamConfig>;
const judge = (over: Record<string, unknown>): { errors: string[]; warnings: string[] } =>
  judgeStream({ ...AS_MADE, ...over } as Partial<StreamConfig>, WANT, SUBJECT, 1024 * 1024);

test('subjectCovers: NATS wildcards, a pattern capturing every subject the other matches', () => {
  for (const p of ['nlbridge.*.g.*', 'nlbridge.>', 'nlbridge.*.>', '>', '*.*.g.*']) assert.ok(subjectCovers(p, SUBJECT), p);
  for (const p of ['nlbridge.A.g.*', 'nlbridge.*.g.2', 'nlbridge.*.g', 'nlbridge.*.g.*.x', 'other.>', 'nlbridge.*.*.*.>'])
    assert.ok(!subjectCovers(p, SUBJECT), p);
  assert.ok(subjectCovers('nlbridge.*.send', 'nlbridge.A.send'));
  assert.ok(!subjectCovers('nlbridge.*', 'nlbridge.>'));
});

test('a stream as nlbridge makes it: nothing to say', () => {
  assert.deepEqual(judge({}), { errors: [], warnings: [] });
  assert.deepEqual(judge({ max_msg_size: 1024 * 1024 }), { errors: [], warnings: [] }, 'max_msg_size at max_payload holds every message');
});

test('errors: a stream that cannot serve nlbridge, each setting named with its value', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ retention: 'workqueue' }, /^retention "workqueue" \(a work queue/],
    [{ retention: 'interest' }, /^retention "interest" \(it keeps a message only while a consumer wants it/],
    [{ sealed: true }, /^sealed/],
    [{ mirror: { name: 'OTHER' } }, /^a mirror of "OTHER"/],
    [{ subjects: ['nlbridge.A.g.*'] }, /^subjects \["nlbridge\.A\.g\.\*"\] \(they do not capture nlbridge\.\*\.g\.\*/],
    [{ max_msg_size: 64 }, /^max_msg_size 64 \(under the server's max_payload 1048576/],
  ];
  for (const [over, re] of cases) {
    const j = judge(over);
    assert.equal(j.errors.length, 1, JSON.stringify(over));
    assert.match(j.errors[0], re);
  }
});

test('warnings: a stream that keeps less or otherwise than the flags ask, each setting with its value and nlbridge’s', () => {
  const j = judge({
    subjects: ['nlbridge.>'],
    storage: 'memory',
    discard: 'new',
    max_bytes: 5,
    max_age: 1e9,
    duplicate_window: 2e9,
    max_msgs: 4,
    max_msgs_per_subject: 1,
    max_consumers: 3,
  });
  assert.deepEqual(j.errors, []);
  assert.deepEqual(
    j.warnings.map((w) => w.split(' (')[0]),
    [
      'subjects ["nlbridge.>"]',
      'storage "memory"',
      'discard "new"',
      'max_bytes 5',
      'max_age 1000000000',
      'duplicate_window 2000000000',
      'max_msgs 4',
      'max_msgs_per_subject 1',
      'max_consumers 3',
    ],
  );
  assert.match(j.warnings[3], /\(flags: 1000\)$/);
});

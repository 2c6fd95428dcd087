// Judging an existing JetStream stream's configuration against what the fleet
// needs (--nats-jetstream on). Pure: jetstream.ts reads the configuration,
// this file says what in it matters.
//
// An existing stream is never rewritten (several daemons share it, and one
// started with other flags must not change everyone's limits), so every
// setting that changes what is kept, or whether a resume works, is told:
// - an error when the stream cannot serve nlbridge at all: it would keep
//   nothing a resume can read (a work queue or interest retention, sealed, a
//   mirror, subjects that miss nlbridge.*.g.*) or refuse a message nlbridge
//   publishes (max_msg_size under the server's max_payload, which is what
//   one message may be);
// - a warning when it keeps less, or otherwise, than the flags ask (each
//   setting named with its value and the one nlbridge would have made).
// Settings that change neither (replicas, placement, deny_delete, …) are not
// compared. An audit found a stream with max_msg_size 64 said "ready" while
// it stored nothing.

import type { StreamConfig } from '@nats-io/jetstream';

/** One judgement: empty lists for a stream as nlbridge would make it. */
export interface StreamJudgement {
  errors: string[];
  warnings: string[];
}

/**
 * Whether every subject `subject` matches is captured by `pattern` (NATS
 * wildcards: `*` one token, `>` the rest).
 */
export function subjectCovers(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return i < s.length;
    if (i >= s.length) return false;
    if (p[i] === '*') {
      if (s[i] === '>') return false;
      continue;
    }
    if (p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

const show = (v: unknown): string => JSON.stringify(v ?? null);

/**
 * Compares the stream's configuration `have` with the one nlbridge makes
 * (`want`), for a server whose max_payload is `maxPayload`.
 */
export function judgeStream(
  have: Partial<StreamConfig>,
  want: Partial<StreamConfig>,
  subject: string,
  maxPayload: number,
): StreamJudgement {
  const errors: string[] = [];
  const warnings: string[] = [];
  if (have.retention !== undefined && have.retention !== want.retention)
    errors.push(
      `retention ${show(have.retention)} (${
        have.retention === 'workqueue'
          ? 'a work queue removes a message once read, and refuses the readers /fleet streams make'
          : 'it keeps a message only while a consumer wants it: nothing is kept for a client that comes back'
      }; nlbridge needs ${show(want.retention)})`,
    );
  if (have.sealed === true) errors.push('sealed (it takes no new message)');
  if (have.mirror) errors.push(`a mirror of ${show(have.mirror.name)} (it takes no published message)`);
  const subjects = have.subjects ?? [];
  if (!subjects.some((p) => subjectCovers(p, subject)))
    errors.push(`subjects ${show(subjects)} (they do not capture ${subject}: nothing published would be kept)`);
  else if (show(subjects) !== show(want.subjects)) warnings.push(`subjects ${show(subjects)} (nlbridge: ${show(want.subjects)})`);
  const maxMsgSize = have.max_msg_size ?? -1;
  if (maxMsgSize > 0 && maxMsgSize < maxPayload)
    errors.push(
      `max_msg_size ${maxMsgSize} (under the server's max_payload ${maxPayload}: a message nlbridge publishes would not be kept)`,
    );
  if (have.storage !== undefined && have.storage !== want.storage)
    warnings.push(`storage ${show(have.storage)} (a server restart loses what it holds; nlbridge: ${show(want.storage)})`);
  if (have.discard !== undefined && have.discard !== want.discard)
    warnings.push(`discard ${show(have.discard)} (a full stream refuses the newest messages; nlbridge: ${show(want.discard)})`);
  for (const key of ['max_bytes', 'max_age', 'duplicate_window'] as const)
    if (show(have[key]) !== show(want[key])) warnings.push(`${key} ${show(have[key])} (flags: ${show(want[key])})`);
  // Limits nlbridge leaves unset (-1): any value keeps less, or serves fewer resumes at once.
  for (const key of ['max_msgs', 'max_msgs_per_subject', 'max_consumers'] as const) {
    const v = have[key] ?? -1;
    if (v > 0) warnings.push(`${key} ${v} (nlbridge: unlimited, -1)`);
  }
  return { errors, warnings };
}

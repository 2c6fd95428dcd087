// cli/completion.bash under bash with bash-completion's helpers, as an
// interactive shell would run it: the client commands, their options, and the
// daemon's options read from `nlbridge --help`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { skipUnless } from '../support/prerequisites';
import { ROOT } from './support/daemon_harness';
import { BIN } from './support/cli_harness';

/** COMPREPLY for the words typed so far (the last one is being completed). */
function complete(words: string[]): string[] {
  // `nlbridge` in PATH, as /usr/bin/nlbridge is once installed.
  const bin = mkdtempSync(path.join(os.tmpdir(), 'nlb-comp-'));
  writeFileSync(path.join(bin, 'nlbridge'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} "$@"\n`);
  chmodSync(path.join(bin, 'nlbridge'), 0o755);
  const script = [
    'source /usr/share/bash-completion/bash_completion',
    `source ${JSON.stringify(path.join(ROOT, 'cli/completion.bash'))}`,
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})`,
    'COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}',
    'complete -p nlbridge >/dev/null && _nlbridge && printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test("bash completion: commands, their options, the daemon's options from its --help", { skip: skipUnless('bash-completion') }, () => {
  assert.deepEqual(complete(['nlbridge', '']), ['send', 'status', 'watch']);
  assert.deepEqual(complete(['nlbridge', 'w']), ['watch']);
  assert.deepEqual(complete(['nlbridge', 'send', '--a']), ['--ack']);
  assert.deepEqual(complete(['nlbridge', 'watch', '--s']), ['--since']);
  assert.deepEqual(complete(['nlbridge', 'status', '--j']), ['--json']);
  assert.deepEqual(complete(['nlbridge', '--unix-socket-']), ['--unix-socket-group', '--unix-socket-mode']);
  assert.deepEqual(complete(['nlbridge', 'send', '-g', '']), [], 'a mask is not completed');
});

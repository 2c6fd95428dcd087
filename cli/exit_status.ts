// The client's exit statuses, in one table: `nlbridge COMMAND --help` prints
// it, man_page.ts renders it into nlbridge(8), and the tests hold each
// command to it.

export const EXIT = {
  ok: 0,
  refused: 1,
  usage: 2,
  unreachable: 3,
  partial: 4,
} as const;

export const CLI_EXIT_STATUS = [
  {
    code: EXIT.ok,
    meaning: 'done: every destination reached (send), the status printed, the stream ended as asked (watch --count, Ctrl-C)',
  },
  {
    code: EXIT.refused,
    meaning: 'the daemon answered with a problem, which is printed (send: nothing was reached; a token refused; a group it refuses)',
  },
  { code: EXIT.usage, meaning: 'bad usage: an unknown option, a bad mask, group list or number, an unreadable token file' },
  { code: EXIT.unreachable, meaning: 'the daemon cannot be reached (not running, wrong --url, the socket not accessible)' },
  { code: EXIT.partial, meaning: 'send: some destinations were reached, not all (the report says which)' },
] as const;

/** A failure the command reports in one line (no stack) and exits with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

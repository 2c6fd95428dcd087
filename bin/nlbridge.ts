#!/usr/bin/env node
// The `nlbridge` command (package.json "bin", /usr/bin/nlbridge): the daemon
// by default, a client of a running daemon for `send`, `watch` and `status`.
// Each side is required only when it runs: the client starts without the
// daemon's fastify, pino and native addon, and the daemon loads none of the
// client. The list is written out here, not imported from cli/, for the same
// reason.

const CLIENT_COMMANDS = ['send', 'watch', 'status'];

const command = process.argv[2];
if (command !== undefined && CLIENT_COMMANDS.includes(command)) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('../cli/main') as typeof import('../cli/main')).main(command, process.argv.slice(3));
} else {
  if (command === '--help' || command === '-h') {
    process.stdout.write('usage: nlbridge send|watch|status [options]   a client of a running daemon (nlbridge COMMAND --help)\n\n');
  }
  // The daemon reads process.argv itself and runs as it is loaded.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../daemon/main');
}

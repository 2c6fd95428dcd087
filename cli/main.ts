// The client side of the `nlbridge` command: send, watch, status. It talks to
// a running daemon only through its public HTTP and WebSocket API
// (openapi.yaml, asyncapi.yaml) and loads none of the daemon's modules.

import { CliError, EXIT } from './exit_status';
import { send } from './send';
import { status } from './status';
import { watch } from './watch';

export const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { send, watch, status };

/** Runs `nlbridge COMMAND ARGS…`; a CliError becomes one line on stderr and its exit status. */
export async function runClient(command: string, argv: string[]): Promise<number> {
  try {
    return await CLIENT_COMMANDS[command](argv);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`nlbridge ${command}: ${err.message}\n`);
      return err.exitCode;
    }
    throw err;
  }
}

export function main(command: string, argv: string[]): void {
  runClient(command, argv).then(
    (code) => {
      process.exitCode = code;
      // A finished command leaves nothing behind that should keep it alive (a kept-alive HTTP socket).
      process.stdout.write('', () => process.exit(code));
    },
    (err: unknown) => {
      process.stderr.write(`nlbridge ${command}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(EXIT.refused);
    },
  );
}

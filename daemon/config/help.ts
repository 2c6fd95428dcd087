// --help, from the option table (schema.ts): each option's help text with
// its default, its variable and its file key. The man page (man_page.ts)
// renders the same table.

import { DEFAULT_CONFIG_FILE, OPTIONS } from './schema';

/** The daemon's exit statuses (help text, man page). */
export const EXIT_STATUS = [
  { code: 0, meaning: 'stopped by SIGTERM/SIGINT, or --help/--version' },
  { code: 1, meaning: 'a runtime failure (cannot open netlink, cannot listen, shutdown too slow)' },
  { code: 2, meaning: 'invalid settings, or the configured protocol is not available (not retried by the unit)' },
] as const;

export function helpText(): string {
  const lines = [
    'usage: nlbridge [options]',
    '',
    'A bridge between raw netlink and HTTP/WebSocket.',
    'Precedence: flags > NLBRIDGE_* environment > config file (--config FILE or NLBRIDGE_CONFIG,',
    `else ${DEFAULT_CONFIG_FILE} when it exists; JSON with the camelCase keys below) > defaults.`,
    '',
    '  --config FILE                 JSON config file                                   [NLBRIDGE_CONFIG]',
  ];
  for (const o of OPTIONS) {
    // A flag too long for the column: its text on the next line, not run into VALUE.
    const left = `  ${o.flag} VALUE`;
    if (left.length >= 32) lines.push(left, `${''.padEnd(32)}${o.help}`);
    else lines.push(`${left.padEnd(32)}${o.help}`);
    lines.push(`${''.padEnd(32)}env ${o.env}, file key "${o.key}"`);
  }
  lines.push('  --help, -h                    this text');
  lines.push('  --version, -V                 the version');
  lines.push('');
  lines.push('Scoped tokens: config file only, file key "tokens": a list of {"name", "token" | "tokenFile" |');
  lines.push('"credential" (a systemd credential name), "read", "sendGroups", "sendPorts" ("*" or a list; left out');
  lines.push('= no limit), "sendTypes" ("*" or a list of nlmsg_type values; default [16], DATA only),');
  lines.push('"kernel" (RELAY, BCAST and port 0; default true)}. Scoped tokens may not read /status, /metrics or');
  lines.push('/kernel/stats (they describe the whole daemon): those need the main token or the unix socket.');
  lines.push('');
  lines.push('NATS send scope: config file only, file key "natsSendScope": {"sendGroups", "sendPorts", "sendTypes",');
  lines.push('"kernel"}, read as a scoped token\'s (same defaults), limits what requests on nlbridge.<host>.send');
  lines.push('(--nats-send on) may send. Without it every NATS send is refused (403 PERMISSION_DENIED).');
  lines.push('');
  lines.push('Systemd: LISTEN_FDS (socket activation), NOTIFY_SOCKET, WATCHDOG_USEC, CREDENTIALS_DIRECTORY,');
  lines.push('RUNTIME_DIRECTORY are honoured.');
  lines.push('');
  lines.push(`Exit status: ${EXIT_STATUS.map((e) => `${e.code} ${e.meaning}`).join('; ')}.`);
  return lines.join('\n') + '\n';
}

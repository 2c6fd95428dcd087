// nlbridge(8), rendered from the one option table (config/schema.ts) so the man page
// cannot drift from --help: `npm run man` writes man/nlbridge.8, and a unit
// test holds the committed file to this rendering.

import { EXIT_STATUS } from './config/help';
import { DEFAULT_CONFIG_FILE, OPTIONS } from './config/schema';
// The client commands' own table (pure text; the daemon does not load it to run).
import { manSection as clientManSection } from '../cli/usage';

/** roff-escapes text: backslashes, and a leading dot or quote. */
const roff = (text: string): string =>
  text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/, '\\&$1');

export function manPage(version: string): string {
  const out = [
    `.TH NLBRIDGE 8 "" "nlbridge ${version}" "System Administration"`,
    '.SH NAME',
    'nlbridge \\- a bridge between raw Linux netlink and HTTP/WebSocket',
    '.SH SYNOPSIS',
    '.B nlbridge',
    '[\\fIOPTION\\fR]...',
    '.br',
    '.B nlbridge',
    '.BR send " | " watch " | " status',
    '[\\fIOPTION\\fR]...',
    '.SH DESCRIPTION',
    roff(
      "nlbridge puts netlink multicast groups behind HTTP, WebSocket and Server-Sent Events: POST /send puts a message on groups or sends it to a port; GET /groups/MASK (WebSocket or .../events) streams what arrives. It uses the dummy_netlink module's protocol when the module is loaded, else NETLINK_USERSOCK. The API is described by /openapi.yaml and /asyncapi.yaml, served by the daemon.",
    ),
    '.SH OPTIONS',
    roff(
      `Precedence: flags, then NLBRIDGE_* environment variables, then the JSON config file (--config FILE or NLBRIDGE_CONFIG, else ${DEFAULT_CONFIG_FILE} when it exists), then defaults.`,
    ),
    '.TP',
    '.BI \\-\\-config " FILE"',
    'JSON config file (camelCase keys as below; also "tokens", the scoped tokens). Env NLBRIDGE_CONFIG.',
  ];
  for (const o of OPTIONS) {
    out.push('.TP', `.BI ${roff(o.flag)} " VALUE"`, `${roff(o.help)}. Env ${o.env}, file key "${o.key}".`);
  }
  out.push('.TP', '.BR \\-\\-help ", " \\-h', 'Print the options and exit.');
  out.push('.TP', '.BR \\-\\-version ", " \\-V', 'Print the version and exit.');
  out.push('.SH EXIT STATUS');
  for (const e of EXIT_STATUS) out.push('.TP', `.B ${e.code}`, roff(e.meaning));
  out.push(...clientManSection());
  out.push(
    '.SH FILES',
    '.TP',
    `.I ${DEFAULT_CONFIG_FILE}`,
    'The config file.',
    '.TP',
    '.I $RUNTIME_DIRECTORY/token',
    roff('The generated bearer token (mode 0600) under systemd; .cache/nlbridge/token under the working directory otherwise.'),
    '.SH SEE ALSO',
    '.BR systemctl (1),',
    '.BR journalctl (1),',
    '.BR netlink (7)',
    '',
  );
  return out.join('\n');
}

if (require.main === module) process.stdout.write(manPage(process.argv[2] ?? '0.0.0'));

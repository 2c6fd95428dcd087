// What each client command takes and does, in one table: `nlbridge COMMAND
// --help` prints it, and daemon/man_page.ts renders it into nlbridge(8), so the
// two cannot drift apart.

import { CLI_EXIT_STATUS } from './exit_status';

export interface CommandDoc {
  name: 'send' | 'watch' | 'status';
  usage: string;
  about: string;
  /** [flag as typed, what it does] */
  flags: [string, string][];
}

export const COMMON_FLAGS: [string, string][] = [
  [
    '--url URL',
    'the daemon: http://HOST:PORT or unix:PATH [NLBRIDGE_URL]; default the unix socket .cache/nlbridge/nlbridge.sock (under the working directory) or /run/nlbridge/nlbridge.sock when one exists, else http://127.0.0.1:8080',
  ],
  [
    '--token-file FILE',
    'the bearer token for TCP [NLBRIDGE_TOKEN_FILE]; default the first readable of .cache/nlbridge/token (under the working directory), /etc/credstore/nlbridge.token, /run/nlbridge/token. Never the token itself on the command line: ps shows argv to every user',
  ],
  ['--json', "print the daemon's JSON instead of text, for scripts"],
  ['-h, --help', 'this text'],
];

export const COMMANDS: CommandDoc[] = [
  {
    name: 'send',
    usage: 'nlbridge send [-g MASK | -l LIST] [-i PID] [--relay PID] [OPTION]... [DATA | -]',
    about:
      'Sends one netlink message through a running daemon (POST /send) and prints what happened at each destination. DATA is UTF-8 text (empty when left out), hex with --hex; "-" reads it from stdin.',
    flags: [
      ['-g, --groups MASK', 'to the groups of a mask, as rr_nlk -g: 10 = groups 2 and 4 (0x…, 0b… too)'],
      ['-l, --list LIST', 'to the groups of a comma list: 2,40'],
      ['-i, --pid PID', 'to the port id PID (0 = the kernel)'],
      ['--relay PID', 'ask dummy_netlink to deliver it to the port id PID'],
      ['--hex', 'DATA is hex (00ff…)'],
      ['--type N', 'nlmsg_type, 16..65535 (default 16, DATA)'],
      ['--ack', 'ask the kernel to acknowledge, and wait for it'],
    ],
  },
  {
    name: 'watch',
    usage: 'nlbridge watch [MASK | -l LIST] [OPTION]...',
    about:
      'Prints what arrives on netlink groups, one line per message: arrival time, group, sender port, and the payload as text (UTF-8 without control characters) or hex. A dropped connection is resumed after the last message printed (?since=CURSOR); what was lost meanwhile, or that nothing was, goes to stderr. Runs until Ctrl-C.',
    flags: [
      ['MASK', 'the groups of a mask, as rr_nlk -g: 10 = groups 2 and 4 (0x…, 0b… too)'],
      ['-l, --list LIST', 'the groups of a comma list: 2,40'],
      ['--hex', 'every payload as hex'],
      ['--since CURSOR', 'start after this cursor (a message\'s "cursor" in --json output)'],
      ['-n, --count N', 'exit 0 after N messages'],
      ['--json', 'print each frame as the daemon sent it (hello, message, gap, dropped, …), one per line'],
    ],
  },
  {
    name: 'status',
    usage: 'nlbridge status [OPTION]...',
    about:
      "Prints a running daemon's GET /status as a table: protocol and why, the module's parameters, port ids, joined groups and their streams, clients, whether a token is required, counters.",
    flags: [],
  },
];

/** Words wrapped to `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

export function helpText(name: CommandDoc['name']): string {
  const doc = COMMANDS.find((c) => c.name === name)!;
  const flags = [...doc.flags, ...COMMON_FLAGS.filter(([f]) => !doc.flags.some(([g]) => g === f))];
  const out = [`usage: ${doc.usage}`, '', ...wrap(doc.about, 100), ''];
  for (const [flag, help] of flags) {
    wrap(help, 76).forEach((l, i) => out.push(`${i === 0 ? `  ${flag}`.padEnd(24) : ''.padEnd(24)}${l}`));
  }
  out.push('', ...wrap(`Exit status: ${CLI_EXIT_STATUS.map((e) => `${e.code} ${e.meaning}`).join('; ')}.`, 100), '');
  return out.join('\n');
}

/** roff-escapes text: backslashes, dashes, and a leading dot or quote. */
const roff = (text: string): string =>
  text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .replace(/^([.'])/, '\\&$1');

/** The CLIENT COMMANDS and CLIENT EXIT STATUS sections of nlbridge(8). */
export function manSection(): string[] {
  const out = [
    '.SH CLIENT COMMANDS',
    roff(
      'Beside the daemon (the default action), nlbridge is a client of a running daemon. It talks only to its HTTP and WebSocket API, over the unix socket when one exists, else TCP, with the token read from a file.',
    ),
  ];
  for (const doc of COMMANDS) {
    out.push('.SS ' + roff(doc.usage), roff(doc.about));
    for (const [flag, help] of [...doc.flags, ...COMMON_FLAGS.filter(([f]) => f !== '-h, --help' && !doc.flags.some(([g]) => g === f))])
      out.push('.TP', `.B ${roff(flag)}`, roff(help));
  }
  out.push('.SH CLIENT EXIT STATUS');
  for (const e of CLI_EXIT_STATUS) out.push('.TP', `.B ${e.code}`, roff(e.meaning));
  return out;
}

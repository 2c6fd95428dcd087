// Text for people: a two-column table, payloads as text or hex on one line.

/** Rows of `key  value`, keys padded to one width; a value with newlines continues under itself. */
export function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v.split('\n').join('\n' + ' '.repeat(width + 2))}`.trimEnd()).join('\n') + '\n';
}

/** Bytes as lowercase hex. */
export function hex(bytes: Buffer): string {
  return bytes.toString('hex');
}

// C0 and C1 controls, DEL, and the line and paragraph separators: anything that
// would break the one-line-per-message output or move the terminal's cursor.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A message frame's payload for one line: `text PAYLOAD` when it is UTF-8
 * with nothing a terminal would act on, else `hex PAYLOAD` (always with
 * `forceHex`).
 */
export function payload(data: string, encoding: string, forceHex: boolean): string {
  const bytes = encoding === 'base64' ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8');
  if (!forceHex && encoding === 'utf8' && !UNPRINTABLE.test(data)) return `text ${data}`;
  return `hex  ${hex(bytes)}`;
}

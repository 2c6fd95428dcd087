// Group arguments as the daemon's routes take them: a mask (what rr_nlk -g
// and /groups/{mask} take: 10 = groups 2 and 4; 0x…, 0b…, decimal of any
// width) or a list of group numbers. Only the form is checked here; the
// daemon's validation (openapi.yaml) decides the rest, and its problem is
// printed as it is.

import { CliError, EXIT } from './exit_status';

const MASK_RE = /^(0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)$/;
/** The highest group the daemon's schema accepts in a list. */
const MAX_GROUP = 1024;

export function parseMask(text: string, what: string): string {
  if (!MASK_RE.test(text))
    throw new CliError(
      `${what}: "${text}" is not a group mask (decimal, 0x… or 0b…: 10 = groups 2 and 4; for group numbers use --list 2,4)`,
      EXIT.usage,
    );
  if (/^(0[xX]0+|0[bB]0+|0+)$/.test(text)) throw new CliError(`${what}: mask ${text} names no group`, EXIT.usage);
  return text;
}

export function parseGroupList(text: string, what: string): number[] {
  const groups = text.split(',').map((s) => s.trim());
  for (const g of groups) {
    if (!/^[0-9]+$/.test(g) || Number(g) < 1 || Number(g) > MAX_GROUP) {
      throw new CliError(`${what}: "${g}" is not a group number (1..${MAX_GROUP}); give a comma list such as 2,40`, EXIT.usage);
    }
  }
  return groups.map(Number);
}

/** A non-negative integer option up to `max`. */
export function parseNumber(text: string, what: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new CliError(`${what}: "${text}" is not a number in ${min}..${max}`, EXIT.usage);
  }
  return Number(text);
}

// Group masks and lists as users write them. Pure functions: the REST body,
// the WebSocket path and the query string all go through here, once, at the
// edge; what they return is a GroupList the rest of the bridge trusts.

/** Highest group number a netlink unit can offer (dummy_netlink's ngroups cap). */
export const GROUP_MAX = 1024;

/** Groups a 32-bit sockaddr_nl.nl_groups mask can name. */
export const MASK_GROUPS = 32;

export class GroupSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GroupSpecError';
  }
}

declare const checked: unique symbol;

/**
 * Group numbers in 1..GROUP_MAX, ascending, each once: what the parsers
 * below return, and the only form in which groups reach the bus. Whether a
 * protocol has that many groups is the bus's question (GROUP_RANGE).
 */
export type GroupList = readonly number[] & { readonly [checked]: true };

const MASK_TEXT = /^(?:0[xX][0-9a-fA-F]+|0[bB][01]+|[0-9]+)$/;

/**
 * Parses a mask written as decimal, 0x… or 0b… (bit 0 = group 1). Masks may
 * be wider than 32 bits (a BigInt), up to group GROUP_MAX.
 */
export function parseMaskText(text: string): GroupList {
  if (typeof text !== 'string' || !MASK_TEXT.test(text)) {
    throw new GroupSpecError(`"${String(text).slice(0, 40)}" is not a group mask (decimal, 0x… or 0b…)`);
  }
  const lower = text.toLowerCase();
  // BigInt('0b…') and BigInt('0x…') parse the prefixes; a leading-zero decimal is still decimal.
  const mask = lower.startsWith('0x') || lower.startsWith('0b') ? BigInt(lower) : BigInt(lower.replace(/^0+(?=\d)/, ''));
  return groupsOfMask(mask);
}

/** Group numbers of a mask (bit i = group i+1), ascending. */
export function groupsOfMask(mask: bigint | number): GroupList {
  // A 32-bit mask (every POST /send by mask) without BigInt arithmetic, which
  // allocated per bit (bench/, issue 6).
  if (typeof mask === 'number' && Number.isInteger(mask) && mask > 0 && mask <= 0xffffffff) {
    const out: number[] = [];
    for (let g = 1; g <= 32; g++) if ((mask >>> (g - 1)) & 1) out.push(g);
    return out as unknown as GroupList;
  }
  let m = typeof mask === 'bigint' ? mask : BigInt(mask);
  if (m < 0n) throw new GroupSpecError('a group mask cannot be negative');
  if (m === 0n) throw new GroupSpecError('the mask selects no group');
  if (m >> BigInt(GROUP_MAX) !== 0n) throw new GroupSpecError(`the mask names a group above ${GROUP_MAX}`);
  const out: number[] = [];
  for (let g = 1; m !== 0n; g++, m >>= 1n) if (m & 1n) out.push(g);
  return out as unknown as GroupList;
}

/** Parses "2,40" (also with spaces) into sorted unique group numbers. */
export function parseGroupList(text: string): GroupList {
  if (typeof text !== 'string' || text.trim() === '') throw new GroupSpecError('the group list is empty');
  const out = new Set<number>();
  for (const part of text.split(',')) {
    const t = part.trim();
    if (!/^[0-9]+$/.test(t)) throw new GroupSpecError(`"${t.slice(0, 20)}" is not a group number`);
    out.add(checkGroup(Number(t)));
  }
  return sorted(out);
}

/** A list of group numbers (any order, repeats allowed) as a GroupList; throws GroupSpecError. */
export function toGroupList(groups: Iterable<number>): GroupList {
  const out = new Set<number>();
  for (const g of groups) out.add(checkGroup(g));
  if (out.size === 0) throw new GroupSpecError('the group list is empty');
  return sorted(out);
}

function sorted(groups: Set<number>): GroupList {
  return [...groups].sort((a, b) => a - b) as unknown as GroupList;
}

export function checkGroup(g: number): number {
  if (!Number.isInteger(g) || g < 1 || g > GROUP_MAX) {
    throw new GroupSpecError(`group ${g} is outside 1..${GROUP_MAX}`);
  }
  return g;
}

/**
 * The `groups` field of a send request: a mask as a number (32-bit) or text,
 * or an explicit list of group numbers.
 */
export function parseGroupsField(value: unknown): GroupList {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new GroupSpecError('a numeric mask must be an integer in 0..4294967295 (use a string or a list for groups above 32)');
    }
    return groupsOfMask(value);
  }
  if (typeof value === 'string') return parseMaskText(value);
  if (Array.isArray(value)) {
    if (value.length === 0) throw new GroupSpecError('the group list is empty');
    const out = new Set<number>();
    for (const g of value) {
      if (typeof g !== 'number') throw new GroupSpecError('a group list holds group numbers');
      out.add(checkGroup(g));
    }
    return sorted(out);
  }
  throw new GroupSpecError('groups must be a mask (number, "0b1010", "0xa") or a list of group numbers');
}

/** The 32-bit nl_groups bit of a group 1..32. */
export function groupBit(group: number): number {
  return (1 << (group - 1)) >>> 0;
}

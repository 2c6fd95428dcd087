// The config file's "tokens" entries, checked before any secret is read.
// Lives with the config (it is part of reading the file) rather than with
// the scopes, so reading the config imports nothing of the bus or HTTP.

/** Groups, ports or types a scope allows: "*" or a list. */
export type Allow = '*' | readonly number[];

/** A "tokens" entry of the config file, before its secret is read. */
export interface ScopedTokenSpec {
  name: string;
  token?: string;
  tokenFile?: string;
  credential?: string;
  read?: Allow;
  sendGroups?: Allow;
  sendPorts?: Allow;
  sendTypes?: Allow;
  kernel?: boolean;
}

/**
 * The config file's "natsSendScope": what a send arriving over NATS
 * (--nats-send on) may do, checked by the same code as a scoped token's
 * sends. Its keys mean what they mean in a "tokens" entry, with the same
 * defaults (a limit left out is no limit; types: DATA only). With no
 * "natsSendScope" at all, NATS sends may do nothing (see natsSendScopeOf).
 */
export interface SendLimitsSpec {
  sendGroups?: Allow;
  sendPorts?: Allow;
  sendTypes?: Allow;
  kernel?: boolean;
}

export class ScopeConfigError extends Error {}

const SEND_KEYS = ['sendGroups', 'sendPorts', 'sendTypes', 'kernel'];
const KEYS = new Set(['name', 'token', 'tokenFile', 'credential', 'read', ...SEND_KEYS]);

function allow(raw: unknown, where: string, max: number): Allow | undefined {
  if (raw === undefined) return undefined;
  if (raw === '*') return '*';
  if (Array.isArray(raw) && raw.every((n) => Number.isInteger(n) && n >= 0 && n <= max)) return [...(raw as number[])];
  throw new ScopeConfigError(`${where}: must be "*" or a list of integers 0..${max}, got ${JSON.stringify(raw)}`);
}

/** Validates the config file's "tokens" value (secrets are not echoed in errors). */
export function parseTokenSpecs(raw: unknown): ScopedTokenSpec[] {
  if (!Array.isArray(raw))
    throw new ScopeConfigError('tokens: must be a list of {name, token|tokenFile|credential, read, sendGroups, sendPorts, kernel}');
  const names = new Set<string>();
  return raw.map((e: unknown, i) => {
    const where = `tokens[${i}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) throw new ScopeConfigError(`${where}: must be an object`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!KEYS.has(k)) throw new ScopeConfigError(`${where}.${k}: unknown key`);
    if (typeof o.name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(o.name))
      throw new ScopeConfigError(`${where}.name: must be 1..64 of A-Z a-z 0-9 _ . -`);
    if (names.has(o.name)) throw new ScopeConfigError(`${where}.name: "${o.name}" is used twice`);
    names.add(o.name);
    const sources = ['token', 'tokenFile', 'credential'].filter((k) => o[k] !== undefined);
    if (sources.length !== 1) throw new ScopeConfigError(`${where}: give exactly one of token, tokenFile, credential`);
    for (const k of sources)
      if (typeof o[k] !== 'string' || o[k] === '') throw new ScopeConfigError(`${where}.${k}: must be a non-empty string`);
    if (o.credential !== undefined && !/^[A-Za-z0-9_.-]+$/.test(o.credential as string))
      throw new ScopeConfigError(`${where}.credential: must be a credential name`);
    const spec: ScopedTokenSpec = { name: o.name, ...sendLimits(o, where) };
    if (o.token !== undefined) spec.token = o.token as string;
    if (o.tokenFile !== undefined) spec.tokenFile = o.tokenFile as string;
    if (o.credential !== undefined) spec.credential = o.credential as string;
    const read = allow(o.read, `${where}.read`, 1 << 20);
    if (read !== undefined) spec.read = read;
    return spec;
  });
}

/** The send limits of a "tokens" entry or of "natsSendScope", checked one way for both. */
function sendLimits(o: Record<string, unknown>, where: string): SendLimitsSpec {
  if (o.kernel !== undefined && typeof o.kernel !== 'boolean') throw new ScopeConfigError(`${where}.kernel: must be true or false`);
  const spec: SendLimitsSpec = {};
  const sendGroups = allow(o.sendGroups, `${where}.sendGroups`, 1 << 20);
  const sendPorts = allow(o.sendPorts, `${where}.sendPorts`, 0xffffffff);
  const sendTypes = allow(o.sendTypes, `${where}.sendTypes`, 0xffff);
  if (sendGroups !== undefined) spec.sendGroups = sendGroups;
  if (sendPorts !== undefined) spec.sendPorts = sendPorts;
  if (sendTypes !== undefined) spec.sendTypes = sendTypes;
  if (o.kernel !== undefined) spec.kernel = o.kernel as boolean;
  return spec;
}

/** Validates the config file's "natsSendScope" value (the send keys of a "tokens" entry, nothing else). */
export function parseSendLimitsSpec(raw: unknown): SendLimitsSpec {
  const where = 'natsSendScope';
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw new ScopeConfigError(`${where}: must be an object {sendGroups, sendPorts, sendTypes, kernel}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!SEND_KEYS.includes(k)) throw new ScopeConfigError(`${where}.${k}: unknown key (it takes ${SEND_KEYS.join(', ')})`);
  return sendLimits(o, where);
}

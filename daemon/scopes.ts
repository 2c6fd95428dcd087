// Scoped tokens: a token may be limited to the groups it can read, the groups
// and port ids it can send to, the message types it may send, and whether it
// may use the kernel's RELAY and BCAST. A limit left out is no limit (but
// for types: DATA only, see below); an empty list allows nothing.
//
// Configured in the config file ("tokens": [...]), each with its secret
// inline ("token"), in a file ("tokenFile"), or as a systemd credential
// ("credential": NAME → $CREDENTIALS_DIRECTORY/NAME). Secrets are never
// logged: only the names are.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { DnlMsgType } from '../addon/dummy_netlink';
import { Problem } from './errors';
import { MASK_GROUPS } from './netlink/groups';
import type { SendRequest } from './netlink/send_plan';
import { tokenMatches } from './http/request_checks';
import { ScopeConfigError, type Allow, type ScopedTokenSpec, type SendLimitsSpec } from './config/tokens';
// Re-exported for the modules and tests that read them from here.
export { ScopeConfigError, parseTokenSpecs, type Allow, type ScopedTokenSpec } from './config/tokens';

export interface Scope {
  /** A name for logs and problems (never the secret). */
  name: string;
  read: Allow;
  sendGroups: Allow;
  sendPorts: Allow;
  /**
   * nlmsg_type values it may send. DATA only unless configured: the kernel
   * module acts on a message by its type, so a group copy typed RELAY or
   * BCAST would reach ports and groups outside sendPorts and sendGroups.
   */
  sendTypes: Allow;
  /** RELAY, BCAST (groups above 32) and unicast to port 0. */
  kernel: boolean;
  /** Who the scope belongs to, in a problem's detail (default: token "<name>"). */
  label?: string;
}

export interface ScopedToken {
  token: string;
  scope: Scope;
}

/** Reads each spec's secret (file or systemd credential). Throws ScopeConfigError naming the token, never its secret. */
export function resolveTokens(specs: readonly ScopedTokenSpec[], env: NodeJS.ProcessEnv): ScopedToken[] {
  return specs.map((s) => {
    let secret: string;
    if (s.token !== undefined) secret = s.token;
    else {
      let file: string;
      if (s.tokenFile !== undefined) file = s.tokenFile;
      else {
        if (!env.CREDENTIALS_DIRECTORY)
          throw new ScopeConfigError(
            `tokens "${s.name}": credential ${s.credential} needs $CREDENTIALS_DIRECTORY (systemd LoadCredential=)`,
          );
        file = path.join(env.CREDENTIALS_DIRECTORY, s.credential!);
      }
      try {
        secret = fs.readFileSync(file, 'utf8').trim();
      } catch (err) {
        throw new ScopeConfigError(`tokens "${s.name}": cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
          cause: err,
        });
      }
    }
    if (!/^[\x21-\x7e]{16,}$/.test(secret))
      throw new ScopeConfigError(`tokens "${s.name}": the token must be at least 16 printable ASCII characters without spaces`);
    return {
      token: secret,
      scope: {
        name: s.name,
        read: s.read ?? '*',
        sendGroups: s.sendGroups ?? '*',
        sendPorts: s.sendPorts ?? '*',
        sendTypes: s.sendTypes ?? [DnlMsgType.DATA],
        kernel: s.kernel ?? true,
      },
    };
  });
}

/**
 * The scope of sends arriving over NATS (--nats-send on): the config file's
 * "natsSendScope", read with a token's defaults (a limit left out is no
 * limit; types: DATA only). Without one, nothing: whoever may publish on the
 * send subject is not trusted with the daemon's privileges by default.
 */
export function natsSendScopeOf(spec: SendLimitsSpec | null): Scope {
  if (spec === null)
    return {
      name: 'nats',
      label: 'NATS sends (no "natsSendScope" in the config file)',
      read: [],
      sendGroups: [],
      sendPorts: [],
      // Every destination is refused by the lists above; DATA here makes the refusal name the destination, not the type.
      sendTypes: [DnlMsgType.DATA],
      kernel: false,
    };
  return {
    name: 'nats',
    label: 'NATS sends ("natsSendScope")',
    read: [],
    sendGroups: spec.sendGroups ?? '*',
    sendPorts: spec.sendPorts ?? '*',
    sendTypes: spec.sendTypes ?? [DnlMsgType.DATA],
    kernel: spec.kernel ?? true,
  };
}

export const FULL_SCOPE: Scope = { name: 'main', read: '*', sendGroups: '*', sendPorts: '*', sendTypes: '*', kernel: true };

/**
 * The scope of a presented token: the main token is unlimited. Every
 * candidate is compared (constant time each, no early exit), so the time
 * does not tell which one matched or how far a guess got.
 */
export function scopeOf(given: string, main: string | null, scoped: readonly ScopedToken[]): Scope | null {
  let found: Scope | null = null;
  if (main !== null && tokenMatches(given, main)) found = FULL_SCOPE;
  for (const t of scoped) {
    if (tokenMatches(given, t.token) && found === null) found = t.scope;
  }
  return found;
}

const allows = (a: Allow, n: number): boolean => a === '*' || a.includes(n);
const list = (a: Allow): string => (a === '*' ? 'all' : a.length === 0 ? 'none' : a.join(','));
const who = (scope: Scope): string => scope.label ?? `token "${scope.name}"`;

/** Throws 403 PERMISSION_DENIED unless the scope may read every group. */
export function checkRead(scope: Scope | null, groups: readonly number[], field: string): void {
  if (scope === null) return;
  const refused = groups.filter((g) => !allows(scope.read, g));
  if (refused.length > 0) {
    throw new Problem(
      'PERMISSION_DENIED',
      `${field}: ${who(scope)} may not read group${refused.length > 1 ? 's' : ''} ${refused.join(',')} (it may read: ${list(scope.read)})`,
      {
        field,
        extra: { refused: { read: refused } },
      },
    );
  }
}

/** What a send goes to, as far as a scope is concerned. */
export type SendTarget = Omit<SendRequest, 'groups'> & { groups?: readonly number[] };

/** Throws 403 PERMISSION_DENIED naming what the scope does not allow in this send. */
export function checkSend(scope: Scope | null, req: SendTarget): void {
  if (scope === null) return;
  const deny = (field: string, what: string, allowed: string, refused: Record<string, unknown>): never => {
    throw new Problem('PERMISSION_DENIED', `${field}: ${who(scope)} may not ${what} (${allowed})`, { field, extra: { refused } });
  };
  const type = req.type ?? DnlMsgType.DATA;
  if (!allows(scope.sendTypes, type))
    deny('type', `send messages of type ${type}`, `it may send types: ${list(scope.sendTypes)}`, { types: [type] });
  const groups = req.groups ?? [];
  const badGroups = groups.filter((g) => !allows(scope.sendGroups, g));
  if (badGroups.length > 0)
    deny(
      'groups',
      `send to group${badGroups.length > 1 ? 's' : ''} ${badGroups.join(',')}`,
      `it may send to groups: ${list(scope.sendGroups)}`,
      { groups: badGroups },
    );
  if (!scope.kernel) {
    if (req.relay !== undefined) deny('relay', "use the kernel's RELAY", 'kernel requests are not allowed', { kernel: 'RELAY' });
    const wide = groups.filter((g) => g > MASK_GROUPS);
    if (wide.length > 0)
      deny('groups', `use the kernel's BCAST (groups ${wide.join(',')} are above ${MASK_GROUPS})`, 'kernel requests are not allowed', {
        kernel: 'BCAST',
      });
    if (req.pid === 0) deny('pid', 'send to the kernel (port 0)', 'kernel requests are not allowed', { kernel: 'port 0' });
  }
  if (req.pid !== undefined && req.pid !== 0 && !allows(scope.sendPorts, req.pid))
    deny('pid', `send to port ${req.pid}`, `it may send to ports: ${list(scope.sendPorts)}`, { ports: [req.pid] });
  if (req.relay !== undefined && !allows(scope.sendPorts, req.relay))
    deny('relay', `relay to port ${req.relay}`, `it may send to ports: ${list(scope.sendPorts)}`, { ports: [req.relay] });
}

// What a NATS credential file must hold, checked at start: nats.js reads a
// creds file or a seed only when it dials, and retries a first connection in
// silence whatever the cause (daemon/README.md), so a wrong file would leave
// the daemon running and never connected. Checked here, it stops the start
// with a message naming what is wrong instead.

import * as nats from '@nats-io/transport-node';

/**
 * The blocks of a creds file, as nats.js's credsAuthenticator finds them
 * (@nats-io/nats-core/lib/authenticator.js): the first is the user JWT, the
 * second the user's nkey seed, each between two "---- … ----" lines.
 */
const CREDS_BLOCK = /\s*(?:(?:[-]{3,}[^\n]*[-]{3,}\n)(.+)(?:\n\s*[-]{3,}[^\n]*[-]{3,}\n))/gi;

/** The public key ("U…") of a user nkey seed ("SU…"); null when it is none (a checksum nkeys refuses, another kind of key). */
export function userPublicKey(seed: string): string | null {
  if (!seed.startsWith('SU')) return null;
  try {
    const pub = nats.nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
    return pub.startsWith('U') ? pub : null;
  } catch {
    return null;
  }
}

/**
 * Checks a creds file's text: a user JWT whose subject is the public key of
 * the user seed that follows it (what nsc writes). Returns why it is not,
 * or null when it is.
 */
export function credsProblem(text: string): string | null {
  const re = new RegExp(CREDS_BLOCK.source, CREDS_BLOCK.flags);
  const jwt = re.exec(text)?.[1].trim();
  const seed = re.exec(text)?.[1].trim();
  if (jwt === undefined || seed === undefined)
    return 'holds no NATS credentials (a "-----BEGIN NATS USER JWT-----" block, then a "-----BEGIN USER NKEY SEED-----" block, as nsc writes them)';
  const pub = userPublicKey(seed);
  if (pub === null) return 'holds no user nkey seed ("SU…") in its second block';
  let claims: { sub?: unknown; nats?: { type?: unknown } };
  try {
    const parts = jwt.split('.');
    if (parts.length !== 3) throw new Error('not three parts');
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as typeof claims;
  } catch {
    return 'holds no JWT in its first block';
  }
  if (claims.nats?.type !== undefined && claims.nats.type !== 'user')
    return `holds a JWT of type "${String(claims.nats.type)}", not "user"`;
  if (claims.sub !== pub) return `holds a JWT for ${String(claims.sub)} and the seed of ${pub}: not one user's`;
  return null;
}

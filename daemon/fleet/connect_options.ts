// How this daemon dials NATS: the client's options, and a failed dial's
// cause in one line for the log.

import * as nats from '@nats-io/transport-node';
import type { ConnectionOptions } from '@nats-io/transport-node';
import type { CheckedFleet } from './settings';

export function connectOptions(servers: string[], checked: CheckedFleet, reconnectWait: () => number): ConnectionOptions {
  const { host, auth, tls } = checked;
  return {
    servers,
    name: `nlbridge ${host}`,
    // Replies (the JetStream API's, the stored messages a /fleet stream
    // reads) come to inboxes of this host's own prefix, so a server can
    // let each host's user read its own replies only (systemd/README.md).
    inboxPrefix: `_INBOX_${host}`,
    maxReconnectAttempts: -1,
    // A connection the server stopped answering is dropped after 3 unanswered
    // PINGs 10 s apart, not the client's 2 minutes apart: one unparsable line
    // from a server stopped the client's reader and the daemon published
    // nothing for 6 minutes while it still looked connected (an outside audit).
    pingInterval: 10_000,
    maxPingOut: 3,
    // The first connection is dialled by index.ts's loop (the client would
    // retry it in silence, whatever the cause): a failed one rejects, with why.
    waitOnFirstConnect: false,
    // After it, the client reconnects by itself, paced (dial_pacing.ts).
    reconnectDelayHandler: reconnectWait,
    ...(auth.creds ? { authenticator: nats.credsAuthenticator(auth.creds) } : {}),
    ...(auth.nkeySeed ? { authenticator: nats.nkeyAuthenticator(auth.nkeySeed) } : {}),
    ...(auth.token ? { token: auth.token } : {}),
    ...(tls ? { tls } : {}),
  };
}

/** An error and its causes in one line ("connection refused: connect ECONNREFUSED 127.0.0.1:4222"). */
export function causeText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && e !== null && parts.length < 4; e = (e as { cause?: unknown }).cause)
    parts.push(e instanceof Error ? e.message : String(e));
  return parts.join(': ');
}

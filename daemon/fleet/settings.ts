// The fleet's settings, checked before anything is opened: the host id, the
// published groups, and the secret and PEM files read once at start (a
// secret file others may read is refused, as the daemon's own token files
// are: the creds file, the nkey seed, the token file and the TLS key).
// Everything here can stop the start with exit 2 (FleetConfigError).

import type { Config } from '../config/schema';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { credsProblem, userPublicKey } from './credentials';
import { MAX_HOST_ID_LENGTH, defaultHostId, isSubjectToken, parsePublishGroups } from './subjects';

/** A fleet setting the daemon cannot start with (main.ts exits 2, naming `source`). */
export class FleetConfigError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
  }
}

/** The fleet's options, as the one config schema types them (not a second copy of them). */
export type FleetSettings = Pick<
  Config,
  | 'nats'
  | 'natsCreds'
  | 'natsTokenFile'
  | 'natsNkey'
  | 'natsTlsCa'
  | 'natsTlsCert'
  | 'natsTlsKey'
  | 'hostId'
  | 'natsPublish'
  | 'natsBufferBytes'
  | 'natsLingerMs'
  | 'natsLingerAbove'
  | 'natsSend'
  | 'natsJetstream'
  | 'natsStream'
  | 'natsStreamMaxBytes'
  | 'natsStreamMaxAgeS'
  | 'natsStreamDuplicateWindowS'
>;

/** Checks the settings and reads the secret files: everything that can be refused before anything is opened. */
export interface CheckedFleet {
  host: string;
  groups: number[];
  auth: { creds?: Uint8Array; token?: string; nkeySeed?: Uint8Array };
  /** PEM texts, read at start (a file that goes away later does not matter); null = TLS as the URL and server ask. */
  tls: { ca?: string; cert?: string; key?: string } | null;
}

/** A file holding a secret that group or others may read: refused, as the daemon's own token files are. */
function readSecret(flag: string, file: string): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new FleetConfigError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new FleetConfigError(flag, `${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0)
      throw new FleetConfigError(
        flag,
        `${file} may be read by group or others (mode 0${(st.mode & 0o777).toString(8)}), so the secret in it may have leaked: chmod 0600 it (or use a systemd credential)`,
      );
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A PEM file checked by what it must hold (a parse error names the flag and file, never a stack). */
function readPem(flag: string, file: string, what: string, check: (pem: string) => void, secret = false): string {
  let pem: string;
  if (secret) pem = readSecret(flag, file).toString('utf8');
  else {
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new FleetConfigError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    check(pem);
  } catch (err) {
    throw new FleetConfigError(flag, `${file} holds no ${what}: ${(err as Error).message.split('\n')[0]}`);
  }
  return pem;
}

export function checkFleetSettings(s: FleetSettings): CheckedFleet {
  const host = s.hostId ?? defaultHostId(os.hostname());
  if (!isSubjectToken(host) || host.length > MAX_HOST_ID_LENGTH) {
    throw new FleetConfigError(
      '--host-id',
      `the hostname "${os.hostname()}" gives "${host}", not a NATS subject token of at most ${MAX_HOST_ID_LENGTH} characters (no ".", "*", ">", whitespace or control characters): set --host-id`,
    );
  }
  // The schema's pattern lets a port through unchecked; the client would only
  // find "Invalid URL" at every dial (nats://h:99999 was retried forever).
  for (const server of s.nats) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//.test(server) ? server : `nats://${server}`);
    } catch {
      throw new FleetConfigError('--nats', `"${server}" is not a NATS server URL (nats://HOST:PORT, a port from 1 to 65535)`);
    }
    if (url.hostname === '' || url.port === '0')
      throw new FleetConfigError('--nats', `"${server}" is not a NATS server URL (nats://HOST:PORT, a port from 1 to 65535)`);
  }
  let groups: number[] = [];
  if (s.natsPublish !== null) {
    try {
      groups = parsePublishGroups(s.natsPublish);
    } catch (err) {
      throw new FleetConfigError('--nats-publish', (err as Error).message);
    }
  }
  const auth: CheckedFleet['auth'] = {};
  if (s.natsCreds !== null) {
    // A creds file holds the user's nkey seed: a secret, refused as --nats-nkey's is when others may read it.
    const creds = readSecret('--nats-creds', s.natsCreds);
    const problem = credsProblem(creds.toString('utf8'));
    if (problem !== null) throw new FleetConfigError('--nats-creds', `${s.natsCreds} ${problem}`);
    auth.creds = creds;
  }
  if (s.natsNkey !== null) {
    const seed = readSecret('--nats-nkey', s.natsNkey).toString('utf8').trim();
    if (userPublicKey(seed) === null)
      throw new FleetConfigError(
        '--nats-nkey',
        `${s.natsNkey} holds no NATS user nkey seed (one line "SU…", as nsc or nk -gen user writes it)`,
      );
    auth.nkeySeed = new TextEncoder().encode(seed);
  }
  let tls: CheckedFleet['tls'] = null;
  if (s.natsTlsCa !== null || s.natsTlsCert !== null) {
    tls = {};
    if (s.natsTlsCa !== null)
      tls.ca = readPem('--nats-tls-ca', s.natsTlsCa, 'PEM certificate', (pem) => void new crypto.X509Certificate(pem));
    if (s.natsTlsCert !== null && s.natsTlsKey !== null) {
      const cert = readPem('--nats-tls-cert', s.natsTlsCert, 'PEM certificate', (pem) => void new crypto.X509Certificate(pem));
      const key = readPem('--nats-tls-key', s.natsTlsKey, 'PEM private key', (pem) => void crypto.createPrivateKey(pem), true);
      if (!new crypto.X509Certificate(cert).checkPrivateKey(crypto.createPrivateKey(key)))
        throw new FleetConfigError('--nats-tls-key', `${s.natsTlsKey} is not the key of the certificate in ${s.natsTlsCert}`);
      tls.cert = cert;
      tls.key = key;
    }
  }
  if (s.natsTokenFile !== null) {
    const token = readSecret('--nats-token-file', s.natsTokenFile).toString('utf8').trim();
    if (token === '') throw new FleetConfigError('--nats-token-file', `${s.natsTokenFile} is empty`);
    auth.token = token;
  }
  return { host, groups, auth, tls };
}

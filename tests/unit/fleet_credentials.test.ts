// What daemon/fleet/credentials.ts accepts as a creds file or a user seed,
// with keys and JWTs made by @nats-io/jwt as nsc would make them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as jwt from '@nats-io/jwt';
import { credsProblem, userPublicKey } from '../../daemon/fleet/credentials';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const SEED_BLOCK = /-----BEGIN USER NKEY SEED-----[\s\S]*$/;

async function userCreds(): Promise<{ creds: string; pub: string; seed: string }> {
  const akp = jwt.createAccount();
  const ukp = jwt.createUser();
  const creds = text(jwt.fmtCreds(await jwt.encodeUser('u', ukp, akp), ukp));
  return { creds, pub: ukp.getPublicKey(), seed: text(ukp.getSeed()) };
}

test('userPublicKey: a user seed gives its public key; anything else null', () => {
  const ukp = jwt.createUser();
  assert.equal(userPublicKey(text(ukp.getSeed())), ukp.getPublicKey());
  assert.equal(userPublicKey(text(jwt.createAccount().getSeed())), null, 'an account seed');
  assert.equal(userPublicKey('SUnot-a-seed'), null, 'a bad checksum');
  assert.equal(userPublicKey(''), null);
});

test('credsProblem: a creds file as nsc writes it passes', async () => {
  assert.equal(credsProblem((await userCreds()).creds), null);
});

test('credsProblem: each way a creds file can be wrong is named', async () => {
  const { creds } = await userCreds();
  const other = await userCreds();
  const okp = jwt.createOperator();
  const akp = jwt.createAccount();
  const accountJwt = await jwt.encodeAccount('a', akp, {}, { signer: okp });
  const cases: [string, string, RegExp][] = [
    ['an empty file', '', /holds no NATS credentials/],
    ['a token', 's3cret\n', /holds no NATS credentials/],
    ['the JWT block alone', creds.replace(SEED_BLOCK, ''), /holds no NATS credentials/],
    [
      "an account's seed in the second block",
      creds.replace(SEED_BLOCK, `-----BEGIN USER NKEY SEED-----\n${text(akp.getSeed())}\n------END USER NKEY SEED------\n`),
      /holds no user nkey seed/,
    ],
    [
      'no JWT in the first block',
      creds.replace(/^(-----BEGIN NATS USER JWT-----\n).*$/m, '$1not-a-jwt'),
      /holds no JWT in its first block/,
    ],
    [
      'an account JWT',
      creds.replace(/^(-----BEGIN NATS USER JWT-----\n).*$/m, `$1${accountJwt}`),
      /holds a JWT of type "account", not "user"/,
    ],
    [
      "one user's JWT and another's seed",
      creds.replace(SEED_BLOCK, SEED_BLOCK.exec(other.creds)![0]),
      /holds a JWT for U\w+ and the seed of U\w+: not one user's/,
    ],
  ];
  for (const [name, body, want] of cases) {
    const problem = credsProblem(body);
    assert.ok(problem !== null, name);
    assert.match(problem, want, name);
    assert.ok(!problem.includes(other.seed), `${name}: the message holds no seed`);
  }
});

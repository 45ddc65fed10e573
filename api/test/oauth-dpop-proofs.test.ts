/**
 * A DPoP-bound access token (RFC 9449) works only with a proof made for this request, now, by the
 * key the token is bound to. oauth-flows.test.ts shows the whole flow with a real client; here
 * each rule of the proof is broken on its own, over HTTP, against a token our authorization
 * server's key signed: each is refused with DPOP_PROOF_INVALID and a `WWW-Authenticate: DPoP`
 * header naming the rule, and the limits that must pass do.
 */
import { createHash, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { loadSigningKeys } from '../src/auth/keys.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

type SigningKey = Parameters<SignJWT['sign']>[0];
interface ProofKey {
  privateKey: SigningKey;
  jwk: JWK;
  jkt: string;
}

let db: TestDatabase;
let server: TestServer;
let clientId: string;
let holder: ProofKey;
const kek = Buffer.from(TEST_KEK, 'base64url');
const VIEWER = '{ viewer { kind } }';
const now = () => Math.floor(Date.now() / 1000);
/** The htu rule's message names the resource, known once the server has started. */
const HTU = 'htu must be {resource}';

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  clientId = (await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: randomUUID(), name: 'DPoP Shop', scopes: ['payments:read'], dpopBound: true })).client.client_id;
  holder = await proofKey();
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function proofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

/** An access token as our authorization server signs one, bound to `jkt`. */
async function boundToken(jkt: string): Promise<string> {
  const [jwk] = (await loadSigningKeys(db.orm.em.fork(), kek)).privateJwks;
  const claims: JWTPayload = { iss: `${server.url}/oauth`, aud: `${server.url}/graphql`, iat: now(), exp: now() + 600, client_id: clientId, scope: 'payments:read', jti: randomUUID(), cnf: { jkt } };
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: jwk!.kid }).sign((await importJWK(jwk!, 'ES256')) as SigningKey);
}

const ath = (token: string) => createHash('sha256').update(token).digest('base64url');

interface ProofChanges {
  claims?: Record<string, unknown>;
  /** Claims left out of the proof. */
  omit?: string[];
  header?: Record<string, unknown>;
  /** The key that signs (its public key is the one embedded unless `header.jwk` says otherwise). */
  key?: ProofKey;
  alg?: string;
}

/** A proof for POST /graphql with `token`, now, by `holder`'s key, with `changes` applied. */
async function proof(token: string, changes: ProofChanges = {}): Promise<string> {
  const key = changes.key ?? holder;
  const claims: Record<string, unknown> = { htm: 'POST', htu: `${server.url}/graphql`, iat: now(), jti: randomUUID(), ath: ath(token), ...changes.claims };
  for (const name of changes.omit ?? []) delete claims[name];
  return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: changes.alg ?? 'ES256', typ: 'dpop+jwt', jwk: key.jwk, ...changes.header }).sign(key.privateKey);
}

const ask = (token: string, dpop: string, scheme = 'DPoP') => graphql(server.url, VIEWER, {}, { authorization: `${scheme} ${token}`, dpop });

async function expectRefused(answer: Awaited<ReturnType<typeof ask>>, reason: string, problem: string) {
  expect(answer.status).toBe(401);
  expect(answer.body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason });
  expect(answer.body.data).toBeUndefined();
  const challenge = answer.headers.get('www-authenticate') ?? '';
  expect(challenge).toMatch(/^DPoP error="invalid_token"/);
  expect(challenge).toContain(problem);
}

describe('a DPoP proof that breaks one rule is refused, naming the rule', () => {
  it.each<[string, (token: string) => ProofChanges | Promise<ProofChanges>, string]>([
    ['for another HTTP method (GET for a POST)', () => ({ claims: { htm: 'GET' } }), 'htm does not match the request method'],
    ['without htm', () => ({ omit: ['htm'] }), 'htm does not match the request method'],
    ['for another URL (the authorization server)', () => ({ claims: { htu: `${server.url}/oauth/token` } }), HTU],
    ['for the API on another host', () => ({ claims: { htu: 'https://elsewhere.example/graphql' } }), HTU],
    ['with an htu that is not a URL', () => ({ claims: { htu: 'graphql' } }), HTU],
    ['with an htu that is not a string', () => ({ claims: { htu: 42 } }), HTU],
    ['without htu', () => ({ omit: ['htu'] }), HTU],
    ['made five minutes ago', () => ({ claims: { iat: now() - 300 } }), 'iat is too far from the server time'],
    ['dated five minutes ahead', () => ({ claims: { iat: now() + 300 } }), 'iat is too far from the server time'],
    ['without iat', () => ({ omit: ['iat'] }), 'iat is too far from the server time'],
    ['for another access token (ath)', async () => ({ claims: { ath: ath(await boundToken(holder.jkt)) } }), 'ath does not match the access token'],
    ['without ath', () => ({ omit: ['ath'] }), 'ath does not match the access token'],
    ['without jti', () => ({ omit: ['jti'] }), 'jti is missing'],
    ['with a jti that is not a string', () => ({ claims: { jti: 12345 } }), 'jti is missing'],
    ['with a jti of 201 characters', () => ({ claims: { jti: 'j'.repeat(201) } }), 'jti is missing'],
    ['signed by another key than the token is bound to', async () => ({ key: await proofKey() }), 'the proof key is not the key the token is bound to'],
  ])('a proof %s', async (_name, changes, problem) => {
    const token = await boundToken(holder.jkt);
    await expectRefused(await ask(token, await proof(token, await changes(token))), 'DPOP_PROOF_INVALID', `The DPoP proof is not valid: ${problem.replace('{resource}', `${server.url}/graphql`)}`);
  });

  it.each<[string, () => Promise<ProofChanges>]>([
    ['whose signature is not by the key it embeds', async () => ({ header: { jwk: (await proofKey()).jwk } })],
    ['of another type than dpop+jwt', async () => ({ header: { typ: 'JWT' } })],
    ['with an iat that is not a number (jose refuses it before our rules)', async () => ({ claims: { iat: String(now()) } })],
    ['signed with an algorithm the server does not take for proofs (RS256)', async () => ({ key: await proofKey('RS256'), alg: 'RS256' })],
  ])('a proof %s does not verify', async (_name, changes) => {
    const token = await boundToken(holder.jkt);
    await expectRefused(await ask(token, await proof(token, await changes())), 'DPOP_PROOF_INVALID', 'The DPoP proof does not verify');
  });

  it('a proof that is not a JWT does not verify', async () => {
    const token = await boundToken(holder.jkt);
    await expectRefused(await ask(token, 'not-a-proof'), 'DPOP_PROOF_INVALID', 'The DPoP proof does not verify');
  });

  it('a bound token under the DPoP scheme without any proof is refused: a proof is required', async () => {
    const token = await boundToken(holder.jkt);
    const answer = await graphql(server.url, VIEWER, {}, { authorization: `DPoP ${token}` });
    await expectRefused(answer, 'DPOP_PROOF_REQUIRED', 'This access token is DPoP-bound');
  });
});

describe('a bound token travels only under the DPoP scheme (RFC 9449 §7.1)', () => {
  it('sent as a Bearer token it is refused even with a good proof: a proof under the DPoP scheme is required', async () => {
    const token = await boundToken(holder.jkt);
    const answer = await ask(token, await proof(token), 'Bearer');
    await expectRefused(answer, 'DPOP_PROOF_REQUIRED', 'This access token is DPoP-bound: send it as `Authorization: DPoP <token>` with a `DPoP` proof');
  });
});

describe('a proof is used once', () => {
  it('the same proof sent twice: the second is DPOP_PROOF_REPLAYED', async () => {
    const token = await boundToken(holder.jkt);
    const once = await proof(token);
    expect((await ask(token, once)).body.data?.viewer).toEqual({ kind: 'MERCHANT' });
    await expectRefused(await ask(token, once), 'DPOP_PROOF_REPLAYED', 'This DPoP proof was used before');
  });

  it('the record that refuses a replay is kept until the proof is too old to be accepted anyway (iat + 120 s)', async () => {
    const token = await boundToken(holder.jkt);
    const jti = randomUUID();
    const iat = now() - 10;
    expect((await ask(token, await proof(token, { claims: { jti, iat } }))).body.data?.viewer).toEqual({ kind: 'MERCHANT' });
    const [seen] = await db.orm.em.fork().execute<{ expires: number }[]>(`select extract(epoch from expires_at)::int as expires from seen_jti where jti like ?`, [`%${jti}`]);
    expect(seen?.expires).toBe(iat + 120);
  });

  it('proofs with their own jti each pass; the same jti from another key is that key’s own, not a replay', async () => {
    const token = await boundToken(holder.jkt);
    for (let i = 0; i < 2; i++) expect((await ask(token, await proof(token))).body.data?.viewer).toEqual({ kind: 'MERCHANT' });

    const jti = randomUUID();
    expect((await ask(token, await proof(token, { claims: { jti } }))).body.data?.viewer).toEqual({ kind: 'MERCHANT' });
    const other = await proofKey();
    const otherToken = await boundToken(other.jkt);
    expect((await ask(otherToken, await proof(otherToken, { key: other, claims: { jti } }))).body.data?.viewer).toEqual({ kind: 'MERCHANT' });
  });
});

describe('what a valid proof may look like', () => {
  it.each<[string, () => ProofChanges, string?]>([
    ['with a query string on its htu (RFC 9449 §4.3: compared without it)', () => ({ claims: { htu: `${server.url}/graphql?from=app` } })],
    ['made 30 seconds ago', () => ({ claims: { iat: now() - 30 } })],
    ['dated 30 seconds ahead (a client clock a little fast)', () => ({ claims: { iat: now() + 30 } })],
    ['with a jti of 200 characters', () => ({ claims: { jti: `${randomUUID()}${'j'.repeat(164)}` } })],
    ['under a lower-case dpop scheme', () => ({}), 'dpop'],
  ])('a proof %s is accepted', async (_name, changes, scheme) => {
    const token = await boundToken(holder.jkt);
    const answer = await ask(token, await proof(token, changes()), scheme);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer).toEqual({ kind: 'MERCHANT' });
  });

  it.each([['Ed25519'], ['EdDSA (its older name, RFC 8037)']])('a proof signed with an Ed25519 key under the algorithm %s is accepted', async (name) => {
    const ed = await proofKey('Ed25519');
    const token = await boundToken(ed.jkt);
    const answer = await ask(token, await proof(token, { key: ed, alg: name.split(' ')[0] }));
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer).toEqual({ kind: 'MERCHANT' });
  });
});

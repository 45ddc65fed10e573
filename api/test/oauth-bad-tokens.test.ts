import { randomUUID } from 'node:crypto';
import { generateKeyPair, importJWK, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { loadSigningKeys, rotateSigningKey } from '../src/auth/keys.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let clientId: string;
let disabledClientId: string;
const kek = Buffer.from(TEST_KEK, 'base64url');
type SigningKey = Parameters<SignJWT['sign']>[0];
const VIEWER = '{ viewer { kind } }';

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  clientId = (await createClient(em, { kind: 'MERCHANT', tenantId: randomUUID(), name: 'Shop', scopes: ['payments:read'] })).client.client_id;
  disabledClientId = (await createClient(em, { kind: 'MERCHANT', tenantId: randomUUID(), name: 'Gone', scopes: ['payments:read'] })).client.client_id;
  await em.execute(`update oauth_client set disabled = true where client_id = ?`, [disabledClientId]);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

/** A token as our authorization server would sign it, with `changes` applied. */
async function forge(changes: { claims?: JWTPayload; header?: Record<string, unknown>; key?: SigningKey } = {}): Promise<string> {
  const [jwk] = (await loadSigningKeys(db.orm.em.fork(), kek)).privateJwks;
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: `${server.url}/oauth`, aud: `${server.url}/graphql`, iat: now, exp: now + 600, client_id: clientId, scope: 'payments:read', jti: randomUUID(), ...changes.claims };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: jwk!.kid, ...changes.header })
    .sign(changes.key ?? ((await importJWK(jwk!, 'ES256')) as SigningKey));
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('the API refuses bad access tokens, each with a clear reason', () => {
  it('a well-formed token passes (the control case)', async () => {
    expect((await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${await forge()}` })).body.data.viewer).toEqual({ kind: 'MERCHANT' });
  });

  it('no token at all: anonymous, and tenant data answers UNAUTHENTICATED', async () => {
    const { status, body } = await graphql(server.url, '{ ledgerProblems { rule } }');
    expect(status).toBe(401);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED' });
  });

  const now = () => Math.floor(Date.now() / 1000);
  it.each<[string, () => Promise<string>, string]>([
    ['expired', () => forge({ claims: { exp: now() - 60, iat: now() - 700 } }), 'TOKEN_EXPIRED'],
    ['for another audience', () => forge({ claims: { aud: 'https://elsewhere.example/api' } }), 'WRONG_AUDIENCE'],
    ['from another issuer', () => forge({ claims: { iss: 'https://evil.example/oauth' } }), 'WRONG_ISSUER'],
    ['signed by another key under our kid', async () => forge({ key: (await generateKeyPair('ES256')).privateKey }), 'BAD_SIGNATURE'],
    ['unsigned (alg none)', async () => `${b64({ alg: 'none', typ: 'at+jwt' })}.${(await forge()).split('.')[1]}.`, 'UNSUPPORTED_ALGORITHM'],
    [
      'HS256 keyed with our public key (algorithm confusion)',
      async () => {
        const [pub] = (await loadSigningKeys(db.orm.em.fork(), kek)).publicJwks;
        const secret = new TextEncoder().encode(JSON.stringify(pub));
        return new SignJWT({ client_id: clientId, jti: randomUUID() }).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).setIssuer(`${server.url}/oauth`).setAudience(`${server.url}/graphql`).setExpirationTime('5m').sign(secret);
      },
      'UNSUPPORTED_ALGORITHM',
    ],
    ['not a JWT', async () => 'not-a-token', 'MALFORMED_TOKEN'],
    ['DPoP-bound but sent without its proof', () => forge({ claims: { cnf: { jkt: 'x'.repeat(43) } } }), 'DPOP_PROOF_REQUIRED'],
    ['issued to a disabled client', () => forge({ claims: { client_id: disabledClientId } }), 'CLIENT_DISABLED'],
    [
      'revoked',
      async () => {
        const jti = randomUUID();
        await db.orm.em.fork().execute(`insert into revoked_access_token (jti, client_id, expires_at) values (?, ?, now() + interval '10 minutes')`, [jti, clientId]);
        return forge({ claims: { jti } });
      },
      'TOKEN_REVOKED',
    ],
  ])('a token %s', async (_name, token, reason) => {
    const { status, headers, body } = await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${await token()}` });
    expect(status).toBe(401);
    expect(headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason });
    expect(body.data).toBeUndefined();
  });
});

describe('signing key rotation', () => {
  it('tokens signed before a rotation keep working, and new keys are picked up', async () => {
    const secretClient = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: randomUUID(), name: 'Rotating', scopes: ['payments:read'] });
    const before = await clientCredentialsToken(await discover(server.url), secretClient.client.client_id, secretClient.clientSecret!);

    const { kid, retired } = await rotateSigningKey(db.orm.em.fork(), kek);
    expect(retired).toHaveLength(1);
    // A process started after the rotation signs with the new key...
    const restarted = await startTestServer(db.orm, { PUBLIC_URL: server.url });
    try {
      const jwks = (await (await fetch(`${restarted.url}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((k) => k.kid)).toEqual([kid, retired[0]]);
      // ...and still accepts tokens signed with the retired key.
      const old = await graphql(restarted.url, VIEWER, {}, { authorization: `Bearer ${before.access_token}` });
      expect(old.body.errors?.[0]?.extensions?.reason).not.toBe('BAD_SIGNATURE');
    } finally {
      await restarted.close();
    }
    // The first process learns the new key the first time it sees a token signed with it (it
    // reloads the published keys at most once a second).
    await new Promise((r) => setTimeout(r, 1_100));
    const fresh = await forge(); // forge() signs with the newest active key
    expect(JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString()).kid).toBe(kid);
    expect((await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${fresh}` })).body.data.viewer).toEqual({ kind: 'MERCHANT' });
    expect((await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${before.access_token}` })).body.data.viewer).toEqual({ kind: 'MERCHANT' });
  });
});

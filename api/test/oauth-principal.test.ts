/**
 * What the API makes of the Authorization header and of a good token's claims (the token
 * verifier's first and last steps): a header that is not `Bearer <token>` or `DPoP <token>` is
 * MALFORMED_TOKEN, a token with the wrong type or not yet valid is refused, and the principal a
 * good token gives (kind, client, tenant, holder, scopes) is exactly what the client was
 * registered and consented to, whatever else the token claims. oauth-bad-tokens.test.ts holds the
 * signature, issuer, expiry and revocation refusals; oauth-dpop-proofs.test.ts the DPoP proofs.
 */
import { randomUUID } from 'node:crypto';
import { CompactSign, importJWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { loadSigningKeys } from '../src/auth/keys.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let merchantClient: string;
let appClient: string;
const merchantId = randomUUID();
const companyId = randomUUID();
const kek = Buffer.from(TEST_KEK, 'base64url');
const VIEWER = '{ viewer { kind clientId tenantId holderId scopes } }';
const now = () => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const em = db.orm.em.fork();
  merchantClient = (await createClient(em, { kind: 'MERCHANT', tenantId: merchantId, name: 'Principal Shop', scopes: ['payments:read', 'payments:write'] })).client.client_id;
  appClient = (await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: companyId, name: 'Principal App', scopes: ['card:read'], redirectUris: ['http://127.0.0.1/cb'] })).client.client_id;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

/** A token as our authorization server signs one, with `claims` and `header` changed. */
async function token(claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  const [jwk] = (await loadSigningKeys(db.orm.em.fork(), kek)).privateJwks;
  const all: JWTPayload = { iss: `${server.url}/oauth`, aud: `${server.url}/graphql`, iat: now(), exp: now() + 600, client_id: merchantClient, scope: 'payments:read', jti: randomUUID(), ...claims };
  return new SignJWT(all).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: jwk!.kid, ...header }).sign((await importJWK(jwk!, 'ES256')) as Parameters<SignJWT['sign']>[0]);
}

/** Signed by our authorization server's key like a token, but with any bytes as its claims. */
async function signedBytes(payload: string): Promise<string> {
  const [jwk] = (await loadSigningKeys(db.orm.em.fork(), kek)).privateJwks;
  return new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: jwk!.kid }).sign((await importJWK(jwk!, 'ES256')) as Parameters<SignJWT['sign']>[0]);
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
const ask = (authorization: string) => graphql(server.url, VIEWER, {}, { authorization });

async function expectRefused(answer: Awaited<ReturnType<typeof ask>>, reason: string, message: string) {
  expect(answer.status).toBe(401);
  expect(answer.body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason });
  expect(answer.body.errors[0].message).toBe(message);
  expect(answer.body.data).toBeUndefined();
}

describe('the Authorization header', () => {
  const SEND = 'Send `Authorization: Bearer <token>` or `Authorization: DPoP <token>`';
  it.each<[string, (t: string) => string]>([
    ['the token with nothing before it', (t) => t],
    ['another scheme (Basic)', (t) => `Basic ${t}`],
    ['a scheme that only starts like Bearer', (t) => `Bearerish ${t}`],
    ['a scheme that only ends like Bearer', (t) => `XBearer ${t}`],
    ['a scheme that only ends like DPoP', (t) => `XDPoP ${t}`],
    ['the scheme without a token', () => 'Bearer'],
    ['a token followed by more', (t) => `Bearer ${t} extra`],
  ])('%s: MALFORMED_TOKEN, telling what to send', async (_name, header) => {
    await expectRefused(await ask(header(await token())), 'MALFORMED_TOKEN', SEND);
  });

  it('a token that is not DPoP-bound, under the DPoP scheme: DPOP_PROOF_INVALID, telling to send it as a Bearer token', async () => {
    const answer = await ask(`DPoP ${await token()}`);
    await expectRefused(answer, 'DPOP_PROOF_INVALID', 'This access token is not DPoP-bound; send it as a Bearer token');
    expect(answer.headers.get('www-authenticate')).toBe('Bearer error="invalid_token", error_description="This access token is not DPoP-bound; send it as a Bearer token"');
  });

  it.each([['Bearer'], ['bearer'], ['BEARER']])('the scheme %s, in any case, is accepted', async (scheme) => {
    const answer = await ask(`${scheme} ${await token()}`);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer.kind).toBe('MERCHANT');
  });
});

describe('a token of the wrong kind or not yet valid', () => {
  it('a JWT that is not an access token (typ JWT, as an ID token) is refused', async () => {
    await expectRefused(await ask(`Bearer ${await token({}, { typ: 'JWT' })}`), 'MALFORMED_TOKEN', "The access token's typ claim is not acceptable");
  });

  it('a token not valid before ten minutes from now is refused', async () => {
    await expectRefused(await ask(`Bearer ${await token({ nbf: now() + 600 })}`), 'MALFORMED_TOKEN', "The access token's nbf claim is not acceptable");
  });

  it('an expired token is refused with a message that says so', async () => {
    await expectRefused(await ask(`Bearer ${await token({ iat: now() - 700, exp: now() - 60 })}`), 'TOKEN_EXPIRED', 'The access token has expired');
  });

  it('a token for an unknown client is refused as the client’s', async () => {
    await expectRefused(await ask(`Bearer ${await token({ client_id: 'no-such-client' })}`), 'CLIENT_DISABLED', 'The client this token was issued to is disabled');
  });
});

describe('each refusal tells the client what is wrong, in the body and in WWW-Authenticate', () => {
  it.each<[string, () => Promise<string>, string, (url: string) => string]>([
    ['not a JWT', async () => 'not-a-token', 'MALFORMED_TOKEN', () => 'The access token is not a JWT'],
    ['signed with HS256', async () => `${b64({ alg: 'HS256', typ: 'at+jwt' })}.${(await token()).split('.')[1]}.c2ln`, 'UNSUPPORTED_ALGORITHM', () => 'Access tokens are signed with ES256, not HS256'],
    ['from another issuer', () => token({ iss: 'https://evil.example/oauth' }), 'WRONG_ISSUER', (url) => `The access token was not issued by ${url}/oauth`],
    ['for another audience', () => token({ aud: 'https://elsewhere.example/api' }), 'WRONG_AUDIENCE', (url) => `The access token is not for ${url}/graphql`],
    ['signed by our key, whose claims are not a JSON object', () => signedBytes('["client_id"]'), 'MALFORMED_TOKEN', () => 'The access token is not valid'],
    ['with a signature that does not verify', async () => `${(await token()).slice(0, -8)}AAAAAAAA`, 'BAD_SIGNATURE', () => 'The access token signature does not verify'],
    [
      'revoked',
      async () => {
        const jti = randomUUID();
        await db.orm.em.fork().execute(`insert into revoked_access_token (jti, client_id, expires_at) values (?, ?, now() + interval '10 minutes')`, [jti, merchantClient]);
        return token({ jti });
      },
      'TOKEN_REVOKED',
      () => 'The access token has been revoked',
    ],
  ])('a token %s', async (_name, make, reason, message) => {
    const answer = await ask(`Bearer ${await make()}`);
    await expectRefused(answer, reason, message(server.url));
    expect(answer.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="${message(server.url)}"`);
  });

  it('a double quote in what the client sent cannot break the WWW-Authenticate header', async () => {
    const answer = await ask(`Bearer ${b64({ alg: 'x"y', typ: 'at+jwt' })}.${b64({})}.c2ln`);
    await expectRefused(answer, 'UNSUPPORTED_ALGORITHM', 'Access tokens are signed with ES256, not x"y');
    expect(answer.headers.get('www-authenticate')).toBe(`Bearer error="invalid_token", error_description="Access tokens are signed with ES256, not x'y"`);
  });
});

describe('the principal of a good token', () => {
  it('a merchant: its kind, client and tenant as registered; no holder even if the token names a subject; each scope once', async () => {
    const answer = await ask(`Bearer ${await token({ sub: randomUUID(), scope: ' payments:read  payments:write ' })}`);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer).toEqual({ kind: 'MERCHANT', clientId: merchantClient, tenantId: toGlobalId('Merchant', merchantId), holderId: null, scopes: ['payments:read', 'payments:write'] });
  });

  it('a token without a scope claim carries no scope', async () => {
    const answer = await ask(`Bearer ${await token({ scope: undefined })}`);
    expect(answer.body.data.viewer.scopes).toEqual([]);
  });

  it('a cardholder app acts for the holder its token names', async () => {
    const holder = randomUUID();
    const answer = await ask(`Bearer ${await token({ client_id: appClient, sub: holder, scope: 'card:read' })}`);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer).toEqual({ kind: 'CARDHOLDER_APP', clientId: appClient, tenantId: toGlobalId('CardCompany', companyId), holderId: toGlobalId('Cardholder', holder), scopes: ['card:read'] });
  });

  it('a cardholder app token with no subject acts for no holder', async () => {
    const answer = await ask(`Bearer ${await token({ client_id: appClient, scope: 'card:read' })}`);
    expect(answer.body.data.viewer).toMatchObject({ kind: 'CARDHOLDER_APP', holderId: null });
  });

  it('a cardholder app token whose subject is not a string acts for no holder', async () => {
    const answer = await ask(`Bearer ${await token({ client_id: appClient, sub: 42 as unknown as string, scope: 'card:read' })}`);
    expect(answer.body.errors).toBeUndefined();
    expect(answer.body.data.viewer).toMatchObject({ kind: 'CARDHOLDER_APP', holderId: null });
  });
});

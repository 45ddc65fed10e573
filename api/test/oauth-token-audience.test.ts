/**
 * An access token is good for the resource it names and nowhere else: signed by our own
 * authorization server, valid in every other way, a token whose audience is not this GraphQL
 * resource is refused (WRONG_AUDIENCE) over HTTP, before anything is read. oauth-bad-tokens.test.ts
 * covers the other reasons; this is the audience rule, case by case.
 */
import { randomUUID } from 'node:crypto';
import { importJWK, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { loadSigningKeys } from '../src/auth/keys.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let clientId: string;
const kek = Buffer.from(TEST_KEK, 'base64url');

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  clientId = (await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: randomUUID(), name: 'Audience Shop', scopes: ['payments:read'] })).client.client_id;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

/** A token exactly as our authorization server signs one (its current key), with the audience given. */
async function tokenFor(aud: JWTPayload['aud'] | undefined): Promise<string> {
  const [jwk] = (await loadSigningKeys(db.orm.em.fork(), kek)).privateJwks;
  const now = Math.floor(Date.now() / 1000);
  const claims: JWTPayload = { iss: `${server.url}/oauth`, iat: now, exp: now + 600, client_id: clientId, scope: 'payments:read', jti: randomUUID() };
  if (aud !== undefined) claims.aud = aud;
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: jwk!.kid }).sign((await importJWK(jwk!, 'ES256')) as Parameters<SignJWT['sign']>[0]);
}

const ask = async (token: string) => graphql(server.url, '{ viewer { kind } payments { edges { node { id } } } }', {}, { authorization: `Bearer ${token}` });

describe('the audience of an access token', () => {
  const resource = () => `${server.url}/graphql`;
  it.each<[string, () => JWTPayload['aud'] | undefined]>([
    ['no audience at all', () => undefined],
    ['the client itself (as an ID token names it)', () => clientId],
    ['our authorization server, not the API', () => `${server.url}/oauth`],
    ['the API’s path on another host', () => 'https://api.elsewhere.example/graphql'],
    ['the API’s URL with another path', () => `${server.url}/graphql/v2`],
    ['a list of other resources', () => ['https://elsewhere.example/api', `${server.url}/oauth`]],
    ['an empty list', () => []],
  ])('%s: refused with WRONG_AUDIENCE, and no data', async (_name, aud) => {
    const { status, body } = await ask(await tokenFor(aud()));
    expect(status).toBe(401);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'WRONG_AUDIENCE' });
    expect(body.data).toBeUndefined();
  });

  it.each<[string, () => JWTPayload['aud']]>([
    ['this resource', () => resource()],
    ['a list that includes this resource', () => ['https://elsewhere.example/api', resource()]],
  ])('%s: accepted', async (_name, aud) => {
    const { status, body } = await ask(await tokenFor(aud()));
    expect(status).toBe(200);
    expect(body.errors).toBeUndefined();
    expect(body.data.viewer).toEqual({ kind: 'MERCHANT' });
  });
});

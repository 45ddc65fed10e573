import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Issue 18, problem 9: a private_key_jwt assertion valid for a year was accepted (and its replay
 * row kept a year). Now its `exp` may be at most 5 minutes ahead, at the token endpoint and at
 * our introspection and revocation endpoints alike.
 */

const TENANT = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0002';
let db: TestDatabase;
let server: TestServer;
let clientId: string;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  ({ client: { client_id: clientId } } = await createClient(db.orm.em.fork(), { kind: 'BILLER', tenantId: TENANT, name: 'Water', scopes: ['bills:read'], jwks: { keys: [jwk as never] } }));
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

async function assertion(lifetimeSeconds: number, audience: string) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + lifetimeSeconds)
    .sign(privateKey);
}

async function post(path: string, params: Record<string, string>) {
  const res = await fetch(`${server.url}/oauth${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(params).toString() });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as { error?: string; access_token?: string; active?: boolean } };
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe('private_key_jwt assertions live at most 5 minutes', () => {
  const cases: [string, number, number][] = [
    ['a year', 365 * 24 * 3600, 401],
    ['an hour', 3600, 401],
    ['6 minutes', 360, 401],
    ['5 minutes', 290, 200],
    ['a minute', 60, 200],
  ];
  it.each(cases)('at the token endpoint, an assertion valid for %s → %i', async (_name, lifetime, status) => {
    const answer = await post('/token', { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: await assertion(lifetime, `${server.url}/oauth`) });
    expect(answer.status).toBe(status);
    if (status === 401) expect(answer.body.error).toBe('invalid_client');
    else expect(answer.body.access_token).toBeTruthy();
  });

  it('at introspection too', async () => {
    const token = (await post('/token', { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: await assertion(60, `${server.url}/oauth`) })).body.access_token!;
    const longLived = await post('/token/introspection', { token, client_assertion_type: JWT_BEARER, client_assertion: await assertion(360, `${server.url}/oauth`) });
    expect(longLived.status).toBe(401);
    expect(longLived.body.error).toBe('invalid_client');
    const fine = await post('/token/introspection', { token, client_assertion_type: JWT_BEARER, client_assertion: await assertion(120, `${server.url}/oauth`) });
    expect(fine.body.active).toBe(true);
  });
});

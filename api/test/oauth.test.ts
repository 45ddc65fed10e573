import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover, insecure } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let as: oauth.AuthorizationServer;
const MERCHANT_ID = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0001';

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  as = await discover(server.url);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

const VIEWER = '{ viewer { kind clientId tenantId scopes } }';

describe('client credentials with client_secret_basic', () => {
  it('discovery names our issuer and endpoints', () => {
    expect(as.issuer).toBe(`${server.url}/oauth`);
    expect(as.token_endpoint).toBe(`${server.url}/oauth/token`);
    expect(as.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_basic', 'private_key_jwt']));
    expect(as.dpop_signing_alg_values_supported).toContain('ES256');
  });

  it('a merchant gets a JWT access token for the GraphQL API and is the viewer', async () => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'Shop', scopes: ['payments:read', 'payments:write'] });
    const token = await clientCredentialsToken(as, client.client_id, clientSecret!, 'payments:read');
    expect(token.token_type.toLowerCase()).toBe('bearer');
    expect(token.expires_in).toBeLessThanOrEqual(600);
    const claims = JSON.parse(Buffer.from(token.access_token.split('.')[1]!, 'base64url').toString());
    expect(claims).toMatchObject({ iss: `${server.url}/oauth`, aud: `${server.url}/graphql`, client_id: client.client_id, scope: 'payments:read' });

    const { body } = await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${token.access_token}` });
    expect(body.errors).toBeUndefined();
    expect(body.data.viewer).toEqual({ kind: 'MERCHANT', clientId: client.client_id, tenantId: expect.any(String), scopes: ['payments:read'] });
  });

  it('a wrong secret or a scope the client does not hold is refused at the token endpoint', async () => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'Shop', scopes: ['payments:read'] });
    await expect(clientCredentialsToken(as, client.client_id, `${clientSecret}x`)).rejects.toMatchObject({ cause: [expect.objectContaining({ parameters: expect.objectContaining({ error: 'invalid_client' }) })] });
    await expect(clientCredentialsToken(as, client.client_id, clientSecret!, 'tenants:manage')).rejects.toMatchObject({ error: 'invalid_scope' });
  });

  it('a client cannot be registered with a symmetric or private key as its JWK Set', async () => {
    const em = db.orm.em.fork();
    await expect(createClient(em, { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'x', scopes: [], jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } })).rejects.toMatchObject({ code: 'INVALID_JWKS' });
    await expect(createClient(em, { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'x', scopes: [], jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'a', y: 'b', d: 'c' }] } })).rejects.toMatchObject({ code: 'INVALID_JWKS' });
  });

  it('a revoked token is refused by the API', async () => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'Shop', scopes: ['payments:read'] });
    const token = await clientCredentialsToken(as, client.client_id, clientSecret!);
    expect((await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${token.access_token}` })).body.data.viewer.kind).toBe('MERCHANT');
    const revoked = await oauth.revocationRequest(as, { client_id: client.client_id }, oauth.ClientSecretBasic(clientSecret!), token.access_token, insecure);
    await oauth.processRevocationResponse(revoked);
    const introspected = await oauth.processIntrospectionResponse(as, { client_id: client.client_id }, await oauth.introspectionRequest(as, { client_id: client.client_id }, oauth.ClientSecretBasic(clientSecret!), token.access_token, insecure));
    expect(introspected.active).toBe(false);
    const { status, body } = await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${token.access_token}` });
    expect(status).toBe(401);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
  });

  it('introspection answers inactive for the token of a disabled client, as the API refuses it', async () => {
    const merchant = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'Shop', scopes: ['payments:read'] });
    const operator = await createClient(db.orm.em.fork(), { kind: 'OPERATOR', tenantId: null, name: 'Ops', scopes: [] });
    const token = await clientCredentialsToken(as, merchant.client.client_id, merchant.clientSecret!);
    const introspect = async () =>
      oauth.processIntrospectionResponse(
        as,
        { client_id: operator.client.client_id },
        await oauth.introspectionRequest(as, { client_id: operator.client.client_id }, oauth.ClientSecretBasic(operator.clientSecret!), token.access_token, insecure),
      );
    expect((await introspect()).active).toBe(true);
    await db.orm.em.fork().execute(`update oauth_client set disabled = true where client_id = ?`, [merchant.client.client_id]);
    expect((await introspect()).active).toBe(false);
    expect((await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${token.access_token}` })).body.errors[0].extensions.reason).toBe('CLIENT_DISABLED');
  });
});

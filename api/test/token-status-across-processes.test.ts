/**
 * The token verifier keeps a token's client status and revocation between requests (issue 20), so a
 * request needs no database read for them. Keeping them must never let a revoked token or a
 * disabled client's token through: a revocation or a disabling done through one API process is
 * refused by another process at its very next request. Two API instances on one database, each
 * with its own ORM and its own cache, as two processes behind a load balancer.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover, insecure } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let otherOrm: Orm;
let a: TestServer;
let b: TestServer;
let as: oauth.AuthorizationServer;
const MERCHANT_ID = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0002';
const VIEWER = '{ viewer { kind clientId } }';

beforeAll(async () => {
  db = await freshDatabase();
  a = await startTestServer(db.orm);
  // Process B: the same public URL (tokens are for it), its own connections and its own cache.
  otherOrm = await openOrm(db.url);
  b = await startTestServer(otherOrm, { PUBLIC_URL: a.url });
  as = await discover(a.url);
});
afterAll(async () => {
  await b.close();
  await a.close();
  await otherOrm.close(true);
  await db.close();
});

async function merchantToken() {
  const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: MERCHANT_ID, name: 'Shop', scopes: ['payments:read'] });
  const token = await clientCredentialsToken(as, client.client_id, clientSecret!);
  return { clientId: client.client_id, clientSecret: clientSecret!, bearer: { authorization: `Bearer ${token.access_token}` }, accessToken: token.access_token };
}

/** B has answered the token before (so whatever B keeps, it keeps it as live). */
async function acceptedTwiceByB(bearer: Record<string, string>) {
  for (let i = 0; i < 2; i++) {
    const { body } = await graphql(b.url, VIEWER, {}, bearer);
    expect(body.errors).toBeUndefined();
    expect(body.data.viewer.kind).toBe('MERCHANT');
  }
}

describe('a cached token status is dropped at once in every process', () => {
  it('a token revoked through process A is refused by process B at its next request', async () => {
    const merchant = await merchantToken();
    await acceptedTwiceByB(merchant.bearer);
    const revoked = await oauth.revocationRequest(as, { client_id: merchant.clientId }, oauth.ClientSecretBasic(merchant.clientSecret), merchant.accessToken, insecure);
    await oauth.processRevocationResponse(revoked);

    const { status, body } = await graphql(b.url, VIEWER, {}, merchant.bearer);
    expect(status).toBe(401);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'TOKEN_REVOKED' });
  });

  it('a client disabled through process A: its token is refused by process B at its next request', async () => {
    const merchant = await merchantToken();
    const operator = await createClient(db.orm.em.fork(), { kind: 'OPERATOR', tenantId: null, name: 'Ops', scopes: ['clients:manage'] });
    const operatorToken = await clientCredentialsToken(as, operator.client.client_id, operator.clientSecret!, 'clients:manage');
    await acceptedTwiceByB(merchant.bearer);

    const disabled = await graphql(a.url, 'mutation($input: DisableOAuthClientInput!) { disableOAuthClient(input: $input) { userErrors { code } } }', { input: { clientId: merchant.clientId } }, { authorization: `Bearer ${operatorToken.access_token}` });
    expect(disabled.body.errors).toBeUndefined();
    expect(disabled.body.data.disableOAuthClient.userErrors).toEqual([]);

    const { status, body } = await graphql(b.url, VIEWER, {}, merchant.bearer);
    expect(status).toBe(401);
    expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'CLIENT_DISABLED' });
  });

  it('a client disabled in plain SQL (no API call at all) is refused by both processes at their next request', async () => {
    const merchant = await merchantToken();
    await acceptedTwiceByB(merchant.bearer);
    expect((await graphql(a.url, VIEWER, {}, merchant.bearer)).body.data.viewer.kind).toBe('MERCHANT');
    await db.orm.em.fork().execute(`update oauth_client set disabled = true where client_id = ?`, [merchant.clientId]);

    for (const server of [a, b]) {
      const { body } = await graphql(server.url, VIEWER, {}, merchant.bearer);
      expect(body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'CLIENT_DISABLED' });
    }
  });
});

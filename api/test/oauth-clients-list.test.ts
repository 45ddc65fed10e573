/**
 * `oauthClients` and `clientKindScopes` (issue 26): the operator lists every OAuth client, a party's
 * admin user (signed in to the console) its own party's, never with a secret; the scopes each client
 * kind may hold, for a registration form. The failures it guards against: one merchant's admin
 * reading another merchant's clients, a clerk who is no admin or a back end's token listing them,
 * a secret (or its hash) leaking through the list.
 */
import type { GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createPartyUser } from '../src/auth/party-users.service.js';
import { scopesForKind } from '../src/auth/scopes.js';
import { apiSchema } from '../src/schema.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { clientCredentialsToken, discover } from './support/oauth.js';
import { consoleToken } from './support/console-sign-in.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
const SHOP_A = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0301';
const SHOP_B = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0302';
const ids = {} as Record<'shopA' | 'shopB' | 'shopABackEnd' | 'shopBBackEnd' | 'operator', string>;
const tokens = {} as Record<'operator' | 'shopABackEnd' | 'shopAAdmin' | 'shopAClerk', string>;
const secrets: string[] = [];

const LIST = `query($kind: PrincipalKind, $first: Int, $after: String) {
  oauthClients(kind: $kind, first: $first, after: $after) {
    edges { node { clientId kind name scopes tokenEndpointAuthMethod redirectUris disabled tenant createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;
type Client = { clientId: string; kind: string; name: string; scopes: string[]; tenant: string | null; disabled: boolean; createdAt: string };

async function list(token: string, variables: Record<string, unknown> = {}) {
  const { status, body } = await graphql(server.url, LIST, variables, { authorization: `Bearer ${token}` });
  return { status, body, clients: (body.data?.oauthClients?.edges ?? []).map((e: { node: Client }) => e.node) as Client[] };
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  const as = await discover(server.url);
  const em = db.orm.em.fork();
  const redirectUris = [`${server.url}/console/`];
  ids.shopA = (await createClient(em, { kind: 'MERCHANT', tenantId: SHOP_A, name: 'Shop A console', scopes: ['payments:read', 'users:manage'], redirectUris })).client.client_id;
  ids.shopB = (await createClient(em, { kind: 'MERCHANT', tenantId: SHOP_B, name: 'Shop B console', scopes: ['payments:read', 'users:manage'], redirectUris })).client.client_id;
  const backEndA = await createClient(em, { kind: 'MERCHANT', tenantId: SHOP_A, name: 'Shop A back end', scopes: ['payments:read', 'users:manage'] });
  const backEndB = await createClient(em, { kind: 'MERCHANT', tenantId: SHOP_B, name: 'Shop B back end', scopes: ['payments:read'] });
  const operator = await createClient(em, { kind: 'OPERATOR', tenantId: null, name: 'ops', scopes: ['clients:manage'] });
  ids.shopABackEnd = backEndA.client.client_id;
  ids.shopBBackEnd = backEndB.client.client_id;
  ids.operator = operator.client.client_id;
  secrets.push(backEndA.clientSecret!, backEndB.clientSecret!, operator.clientSecret!);
  await createPartyUser(em, { clientId: ids.shopA, username: 'list-a-admin', password: 'list-a-admin-password', displayName: 'Shop A admin', admin: true });
  await createPartyUser(em, { clientId: ids.shopA, username: 'list-a-clerk', password: 'list-a-clerk-password', displayName: 'Shop A clerk' });
  tokens.operator = (await clientCredentialsToken(as, ids.operator, operator.clientSecret!, 'clients:manage')).access_token;
  tokens.shopABackEnd = (await clientCredentialsToken(as, ids.shopABackEnd, backEndA.clientSecret!, 'users:manage')).access_token;
  tokens.shopAAdmin = await consoleToken(server.url, ids.shopA, 'list-a-admin', 'list-a-admin-password', 'payments:read users:manage');
  tokens.shopAClerk = await consoleToken(server.url, ids.shopA, 'list-a-clerk', 'list-a-clerk-password', 'payments:read users:manage');
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

describe('oauthClients', () => {
  it('the operator lists every client, newest first, with kind, name, scopes, status and when it was made; a page at a time', async () => {
    const { body, clients } = await list(tokens.operator);
    expect(body.errors).toBeUndefined();
    expect(clients.map((c) => c.clientId)).toEqual([ids.operator, ids.shopBBackEnd, ids.shopABackEnd, ids.shopB, ids.shopA]);
    expect(clients.find((c) => c.clientId === ids.shopA)).toMatchObject({ kind: 'MERCHANT', name: 'Shop A console', scopes: ['payments:read', 'users:manage'], disabled: false, createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    const first = await list(tokens.operator, { first: 2 });
    const rest = await list(tokens.operator, { first: 10, after: first.body.data.oauthClients.pageInfo.endCursor });
    expect([...first.clients, ...rest.clients].map((c) => c.clientId)).toEqual(clients.map((c) => c.clientId));
    expect((await list(tokens.operator, { kind: 'OPERATOR' })).clients.map((c) => c.clientId)).toEqual([ids.operator]);
  });

  it('no answer holds a secret or its hash: the type has no field for them', async () => {
    const { body } = await list(tokens.operator);
    const text = JSON.stringify(body);
    const [row] = await db.orm.em.fork().execute<{ secret_hash: string }[]>(`select secret_hash from oauth_client where client_id = ?`, [ids.operator]);
    for (const s of [...secrets, row!.secret_hash]) expect(text).not.toContain(s);
    const fields = Object.keys(((await apiSchema()).getType('OAuthClient') as GraphQLObjectType).getFields());
    expect(fields.filter((f) => /secret|hash|jwks/i.test(f))).toEqual([]);
  });

  it('a party’s admin user, signed in to the console, lists its own party’s clients and no other party’s', async () => {
    const { body, clients } = await list(tokens.shopAAdmin);
    expect(body.errors).toBeUndefined();
    expect(clients.map((c) => c.clientId)).toEqual([ids.shopABackEnd, ids.shopA]);
  });

  it('a clerk who is no admin, and the party’s back end, are FORBIDDEN; so is an anonymous caller (UNAUTHENTICATED)', async () => {
    for (const token of [tokens.shopAClerk, tokens.shopABackEnd]) {
      const { body } = await list(token);
      expect(body.data).toBeNull();
      expect(body.errors.map((e: { extensions: { code: string } }) => e.extensions.code)).toEqual(['FORBIDDEN']);
    }
    const { status, body } = await graphql(server.url, LIST);
    expect(status).toBe(401);
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });
});

describe('clientKindScopes', () => {
  it('says, without a token, the scopes each kind may be registered with: those createOAuthClient accepts', async () => {
    const { body } = await graphql(server.url, '{ clientKindScopes { kind scopes { name description } } }');
    expect(body.errors).toBeUndefined();
    const byKind = Object.fromEntries(body.data.clientKindScopes.map((k: { kind: string; scopes: { name: string }[] }) => [k.kind, k.scopes.map((s) => s.name)]));
    expect(Object.keys(byKind)).toEqual(['MERCHANT', 'BILLER', 'ISSUER', 'CARDHOLDER_APP', 'OPERATOR']);
    for (const kind of ['MERCHANT', 'BILLER', 'ISSUER', 'CARDHOLDER_APP', 'OPERATOR'] as const) expect(byKind[kind]).toEqual(scopesForKind(kind));
    expect(byKind.MERCHANT).toContain('refunds:write');
    expect(byKind.MERCHANT).not.toContain('clients:manage');
    expect(body.data.clientKindScopes[0].scopes[0].description).toMatch(/\w{4,}/);
  });
});

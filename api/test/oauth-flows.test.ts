import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { Browser, clientCredentialsToken, discover, insecure } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let as: oauth.AuthorizationServer;
const TENANT = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0002';
const VIEWER = '{ viewer { kind clientId holderId scopes } }';

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  as = await discover(server.url);
});
afterAll(async () => {
  await server.close();
  await db.close();
});

/** Calls GraphQL as a protected resource, with DPoP when given, the way oauth4webapi does. */
async function viewerWith(accessToken: string, dpop?: oauth.DPoPHandle) {
  const res = await oauth.protectedResourceRequest(
    accessToken,
    'POST',
    new URL(`${server.url}/graphql`),
    new Headers({ 'content-type': 'application/json' }),
    JSON.stringify({ query: VIEWER }),
    { ...insecure, DPoP: dpop },
  );
  return (await res.json()) as { data?: any; errors?: any[] };
}

describe('private_key_jwt', () => {
  it('a biller authenticates with a signed assertion instead of a secret', async () => {
    const { privateKey, publicKey } = await oauth.generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await crypto.subtle.exportKey('jwk', publicKey)), kid: 'biller-key-1', alg: 'ES256', use: 'sig' };
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'BILLER', tenantId: TENANT, name: 'Water', scopes: ['bills:read', 'bills:write'], jwks: { keys: [jwk as any] } });
    expect(clientSecret).toBeNull();
    const c: oauth.Client = { client_id: client.client_id };
    const auth = oauth.PrivateKeyJwt({ key: privateKey, kid: 'biller-key-1' });
    const token = await oauth.processClientCredentialsResponse(as, c, await oauth.clientCredentialsGrantRequest(as, c, auth, new URLSearchParams({ scope: 'bills:read' }), insecure));
    expect((await viewerWith(token.access_token)).data.viewer).toMatchObject({ kind: 'BILLER', scopes: ['bills:read'] });

    // The same key also authenticates at our introspection endpoint.
    const introspection = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, oauth.PrivateKeyJwt({ key: privateKey, kid: 'biller-key-1' }), token.access_token, insecure));
    expect(introspection).toMatchObject({ active: true, client_id: client.client_id, scope: 'bills:read' });

    // An assertion signed by another key is refused.
    const stranger = await oauth.generateKeyPair('ES256');
    await expect(oauth.clientCredentialsGrantRequest(as, c, oauth.PrivateKeyJwt({ key: stranger.privateKey, kid: 'biller-key-1' }), new URLSearchParams(), insecure).then((r) => oauth.processClientCredentialsResponse(as, c, r))).rejects.toBeTruthy();
  });
});

describe('DPoP', () => {
  it('a client registered for DPoP gets a bound token that works only with a fresh proof from its key', async () => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: TENANT, name: 'Shop', scopes: ['payments:read'], dpopBound: true });
    const c: oauth.Client = { client_id: client.client_id };
    const dpop = oauth.DPoP(c, await oauth.generateKeyPair('ES256'));
    const token = await clientCredentialsToken(as, client.client_id, clientSecret!, undefined, dpop);
    expect(token.token_type.toLowerCase()).toBe('dpop');
    expect((await viewerWith(token.access_token, dpop)).data.viewer.kind).toBe('MERCHANT');

    // Without a proof, as a Bearer token: refused.
    const bare = await graphql(server.url, VIEWER, {}, { authorization: `Bearer ${token.access_token}` });
    expect(bare.status).toBe(401);
    expect(bare.body.errors[0].extensions).toEqual({ code: 'UNAUTHENTICATED', reason: 'DPOP_PROOF_REQUIRED' });

    // As a Bearer token, even with a valid proof: refused (RFC 9449 §7.1).
    const proofOnly = await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.access_token}` },
      body: JSON.stringify({ query: VIEWER }),
    });
    expect(proofOnly.status).toBe(401);

    // With a proof from another key: refused.
    const thief = oauth.DPoP(c, await oauth.generateKeyPair('ES256'));
    await expect(viewerWith(token.access_token, thief)).rejects.toMatchObject({
      cause: [expect.objectContaining({ scheme: 'dpop', parameters: expect.objectContaining({ error_description: expect.stringContaining('not the key the token is bound to') }) })],
    });
  });

  it('a client not registered for DPoP must not send a Bearer token as DPoP', async () => {
    const { client, clientSecret } = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: TENANT, name: 'Shop', scopes: ['payments:read'] });
    const token = await clientCredentialsToken(as, client.client_id, clientSecret!);
    const res = await graphql(server.url, VIEWER, {}, { authorization: `DPoP ${token.access_token}` });
    expect(res.body.errors[0].extensions.reason).toBe('DPOP_PROOF_INVALID');
  });
});

/** A minimal cookie jar, as a browser keeps the authorization server's session cookies. */
describe('authorization code with PKCE', () => {
  it('a cardholder signs in, consents, and the app acts for that cardholder (across two API processes)', async () => {
    // A second API process on the same database: the sign-in it serves continues the flow the
    // first one started, because the authorization server keeps its state in PostgreSQL.
    const other = await startTestServer(db.orm, { PUBLIC_URL: server.url });
    try {
      const holder = await createCardholder(db.orm.em.fork(), { username: 'lin', password: 'correct horse', displayName: 'Lin' });
      const redirectUri = 'http://127.0.0.1:8765/callback';
      const { client } = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: TENANT, name: 'Card App', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
      const c: oauth.Client = { client_id: client.client_id, token_endpoint_auth_method: 'none' };

      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const authorize = new URL(as.authorization_endpoint!);
      authorize.search = new URLSearchParams({
        client_id: client.client_id,
        response_type: 'code',
        redirect_uri: redirectUri,
        scope: 'card:read',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();

      const browser = new Browser();
      const loginPage = await browser.follow(await browser.request(authorize.href), server.url);
      if (loginPage instanceof URL) throw new Error(`redirected away: ${loginPage.href}`);
      const loginHtml = await loginPage.text();
      expect(loginHtml, loginHtml.split("</style>")[1]).toContain('Card App');
      const loginAction = new URL(loginHtml.match(/action="([^"]+\/login)"/)![1]!, other.url);

      // A wrong password is refused on the page itself.
      const wrong = await browser.request(loginAction.href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=lin&password=nope' });
      expect(wrong.status).toBe(401);
      expect(await wrong.text()).toContain('Wrong username or password');

      const consentPage = await browser.follow(
        await browser.request(loginAction.href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=lin&password=correct+horse' }),
        server.url,
      );
      if (consentPage instanceof URL) throw new Error(`redirected away: ${consentPage.href}`);
      const consentHtml = await consentPage.text();
      expect(consentHtml).toContain('card:read');
      const confirmAction = new URL(consentHtml.match(/action="([^"]+\/confirm)"/)![1]!, server.url);
      const back = await browser.follow(await browser.request(confirmAction.href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=allow' }), server.url);
      expect(back).toBeInstanceOf(URL);
      const callback = back as URL;
      expect(`${callback.origin}${callback.pathname}`).toBe(redirectUri);

      const params = oauth.validateAuthResponse(as, c, callback, state);
      const tokenResponse = await oauth.authorizationCodeGrantRequest(as, c, oauth.None(), params, redirectUri, verifier, insecure);
      const token = await oauth.processAuthorizationCodeResponse(as, c, tokenResponse);
      const viewer = (await viewerWith(token.access_token)).data.viewer;
      expect(viewer).toMatchObject({ kind: 'CARDHOLDER_APP', clientId: client.client_id, scopes: ['card:read'] });
      expect(Buffer.from(viewer.holderId, 'base64url').toString()).toBe(`Cardholder:${holder.id}`);
    } finally {
      await other.close();
    }
  });
});

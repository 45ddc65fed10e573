/**
 * The web console's sign-in (issue 26): a party's people sign in through that party's sign-in client
 * (a public client, authorization code + PKCE), and the token acts as that party. The attacks: a
 * cardholder, or another party's user, getting a token of a party they do not belong to, with their
 * own password or with the sign-in session their browser already has.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { createPartyUser } from '../src/auth/party-users.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { Browser, discover, insecure } from './support/oauth.js';
import { graphql, startTestServer, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let as: oauth.AuthorizationServer;
const MERCHANT = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0101';
const BILLER = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0102';
const CARD_COMPANY = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0103';
const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
let redirectUri: string;
let merchantConsole: string;
let billerConsole: string;
let cardholderApp: string;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  as = await discover(server.url);
  redirectUri = `${server.url}/console/`;
  const em = db.orm.em.fork();
  const signIn = async (kind: 'MERCHANT' | 'BILLER' | 'CARDHOLDER_APP', tenantId: string, scopes: string[]) =>
    (await createClient(em, { kind, tenantId, name: `${kind} console`, scopes, redirectUris: [redirectUri] })).client;
  const merchant = await signIn('MERCHANT', MERCHANT, ['payments:read', 'refunds:write']);
  expect(merchant.auth_method).toBe('none');
  merchantConsole = merchant.client_id;
  billerConsole = (await signIn('BILLER', BILLER, ['bills:read'])).client_id;
  cardholderApp = (await signIn('CARDHOLDER_APP', CARD_COMPANY, ['card:read'])).client_id;
  await createPartyUser(em, { clientId: merchantConsole, username: 'shop-clerk', password: 'clerk-password', displayName: 'Shop clerk' });
  await createPartyUser(em, { clientId: billerConsole, username: 'water-clerk', password: 'water-password', displayName: 'Water clerk' });
  await createCardholder(em, { username: 'lin', password: 'lin-password', displayName: 'Lin' });
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

/** Follows redirects on our origin until one goes to the console's redirect URI (same origin here). */
async function follow(browser: Browser, res: Response): Promise<Response | URL> {
  while (res.status >= 300 && res.status < 400) {
    const next = new URL(res.headers.get('location')!, server.url);
    if (next.href.startsWith(redirectUri)) return next;
    res = await browser.request(next.href);
  }
  return res;
}

/** Starts an authorization request in `browser` and follows it to our page (or away). */
async function authorize(browser: Browser, clientId: string, scope: string) {
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
  const page = await follow(browser, await browser.request(url.href));
  // Away: straight back to the redirect URI with a code (a session and a grant were there already).
  if (page instanceof URL) return { away: page, html: '', verifier, state };
  return { away: undefined, html: await page.text(), verifier, state };
}

async function logIn(browser: Browser, html: string, username: string, password: string) {
  const action = new URL(html.match(/action="([^"]+\/login)"/)![1]!, server.url);
  const res = await browser.request(action.href, { ...form, body: new URLSearchParams({ username, password }).toString() });
  return res.status === 401 ? { status: 401, html: await res.text() } : { status: res.status, next: await follow(browser, res) };
}

/** Consents on the page and exchanges the code: the access token. */
async function allowAndExchange(browser: Browser, consent: Response, clientId: string, started: { verifier: string; state: string }) {
  const action = new URL((await consent.text()).match(/action="([^"]+\/confirm)"/)![1]!, server.url);
  const back = await follow(browser, await browser.request(action.href, { ...form, body: 'decision=allow' }));
  if (!(back instanceof URL)) throw new Error(`no redirect back (status ${back.status})`);
  const client: oauth.Client = { client_id: clientId, token_endpoint_auth_method: 'none' };
  const params = oauth.validateAuthResponse(as, client, back, started.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, started.verifier, insecure);
  return (await oauth.processAuthorizationCodeResponse(as, client, response)).access_token;
}

const isLoginPage = (html: string) => /action="[^"]+\/login"/.test(html);

describe('a party user signs in to the console', () => {
  it('through the party’s sign-in client: the token acts as that party, with the scopes asked for', async () => {
    const browser = new Browser();
    const started = await authorize(browser, merchantConsole, 'payments:read refunds:write');
    expect(started.html).toContain('Sign in to <strong>MERCHANT console</strong>');
    const login = await logIn(browser, started.html, 'shop-clerk', 'clerk-password');
    expect(login.next).toBeInstanceOf(Response);
    const token = await allowAndExchange(browser, login.next as Response, merchantConsole, started);
    const { body } = await graphql(server.url, '{ viewer { kind clientId tenantId holderId scopes } }', undefined, { authorization: `Bearer ${token}` });
    expect(body.data.viewer).toMatchObject({ kind: 'MERCHANT', clientId: merchantConsole, holderId: null, scopes: ['payments:read', 'refunds:write'] });
  });

  it('the console client cannot get tokens of its own (no client credentials)', async () => {
    const client: oauth.Client = { client_id: merchantConsole, token_endpoint_auth_method: 'none' };
    const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.None(), new URLSearchParams({ scope: 'payments:read' }), insecure);
    expect(response.status).toBe(400);
    expect(await response.json()).not.toHaveProperty('access_token');
  });
});

describe('nobody signs in as a party they do not belong to', () => {
  it.each([
    ['a cardholder, with the right password', 'lin', 'lin-password'],
    ['another party’s user, with the right password', 'water-clerk', 'water-password'],
    ['the party’s user with a wrong password', 'shop-clerk', 'nope'],
  ])('%s is refused on the merchant’s sign-in page', async (_case, username, password) => {
    const browser = new Browser();
    const started = await authorize(browser, merchantConsole, 'payments:read');
    const login = await logIn(browser, started.html, username, password);
    expect(login.status).toBe(401);
    expect(login.html).toContain('Wrong username or password.');
  });

  it('a party user cannot sign in to a cardholder app', async () => {
    const browser = new Browser();
    const started = await authorize(browser, cardholderApp, 'card:read');
    expect((await logIn(browser, started.html, 'shop-clerk', 'clerk-password')).status).toBe(401);
  });

  it.each([
    ['a cardholder signed in for an app', () => cardholderApp, 'card:read', 'lin', 'lin-password'],
    ['the biller’s clerk signed in to the biller console', () => billerConsole, 'bills:read', 'water-clerk', 'water-password'],
  ])('%s, going on to the merchant console in the same browser, is asked to sign in again (the session is not reused)', async (_case, firstClient, scope, username, password) => {
    const browser = new Browser();
    const first = await authorize(browser, firstClient(), scope);
    const login = await logIn(browser, first.html, username, password);
    await allowAndExchange(browser, login.next as Response, firstClient(), first);

    const second = await authorize(browser, merchantConsole, 'payments:read');
    expect(second.away).toBeUndefined();
    expect(isLoginPage(second.html)).toBe(true);
  });

  it('the merchant’s clerk, already signed in, goes straight on (the session is reused for its own party)', async () => {
    const browser = new Browser();
    const first = await authorize(browser, merchantConsole, 'payments:read');
    const login = await logIn(browser, first.html, 'shop-clerk', 'clerk-password');
    await allowAndExchange(browser, login.next as Response, merchantConsole, first);
    const again = await authorize(browser, merchantConsole, 'payments:read');
    expect(again.away?.searchParams.get('code')).toEqual(expect.any(String));
  });
});

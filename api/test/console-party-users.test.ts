/**
 * Party users made without the demo seed (issue 26): the operator makes a user for any party, a
 * party's admin user (signed in to the console) for its own party only, each with an initial
 * password shown once that signs nobody in: the first sign-in only leads to choosing one's own.
 * The attacks: a party's admin making users of another party (who would act as that party), a
 * clerk who is no admin, or a back end's token, making users; an initial password, leaked from
 * where it was handed over, used to act as the party.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { createPartyUser } from '../src/auth/party-users.service.js';
import { createProgram } from '../src/cli/program.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { Browser, clientCredentialsToken, discover, insecure } from './support/oauth.js';
import { graphql, startTestServer, TEST_KEK, type TestServer } from './support/server.js';

let db: TestDatabase;
let server: TestServer;
let as: oauth.AuthorizationServer;
const SHOP_A = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0201';
const SHOP_B = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0202';
const form = { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } };
let redirectUri: string;
const clients = {} as Record<'shopA' | 'shopB' | 'app' | 'shopABackEnd', string>;
const tokens = {} as Record<'operator' | 'shopABackEnd', string>;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  as = await discover(server.url);
  redirectUri = `${server.url}/console/`;
  const em = db.orm.em.fork();
  const signInClient = async (kind: 'MERCHANT' | 'CARDHOLDER_APP', tenantId: string, scopes: string[]) => (await createClient(em, { kind, tenantId, name: `${kind} ${tenantId.slice(-2)} console`, scopes, redirectUris: [redirectUri] })).client.client_id;
  clients.shopA = await signInClient('MERCHANT', SHOP_A, ['payments:read', 'users:manage']);
  clients.shopB = await signInClient('MERCHANT', SHOP_B, ['payments:read', 'users:manage']);
  clients.app = await signInClient('CARDHOLDER_APP', SHOP_A, ['card:read']);
  await createPartyUser(em, { clientId: clients.shopA, username: 'shop-a-admin', password: 'shop-a-admin-password', displayName: 'Shop A admin', admin: true });
  await createPartyUser(em, { clientId: clients.shopA, username: 'shop-a-clerk', password: 'shop-a-clerk-password', displayName: 'Shop A clerk' });
  await createCardholder(em, { username: 'lin', password: 'lin-password', displayName: 'Lin' });
  const operator = await createClient(em, { kind: 'OPERATOR', tenantId: null, name: 'ops', scopes: ['clients:manage'] });
  tokens.operator = (await clientCredentialsToken(as, operator.client.client_id, operator.clientSecret!, 'clients:manage')).access_token;
  const backEnd = await createClient(em, { kind: 'MERCHANT', tenantId: SHOP_A, name: 'Shop A back end', scopes: ['payments:read', 'users:manage'] });
  clients.shopABackEnd = backEnd.client.client_id;
  tokens.shopABackEnd = (await clientCredentialsToken(as, backEnd.client.client_id, backEnd.clientSecret!, 'users:manage')).access_token;
});
afterAll(async () => {
  await server?.close();
  await db?.close();
});

const CREATE = `mutation($input: CreatePartyUserInput!) { createPartyUser(input: $input) {
  user { id username displayName signInClient admin mustChangePassword } initialPassword userErrors { code field message } } }`;

async function createUser(token: string, input: { signInClient: string; username: string; displayName: string; admin?: boolean }) {
  const { body } = await graphql(server.url, CREATE, { input }, { authorization: `Bearer ${token}` });
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data.createPartyUser as { user: { username: string; signInClient: string; admin: boolean; mustChangePassword: boolean } | null; initialPassword: string | null; userErrors: { code: string; field: string[] }[] };
}

/** Follows redirects on our origin until one goes to the console's redirect URI. */
async function follow(browser: Browser, res: Response): Promise<Response | URL> {
  while (res.status >= 300 && res.status < 400) {
    const next = new URL(res.headers.get('location')!, server.url);
    if (next.href.startsWith(redirectUri)) return next;
    res = await browser.request(next.href);
  }
  return res;
}

/** Opens the sign-in of `clientId` in a fresh browser: the login page's HTML and what the code exchange needs. */
async function startSignIn(clientId: string, scope: string) {
  const browser = new Browser();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope, state, code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' }).toString();
  const page = await follow(browser, await browser.request(url.href));
  if (page instanceof URL) throw new Error('signed in without a login page');
  return { browser, verifier, state, clientId, html: await page.text() };
}

type SignIn = Awaited<ReturnType<typeof startSignIn>>;

/** Posts the page's form (`/login` or `/password`) with these fields; the answer, followed. */
async function submit(s: SignIn, html: string, step: 'login' | 'password', fields: Record<string, string>) {
  const action = new URL(html.match(new RegExp(`action="([^"]+/${step})"`))![1]!, server.url);
  const hidden = Object.fromEntries([...html.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]));
  return follow(s.browser, await s.browser.request(action.href, { ...form, body: new URLSearchParams({ ...hidden, ...fields }).toString() }));
}

/** Allows on the consent page and exchanges the code: the access token. */
async function allow(s: SignIn, consent: Response | URL) {
  if (consent instanceof URL) throw new Error('no consent page');
  const action = new URL((await consent.text()).match(/action="([^"]+\/confirm)"/)![1]!, server.url);
  const back = await follow(s.browser, await s.browser.request(action.href, { ...form, body: 'decision=allow' }));
  if (!(back instanceof URL)) throw new Error(`no redirect back (status ${back.status})`);
  const client: oauth.Client = { client_id: s.clientId, token_endpoint_auth_method: 'none' };
  const params = oauth.validateAuthResponse(as, client, back, s.state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, s.verifier, insecure);
  return (await oauth.processAuthorizationCodeResponse(as, client, response)).access_token;
}

/** A party user's console token, signing in with a chosen password. */
async function consoleToken(clientId: string, username: string, password: string, scope = 'payments:read users:manage') {
  const s = await startSignIn(clientId, scope);
  return allow(s, await submit(s, s.html, 'login', { username, password }));
}

const isConsent = async (res: Response | URL) => !(res instanceof URL) && res.status === 200 && /action="[^"]+\/confirm"/.test(await res.clone().text());

describe('the operator makes a party’s user', () => {
  it('with an initial password shown once, that only leads to choosing one’s own; then the person signs in as the party', async () => {
    const made = await createUser(tokens.operator, { signInClient: clients.shopA, username: 'wang.fang', displayName: '王芳 Clerk' });
    expect(made.userErrors).toEqual([]);
    expect(made.user).toMatchObject({ username: 'wang.fang', signInClient: clients.shopA, admin: false, mustChangePassword: true });
    expect(made.initialPassword).toMatch(/^[\w-]{20}$/);
    const [row] = await db.orm.em.fork().execute<{ password_hash: string }[]>(`select password_hash from party_user where username = 'wang.fang'`);
    expect(row!.password_hash).toMatch(/^scrypt\$/);
    expect(row!.password_hash).not.toContain(made.initialPassword);

    // The initial password signs nobody in: the answer is the page to choose one's own, no code, no consent.
    const s = await startSignIn(clients.shopA, 'payments:read');
    const first = await submit(s, s.html, 'login', { username: 'wang.fang', password: made.initialPassword! });
    expect(first).toBeInstanceOf(Response);
    const choose = await (first as Response).text();
    expect(choose).toContain('Choose your password');
    expect(choose).not.toContain('/confirm');

    // Each refusal says why, and leaves the initial password in place.
    const refusals: [Record<string, string>, number, string][] = [
      [{ current: 'not-the-initial-one', next: 'my own long password', repeated: 'my own long password' }, 401, 'Wrong username or password.'],
      [{ current: made.initialPassword!, next: 'short', repeated: 'short' }, 400, 'at least 12 characters'],
      [{ current: made.initialPassword!, next: 'my own long password', repeated: 'my own long passwort' }, 400, 'The two new passwords differ.'],
      [{ current: made.initialPassword!, next: made.initialPassword!, repeated: made.initialPassword! }, 400, 'other than the one you were given'],
    ];
    for (const [fields, status, message] of refusals) {
      const res = (await submit(s, choose, 'password', fields)) as Response;
      expect([res.status, await res.text()]).toEqual([status, expect.stringContaining(message)]);
    }

    const chosen = await submit(s, choose, 'password', { current: made.initialPassword!, next: 'my own long password', repeated: 'my own long password' });
    expect(await isConsent(chosen)).toBe(true);
    const token = await allow(s, chosen);
    const { body } = await graphql(server.url, '{ viewer { kind tenantId scopes } }', undefined, { authorization: `Bearer ${token}` });
    expect(body.data.viewer).toMatchObject({ kind: 'MERCHANT', scopes: ['payments:read'] });

    // The initial password is dead; the chosen one signs in straight to the consent.
    const again = await startSignIn(clients.shopA, 'payments:read');
    expect(((await submit(again, again.html, 'login', { username: 'wang.fang', password: made.initialPassword! })) as Response).status).toBe(401);
    expect(await isConsent(await submit(again, again.html, 'login', { username: 'wang.fang', password: 'my own long password' }))).toBe(true);
  });

  it.each([
    ['a user name with a space', () => ({ signInClient: clients.shopA, username: 'wang fang', displayName: 'W' }), 'INVALID_INPUT', 'username'],
    ['an empty display name', () => ({ signInClient: clients.shopA, username: 'nobody-1', displayName: '  ' }), 'INVALID_INPUT', 'displayName'],
    ['a user name taken (by another party’s user)', () => ({ signInClient: clients.shopB, username: 'shop-a-clerk', displayName: 'B' }), 'DUPLICATE_NAME', 'username'],
    ['a cardholder app (its people are cardholders)', () => ({ signInClient: clients.app, username: 'nobody-2', displayName: 'N' }), 'NOT_FOUND', 'signInClient'],
    ['a back end’s client (no sign-in)', () => ({ signInClient: clients.shopABackEnd, username: 'nobody-3', displayName: 'N' }), 'NOT_FOUND', 'signInClient'],
    ['no such client', () => ({ signInClient: 'oc_merchant_nope', username: 'nobody-4', displayName: 'N' }), 'NOT_FOUND', 'signInClient'],
  ])('%s is refused, and nothing is made', async (_case, input, code, field) => {
    const made = await createUser(tokens.operator, input());
    expect(made).toEqual({ user: null, initialPassword: null, userErrors: [expect.objectContaining({ code, field: ['input', field] })] });
    const [count] = await db.orm.em.fork().execute<{ n: number }[]>(`select count(*)::int as n from party_user where username like 'nobody-%' or username = 'wang fang'`);
    expect(count!.n).toBe(0);
  });
});

describe('a party’s admin makes its own party’s users, and no other', () => {
  it('the admin, signed in to the console, makes a user (an admin too) of the party', async () => {
    const token = await consoleToken(clients.shopA, 'shop-a-admin', 'shop-a-admin-password');
    const made = await createUser(token, { signInClient: clients.shopA, username: 'li.lei', displayName: '李雷', admin: true });
    expect(made.userErrors).toEqual([]);
    expect(made.user).toMatchObject({ signInClient: clients.shopA, admin: true, mustChangePassword: true });
  });

  it('another party’s sign-in client is not found for the admin, and no user of that party is made', async () => {
    const token = await consoleToken(clients.shopA, 'shop-a-admin', 'shop-a-admin-password');
    const made = await createUser(token, { signInClient: clients.shopB, username: 'intruder', displayName: 'Acting as shop B' });
    expect(made.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'signInClient'] })]);
    expect(await db.orm.em.fork().execute(`select 1 from party_user where username = 'intruder'`)).toEqual([]);
  });

  it.each([
    ['a clerk who is no admin', () => consoleToken(clients.shopA, 'shop-a-clerk', 'shop-a-clerk-password')],
    ['the party’s back end (its token names no person)', async () => tokens.shopABackEnd],
  ])('%s is refused (FORBIDDEN_OPERATION)', async (_case, token) => {
    const made = await createUser(await token(), { signInClient: clients.shopA, username: 'not-made', displayName: 'N' });
    expect(made.userErrors).toEqual([expect.objectContaining({ code: 'FORBIDDEN_OPERATION' })]);
    expect(await db.orm.em.fork().execute(`select 1 from party_user where username = 'not-made'`)).toEqual([]);
  });

  it('without the users:manage scope the field is FORBIDDEN', async () => {
    const token = await consoleToken(clients.shopA, 'shop-a-admin', 'shop-a-admin-password', 'payments:read');
    const { body } = await graphql(server.url, CREATE, { input: { signInClient: clients.shopA, username: 'not-made-2', displayName: 'N' } }, { authorization: `Bearer ${token}` });
    expect(body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('`onecard users create`', () => {
  const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY, dir: process.env.ONECARD_DATA_DIR };
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-users-'));
    Object.assign(process.env, { DATABASE_URL: db.url, ONECARD_KEY_ENCRYPTION_KEY: TEST_KEK, ONECARD_DATA_DIR: dataDir });
  });
  afterAll(async () => {
    for (const [name, value] of [['DATABASE_URL', saved.url], ['ONECARD_KEY_ENCRYPTION_KEY', saved.kek], ['ONECARD_DATA_DIR', saved.dir]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('makes the party’s first admin and prints the initial password once, which leads to choosing one’s own', async () => {
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((...parts) => void lines.push(parts.join(' ')));
    try {
      await createProgram().exitOverride().parseAsync(['node', 'onecard', 'users', 'create', '--client', clients.shopB, '--username', 'shop-b-admin', '--name', 'Shop B admin', '--admin', '--json']);
    } finally {
      log.mockRestore();
    }
    const out = JSON.parse(lines.join('\n'));
    expect(out).toEqual({ username: 'shop-b-admin', sign_in_client: clients.shopB, admin: true, initial_password: expect.stringMatching(/^[\w-]{20}$/) });
    const s = await startSignIn(clients.shopB, 'payments:read');
    const first = (await submit(s, s.html, 'login', { username: 'shop-b-admin', password: out.initial_password })) as Response;
    expect(await first.text()).toContain('Choose your password');

    await expect(createProgram().exitOverride().parseAsync(['node', 'onecard', 'users', 'create', '--client', clients.app, '--username', 'x-user', '--name', 'X'])).rejects.toThrow(/no console sign-in client/);
  });
});

import { randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { Browser, discover } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

/**
 * Issue 18, problem 4: guessing a client secret or a cardholder's password is throttled, per
 * client or account and per IP, with a back-off that grows and ends. Small numbers here; the
 * defaults are in docs/security.md#throttling-of-sign-in-and-token-requests.
 */

const TENANT = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0002';
const REDIRECT_URI = 'http://127.0.0.1:8765/callback';
const PER_KEY = {
  TOKEN_THROTTLE_CLIENT_FAILURES: '3',
  TOKEN_THROTTLE_CLIENT_BACKOFF_SECONDS: '1',
  TOKEN_THROTTLE_CLIENT_MAX_BACKOFF_SECONDS: '2',
  TOKEN_THROTTLE_IP_FAILURES: '100000',
  SIGNIN_THROTTLE_ACCOUNT_FAILURES: '3',
  SIGNIN_THROTTLE_ACCOUNT_BACKOFF_SECONDS: '1',
  SIGNIN_THROTTLE_ACCOUNT_MAX_BACKOFF_SECONDS: '2',
  SIGNIN_THROTTLE_IP_FAILURES: '100000',
};
const PER_IP = {
  TOKEN_THROTTLE_CLIENT_FAILURES: '100000',
  TOKEN_THROTTLE_IP_FAILURES: '5',
  TOKEN_THROTTLE_IP_BACKOFF_SECONDS: '1',
  TOKEN_THROTTLE_IP_MAX_BACKOFF_SECONDS: '2',
  SIGNIN_THROTTLE_ACCOUNT_FAILURES: '100000',
  SIGNIN_THROTTLE_IP_FAILURES: '5',
  SIGNIN_THROTTLE_IP_BACKOFF_SECONDS: '1',
  SIGNIN_THROTTLE_IP_MAX_BACKOFF_SECONDS: '2',
};

let db: TestDatabase;
let ipDb: TestDatabase;
let server: TestServer;
let ipServer: TestServer;

beforeAll(async () => {
  // Two databases: the throttle counts live in the database, and the per-IP server must not see the other's.
  [db, ipDb] = await Promise.all([freshDatabase(), freshDatabase()]);
  [server, ipServer] = await Promise.all([startTestServer(db.orm, PER_KEY), startTestServer(ipDb.orm, PER_IP)]);
});
afterAll(async () => {
  await Promise.all([server?.close(), ipServer?.close()]);
  await Promise.all([db?.close(), ipDb?.close()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client-credentials request with HTTP Basic, answered as status, Retry-After and body. */
async function tokenRequest(url: string, clientId: string, secret: string) {
  const res = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: string; error_description?: string; access_token?: string } };
}

async function merchantClient(database: TestDatabase) {
  const { client, clientSecret } = await createClient(database.orm.em.fork(), { kind: 'MERCHANT', tenantId: TENANT, name: 'Shop', scopes: ['payments:read'] });
  return { clientId: client.client_id, secret: clientSecret! };
}

/** Waits out a block: what its owner does after reading Retry-After. */
async function waitOut(retryAfter: string | null) {
  expect(Number(retryAfter)).toBeGreaterThan(0);
  await sleep(Number(retryAfter) * 1000 + 100);
}

describe('guessing a client secret at the token endpoint', () => {
  it('100 wrong secrets, then the right one is refused with 429 and Retry-After until the back-off ends', async () => {
    const { clientId, secret } = await merchantClient(db);
    const answers = [];
    for (let i = 0; i < 100; i++) answers.push(await tokenRequest(server.url, clientId, `wrong-${i}`));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([401, 401, 401]);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThan(90);
    // The right secret is sent right after a counted failure (a 401 starts a fresh block): after a
    // 429 the block it reported may end in the milliseconds before the next request (a CI run saw 200).
    let last = answers.at(-1)!;
    while (last.status !== 401) {
      await waitOut(last.retryAfter);
      last = await tokenRequest(server.url, clientId, 'wrong-again');
    }

    const right = await tokenRequest(server.url, clientId, secret);
    expect(right.status).toBe(429);
    expect(right.body.access_token).toBeUndefined();
    expect(right.body.error).toBe('temporarily_unavailable');
    expect(right.body.error_description).toMatch(/too many failed client authentications; try again in \d+ seconds?/);

    await waitOut(right.retryAfter);
    const after = await tokenRequest(server.url, clientId, secret);
    expect(after.status).toBe(200);
    expect(after.body.access_token).toBeTruthy();
  }, 60_000);

  it('the back-off grows with each failure past the free ones, up to its ceiling, and a success resets it', async () => {
    const { clientId, secret } = await merchantClient(db);
    for (let i = 0; i < 3; i++) expect((await tokenRequest(server.url, clientId, 'wrong')).status).toBe(401);
    expect((await tokenRequest(server.url, clientId, 'wrong')).status).toBe(401); // the 4th: blocked 1 s
    const first = await tokenRequest(server.url, clientId, secret);
    expect(first.status).toBe(429);
    expect(first.retryAfter).toBe('1');
    await waitOut(first.retryAfter);
    expect((await tokenRequest(server.url, clientId, 'wrong')).status).toBe(401); // the 5th: blocked 2 s
    const second = await tokenRequest(server.url, clientId, secret);
    expect(second.retryAfter).toBe('2');
    await waitOut(second.retryAfter);
    expect((await tokenRequest(server.url, clientId, 'wrong')).status).toBe(401); // the 6th: still 2 s, the ceiling
    const third = await tokenRequest(server.url, clientId, secret);
    expect(third.retryAfter).toBe('2');
    await waitOut(third.retryAfter);

    expect((await tokenRequest(server.url, clientId, secret)).status).toBe(200);
    // Reset: three failures are free again.
    for (let i = 0; i < 3; i++) expect((await tokenRequest(server.url, clientId, 'wrong')).status).toBe(401);
    expect((await tokenRequest(server.url, clientId, secret)).status).toBe(200);
  }, 60_000);

  it('another client is not held back by one being guessed', async () => {
    const guessed = await merchantClient(db);
    const other = await merchantClient(db);
    for (let i = 0; i < 10; i++) await tokenRequest(server.url, guessed.clientId, 'wrong');
    expect((await tokenRequest(server.url, guessed.clientId, guessed.secret)).status).toBe(429);
    expect((await tokenRequest(server.url, other.clientId, other.secret)).status).toBe(200);
  });

  it('one IP trying many client ids is throttled as a whole', async () => {
    const { clientId, secret } = await merchantClient(ipDb);
    for (let i = 0; i < 6; i++) expect((await tokenRequest(ipServer.url, `oc_merchant_${randomUUID()}`, 'guess')).status).toBe(401);
    const right = await tokenRequest(ipServer.url, clientId, secret);
    expect(right.status).toBe(429);
    await waitOut(right.retryAfter);
    expect((await tokenRequest(ipServer.url, clientId, secret)).status).toBe(200);
  }, 30_000);
});

/** A sign-in page of a fresh authorization request, and a way to post the form on it. */
async function signInForm(url: string, clientId: string) {
  const as = await discover(url);
  const authorize = new URL(as.authorization_endpoint!);
  authorize.search = new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'card:read', state: 's', code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256' }).toString();
  const browser = new Browser();
  const login = await browser.follow(await browser.request(authorize.href), url);
  if (login instanceof URL) throw new Error(`redirected away: ${login.href}`);
  const action = new URL((await login.text()).match(/action="([^"]+\/login)"/)![1]!, url);
  return async (username: string, password: string) => {
    const res = await browser.request(action.href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username, password }).toString() });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), page: res.status < 300 || res.status >= 400 ? await res.text() : '', signedIn: res.status >= 300 && res.status < 400 };
  };
}

async function cardholderApp(database: TestDatabase) {
  const { client } = await createClient(database.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: TENANT, name: 'Card app', scopes: ['card:read'], redirectUris: [REDIRECT_URI] });
  return client.client_id;
}

describe('guessing a cardholder’s password on the sign-in page', () => {
  it('30 wrong passwords, then the right one is refused with a page that says to wait; after the wait it works', async () => {
    const username = `holder-${randomUUID().slice(0, 8)}`;
    await createCardholder(db.orm.em.fork(), { username, password: 'the-right-password', displayName: 'Holder' });
    const signIn = await signInForm(server.url, await cardholderApp(db));
    const answers = [];
    for (let i = 0; i < 30; i++) answers.push(await signIn(username, `guess-${i}`));
    expect(answers.slice(0, 3).map((a) => a.status)).toEqual([401, 401, 401]);
    expect(answers.filter((a) => a.status === 429).length).toBeGreaterThan(20);

    const right = await signIn(username, 'the-right-password');
    expect(right.signedIn).toBe(false);
    expect(right.status).toBe(429);
    expect(right.page).toMatch(/Too many sign-in attempts\. Wait \d+ seconds? and try again\./);

    await waitOut(right.retryAfter);
    expect((await signIn(username, 'the-right-password')).signedIn).toBe(true);
  }, 60_000);

  it('the wait page is the same whether or not the account exists', async () => {
    const username = `holder-${randomUUID().slice(0, 8)}`;
    await createCardholder(db.orm.em.fork(), { username, password: 'the-right-password', displayName: 'Holder' });
    const signIn = await signInForm(server.url, await cardholderApp(db));
    const pageAfterGuesses = async (name: string) => {
      for (let i = 0; i < 4; i++) await signIn(name, 'guess');
      const blocked = await signIn(name, 'guess');
      return { status: blocked.status, page: blocked.page.replace(/\d+ seconds?/, 'N seconds') };
    };
    const existing = await pageAfterGuesses(username);
    const missing = await pageAfterGuesses(`nobody-${randomUUID().slice(0, 8)}`);
    expect(existing.status).toBe(429);
    expect(missing).toEqual(existing);
  }, 30_000);

  it('the owner is never locked out for longer than the ceiling, and signing in resets the count', async () => {
    const username = `holder-${randomUUID().slice(0, 8)}`;
    await createCardholder(db.orm.em.fork(), { username, password: 'the-right-password', displayName: 'Holder' });
    const signIn = await signInForm(server.url, await cardholderApp(db));
    for (let round = 0; round < 4; round++) {
      // An attacker keeps guessing as soon as each block ends.
      let blocked = await signIn(username, 'guess');
      for (let tries = 0; tries < 10 && blocked.status !== 429; tries++) blocked = await signIn(username, 'guess');
      expect(blocked.status).toBe(429);
      expect(Number(blocked.retryAfter)).toBeLessThanOrEqual(2);
      await waitOut(blocked.retryAfter);
    }
    expect((await signIn(username, 'the-right-password')).signedIn).toBe(true);
    const fresh = await signInForm(server.url, await cardholderApp(db));
    for (let i = 0; i < 3; i++) expect((await fresh(username, 'guess')).status).toBe(401);
  }, 60_000);

  it('one IP guessing many accounts is throttled as a whole, with the same page', async () => {
    const username = `holder-${randomUUID().slice(0, 8)}`;
    await createCardholder(ipDb.orm.em.fork(), { username, password: 'the-right-password', displayName: 'Holder' });
    const signIn = await signInForm(ipServer.url, await cardholderApp(ipDb));
    for (let i = 0; i < 6; i++) await signIn(`someone-${i}`, 'guess');
    const right = await signIn(username, 'the-right-password');
    expect(right.status).toBe(429);
    expect(right.page).toMatch(/Too many sign-in attempts\. Wait \d+ seconds? and try again\./);
    await waitOut(right.retryAfter);
    expect((await signIn(username, 'the-right-password')).signedIn).toBe(true);
  }, 30_000);
});

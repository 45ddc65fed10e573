/**
 * Issue 18, problem 5: no security headers on any page. Now every response carries helmet's
 * headers and a Content-Security-Policy, and the pages a person opens in a browser — GraphiQL,
 * the sign-in and consent pages — work under it in a real browser (playwright-core driving
 * Debian's chromium) with no CSP violation reported.
 */
import * as oauth from 'oauth4webapi';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './support/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../src/auth/cardholders.service.js';
import { createClient } from '../src/auth/clients.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { discover } from './support/oauth.js';
import { startTestServer, type TestServer } from './support/server.js';

const TENANT = '6b0b8a1e-63f4-4c1e-9d57-6a0d3f6f0002';
const REDIRECT_URI = 'http://127.0.0.1:8765/callback';

let db: TestDatabase;
let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  // GraphiQL's bundle is built on its first request: build it while the browser starts.
  const warm = async () => expect((await fetch(`${server.url}/graphql/assets/graphiql.js`)).status).toBe(200);
  [browser] = await Promise.all([launchBrowser(), warm()]);
}, 120_000);
afterAll(async () => {
  await browser?.close().catch(() => {});
  await server?.close();
  await db?.close();
});

/** A page that records every CSP violation: the DOM event, and the console line chromium writes. */
async function pageWatchingCsp(): Promise<{ page: Page; violations: string[] }> {
  const page = await browser.newPage();
  const violations: string[] = [];
  await page.exposeFunction('reportCspViolation', (v: string) => violations.push(v));
  // Runs in the page (as a string: this file is compiled without the DOM's types).
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', (e) => window.reportCspViolation(e.violatedDirective + ' blocked ' + e.blockedURI + ' (' + e.sourceFile + ':' + e.lineNumber + ')'));`);
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  return { page, violations };
}

describe('headers on every response', () => {
  const paths: [string, RequestInit?][] = [
    ['/healthz'],
    ['/readyz'],
    ['/metrics'],
    ['/graphql', { headers: { accept: 'text/html' } }],
    ['/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' }],
    ['/graphql/assets/graphiql.js'],
    ['/oauth/.well-known/openid-configuration'],
    ['/oauth/auth?client_id=nobody'],
    ['/pki/00000000-0000-0000-0000-000000000000.crl'],
    ['/billers/reconciliation.csv'],
    ['/no-such-page'],
  ];
  it.each(paths)('%s', async (path, init) => {
    const res = await fetch(`${server.url}${path}`, init);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
  });
});

describe('in a real browser, under the Content-Security-Policy', () => {
  it('GraphiQL loads and runs a query, with no violation', async () => {
    const { page, violations } = await pageWatchingCsp();
    try {
      await page.goto(`${server.url}/graphql`);
      await page.waitForSelector('.graphiql-container', { timeout: 45_000 });
      const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
      await editor.click();
      await page.keyboard.press('Control+A');
      await page.keyboard.type('{ __typename }');
      const answered = page.waitForResponse((r) => r.url() === `${server.url}/graphql` && r.request().method() === 'POST' && (r.request().postData() ?? '').includes('__typename }'), { timeout: 30_000 });
      await page.locator('.graphiql-execute-button').click();
      expect((await answered).status()).toBe(200);
      await expect.poll(() => page.locator('.graphiql-response').innerText(), { timeout: 15_000 }).toContain('"__typename": "Query"');
      expect(violations).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('a cardholder signs in and consents on the OAuth pages, and the browser reaches the app, with no violation', async () => {
    const { client } = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: TENANT, name: 'Card app', scopes: ['card:read'], redirectUris: [REDIRECT_URI] });
    await createCardholder(db.orm.em.fork(), { username: 'browser-holder', password: 'browser-password', displayName: 'Holder' });
    const as = await discover(server.url);
    const authorize = new URL(as.authorization_endpoint!);
    authorize.search = new URLSearchParams({ client_id: client.client_id, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'card:read', state: 'st', code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256' }).toString();

    const { page, violations } = await pageWatchingCsp();
    let callback: URL | undefined;
    // The app at the redirect URI: answered here, as the app would. The browser's request to it is
    // what counts (Chromium's headless shell, the package's, asks without letting the route answer).
    page.on('request', (request) => {
      if (request.url().startsWith(REDIRECT_URI)) callback = new URL(request.url());
    });
    await page.route(`${new URL(REDIRECT_URI).origin}/**`, (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' }));
    try {
      await page.goto(authorize.href);
      await page.fill('#username', 'browser-holder');
      await page.fill('#password', 'wrong-password');
      await page.click('button[type=submit]');
      await expect.poll(() => page.locator('.error').innerText()).toContain('Wrong username or password');
      await page.fill('#username', 'browser-holder');
      await page.fill('#password', 'browser-password');
      await page.click('button[type=submit]');
      await page.waitForSelector('button[value=allow]');
      await page.click('button[value=allow]');
      await expect.poll(() => callback?.searchParams.get('code') ?? null, { timeout: 15_000 }).not.toBeNull();
      expect(callback!.searchParams.get('state')).toBe('st');
      expect(violations).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('with response_mode=form_post, oidc-provider’s self-submitting page runs under the policy and posts the code to the app', async () => {
    const { client } = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: TENANT, name: 'Form post app', scopes: ['card:read'], redirectUris: [REDIRECT_URI] });
    await createCardholder(db.orm.em.fork(), { username: 'form-post-holder', password: 'browser-password', displayName: 'Holder' });
    const as = await discover(server.url);
    const authorize = new URL(as.authorization_endpoint!);
    authorize.search = new URLSearchParams({ client_id: client.client_id, response_type: 'code', response_mode: 'form_post', redirect_uri: REDIRECT_URI, scope: 'card:read', state: 'fp', code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256' }).toString();

    const { page, violations } = await pageWatchingCsp();
    let posted: URLSearchParams | undefined;
    await page.route(`${new URL(REDIRECT_URI).origin}/**`, async (route) => {
      if (route.request().method() === 'POST') posted = new URLSearchParams(route.request().postData() ?? '');
      await route.fulfill({ status: 200, contentType: 'text/plain', body: 'app' });
    });
    try {
      await page.goto(authorize.href);
      await page.fill('#username', 'form-post-holder');
      await page.fill('#password', 'browser-password');
      await page.click('button[type=submit]');
      await page.waitForSelector('button[value=allow]');
      await page.click('button[value=allow]');
      // Only the page's inline script submits the form (its <noscript> button is not shown).
      await expect.poll(() => posted?.get('code') ?? null, { timeout: 15_000 }).not.toBeNull();
      expect(posted!.get('state')).toBe('fp');
      expect(violations).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  it('an inline script injected into a page would be blocked (the policy is enforced, not just sent)', async () => {
    const { page, violations } = await pageWatchingCsp();
    try {
      await page.goto(`${server.url}/graphql`);
      await page.evaluate(`{ const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.head.appendChild(s); }`);
      expect(await page.evaluate('window.injected ?? false')).toBe(false);
      await expect.poll(() => violations.length).toBeGreaterThan(0);
    } finally {
      await page.close();
    }
  }, 60_000);
});

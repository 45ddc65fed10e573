/**
 * The SDK's browser entry point (`@onecard/sdk/browser`) in a browser: bundled with esbuild for the
 * browser platform (no `node:` module can be in it, nor the server-side parts: webhooks, the reader
 * agent, virtual cards), then loaded into Chromium on a page of the API's origin. There a cardholder
 * app signs its holder in with PKCE (a public client: the authorization server refuses token requests
 * from a page for clients with a secret), gets a DPoP-bound token with a WebCrypto key pair, runs a
 * typed query, and tops the holder's card up through the resource helper with the answer lost once:
 * the retry carries the same idempotency key, and the API holds one top-up. A page of another origin
 * cannot call the API (it sends no CORS headers).
 */
import path from 'node:path';
import { build, type Metafile } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCardholder } from '../../api/src/auth/cardholders.service.js';
import { createClient } from '../../api/src/auth/clients.service.js';
import { issueCard } from '../../api/src/cards/cards.service.js';
import { createCity, createMerchant } from '../../api/src/tenancy/tenancy.service.js';
import { startSandboxGateway, type SandboxGateway } from '../../api/src/topups/gateway/sandbox-gateway.js';
import { launchBrowser } from '../../api/test/support/browser.js';
import { testCardNumber } from '../../api/test/support/card-sessions.js';
import { freshDatabase, type TestDatabase } from '../../api/test/support/database.js';
import { startTestServer, type TestServer } from '../../api/test/support/server.js';

const src = import.meta.dirname;

/** The entry point bundled as a browser app's bundler would: one script, `window.OneCard`. */
async function bundle(entry: string): Promise<{ code: string; inputs: string[] }> {
  const result = await build({ entryPoints: [path.join(src, entry)], bundle: true, platform: 'browser', format: 'iife', globalName: 'OneCard', target: 'chrome120', write: false, metafile: true, logLevel: 'silent' });
  return { code: result.outputFiles[0]!.text, inputs: Object.keys((result.metafile as Metafile).inputs) };
}

let bundled: { code: string; inputs: string[] };
let db: TestDatabase;
let server: TestServer;
let gateway: SandboxGateway;
let browser: Browser;
let app: { clientId: string; redirectUri: string };
let merchant: { clientId: string; clientSecret: string };

const GATEWAY_SECRET = 'sk_test_browser';
const GATEWAY_WEBHOOK_SECRET = 'whsec_browser_0123456789';

beforeAll(async () => {
  [bundled, db, browser, gateway] = await Promise.all([bundle('browser.ts'), freshDatabase(), launchBrowser(), startSandboxGateway({ secretKey: GATEWAY_SECRET, webhookSecret: GATEWAY_WEBHOOK_SECRET })]);
  server = await startTestServer(db.orm, { GATEWAY_URL: gateway.url, GATEWAY_SECRET_KEY: GATEWAY_SECRET, GATEWAY_WEBHOOK_SECRET });
  const em = db.orm.em.fork();
  const { city, cardCompany } = await createCity(em, { code: 'WEB', name: 'Webville', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Web Cards' });
  const mei = await createCardholder(em, { username: 'mei', password: 'mei password 1', displayName: 'Mei' });
  await issueCard(db.orm.em.fork(), cardCompany.id, { cardNumber: testCardNumber('623188000000'), asn: '58188000000000000001', cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: mei.id });
  // The app's redirect URI is a page of the API's origin (served by the test): see pageAt.
  const redirectUri = `${server.url}/sdk-browser-check/callback`;
  const made = await createClient(db.orm.em.fork(), { kind: 'CARDHOLDER_APP', tenantId: cardCompany.id, name: 'Web card app', scopes: ['card:read', 'card:topup'], redirectUris: [redirectUri] });
  app = { clientId: made.client.client_id, redirectUri };
  const shop = await createMerchant(db.orm.em.fork(), { cityId: city.id, name: 'Browser Buns' });
  const secretClient = await createClient(db.orm.em.fork(), { kind: 'MERCHANT', tenantId: shop.id, name: 'back end', scopes: ['payments:read'] });
  merchant = { clientId: secretClient.client.client_id, clientSecret: secretClient.clientSecret! };
}, 180_000);
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await gateway?.close();
  await db?.close();
});

/** A page at `origin` that loads the bundle (served by the test, not by the API). */
async function pageAt(origin: string): Promise<Page> {
  const page = await browser.newPage();
  await page.route((url) => url.origin === origin && url.pathname.startsWith('/sdk-browser-check/'), (route) => {
    const file = new URL(route.request().url()).pathname.split('/').pop();
    if (file === 'onecard.js') return route.fulfill({ contentType: 'text/javascript', body: bundled.code });
    return route.fulfill({ contentType: 'text/html', body: '<!doctype html><meta charset="utf-8"><title>SDK check</title><script src="onecard.js"></script>' });
  });
  await page.goto(`${origin}/sdk-browser-check/index.html`);
  return page;
}

describe('the browser entry point', () => {
  it('bundles for the browser platform with no node: module and none of the server-side parts', () => {
    expect(bundled.inputs.filter((f) => f.startsWith('node:') || /\/(webhooks|reader\/|cards\/)/.test(f))).toEqual([]);
    expect(bundled.inputs).toEqual(expect.arrayContaining([expect.stringMatching(/sdk-js\/src\/client\.ts$/), expect.stringMatching(/oauth4webapi/)]));
  });

  it('the Node entry point does not bundle for a browser (its webhooks and reader agent use node:crypto)', async () => {
    await expect(bundle('index.ts')).rejects.toThrow(/node:crypto/);
  });
});

describe('in Chromium, on a page of the API origin', () => {
  it('a cardholder signs in with PKCE; the page gets a DPoP-bound token, runs a typed query, and tops up once though an answer is lost', async () => {
    const page = await pageAt(server.url);
    // 1. The app starts the sign-in and keeps what it needs for the redirect back.
    const authorizeUrl = await page.evaluate(async ({ clientId, redirectUri }) => {
      const { startSignIn } = (window as any).OneCard;
      const pending = await startSignIn({ baseUrl: location.origin, clientId, redirectUri, scope: 'card:read card:topup' });
      sessionStorage.setItem('onecard-sign-in', JSON.stringify(pending));
      return pending.url as string;
    }, app);
    // 2. The holder signs in and allows access on OneCard's pages.
    await page.goto(authorizeUrl);
    await page.fill('input[name=username]', 'mei');
    await page.fill('input[name=password]', 'mei password 1');
    await page.click('button[type=submit]');
    await page.click('button[name=decision][value=allow]');
    await page.waitForURL((url) => url.pathname === '/sdk-browser-check/callback');
    // Playwright does not route a navigation that a redirect started, so the API answered it (404): load
    // the same callback URL again, which the test serves as the app would.
    await page.goto(page.url());

    // 3. Back on the app's page: the token, a typed query, a top-up with its first answer lost.
    const out = await page.evaluate(async ({ clientId, redirectUri }) => {
      const { OneCardClient, finishSignIn, CardsDocument } = (window as any).OneCard;
      const pending = JSON.parse(sessionStorage.getItem('onecard-sign-in')!);
      const dpopKeyPair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
      const token = await finishSignIn({ baseUrl: location.origin, clientId, redirectUri, callbackUrl: location.href, pending, dpopKeyPair });
      const sent: { body: string; scheme: string | undefined; dpop: boolean }[] = [];
      let lose = 1;
      // The browser's own fetch; the first createTopUp answer is dropped after the API made the top-up.
      const lossy = async (input: RequestInfo | URL, init?: RequestInit) => {
        const res = await fetch(input, init);
        if (String(input).endsWith('/graphql') && String(init?.body).includes('createTopUp')) {
          const headers = new Headers(init?.headers);
          sent.push({ body: String(init?.body), scheme: headers.get('authorization')?.split(' ')[0], dpop: headers.has('dpop') });
          if (lose-- > 0) throw new TypeError('Failed to fetch');
        }
        return res;
      };
      const onecard = new OneCardClient({ baseUrl: location.origin, clientId, accessToken: () => token, dpopKeyPair, fetch: lossy, retry: { baseDelayMs: 5 } });
      const { cards } = await onecard.execute(CardsDocument, { first: 10 });
      const card = cards.edges[0].node;
      const r = await onecard.topUps.create({ card: card.id, amount: 1_000 });
      if (!r.ok) return { refused: r.userErrors };
      const fetched = await onecard.topUps.get(r.data.createTopUp.topUp.id);
      return {
        tokenType: token.tokenType,
        cards: cards.edges.length,
        topUp: r.data.createTopUp.topUp.id,
        status: fetched.status,
        key: r.idempotencyKey,
        sentKeys: sent.map((s) => JSON.parse(s.body).variables.input.idempotencyKey),
        sameBody: sent.length === 2 && sent[0]!.body === sent[1]!.body,
        schemes: sent.map((s) => [s.scheme, s.dpop]),
        hasNodeProcess: typeof (globalThis as any).process !== 'undefined',
      };
    }, app);
    expect(out).toEqual({
      tokenType: 'dpop',
      cards: 1,
      topUp: expect.any(String),
      status: 'AWAITING_PAYMENT',
      key: expect.any(String),
      sentKeys: [out.key, out.key],
      sameBody: true,
      schemes: [
        ['DPoP', true],
        ['DPoP', true],
      ],
      hasNodeProcess: false,
    });
    // The database: one top-up for the two requests.
    const [{ count }] = await db.orm.em.fork().execute<{ count: string }[]>('select count(*) from top_up');
    expect(Number(count)).toBe(1);
    await page.close();
  });

  it('a page may not get tokens for a client with a secret: those belong on a server', async () => {
    const page = await pageAt(server.url);
    const out = await page.evaluate(async ({ clientId, clientSecret }) => {
      const { OneCardClient } = (window as any).OneCard;
      return new OneCardClient({ baseUrl: location.origin, clientId, clientSecret, retry: false }).viewer().then(
        () => ({ refused: false }),
        (err: { code?: string; message: string }) => ({ refused: true, code: err.code, message: err.message }),
      );
    }, merchant);
    expect(out).toEqual({ refused: true, code: 'TOKEN_REQUEST_FAILED', message: expect.stringMatching(/^origin http:\/\/127\.0\.0\.1:\d+ not allowed for client/) });
    await page.close();
  });

  it('a page of another origin cannot call the API: the browser blocks the answer (no CORS headers)', async () => {
    const token = { accessToken: 'not-a-token', tokenType: 'bearer', expiresAt: undefined, scope: undefined };
    const call = async ({ apiUrl, token }: { apiUrl: string; token: unknown }) => {
      const { OneCardClient } = (window as any).OneCard;
      return new OneCardClient({ baseUrl: apiUrl, clientId: 'app', accessToken: () => token, retry: false }).viewer().then(
        () => ({ answered: true }),
        (err: { name: string; code?: string; message: string }) => ({ name: err.name, code: err.code, message: err.message }),
      );
    };
    const sameOrigin = await pageAt(server.url);
    // From the API's origin, the API answers (here: that the token is no good).
    expect(await sameOrigin.evaluate(call, { apiUrl: server.url, token })).toMatchObject({ name: 'OneCardError', code: 'UNAUTHENTICATED' });
    const otherOrigin = await pageAt(`http://localhost:${new URL(server.url).port}`); // same host and port, another origin than 127.0.0.1
    expect(await otherOrigin.evaluate(call, { apiUrl: server.url, token })).toEqual({ name: 'TypeError', message: 'Failed to fetch' });
    await Promise.all([sameOrigin.close(), otherOrigin.close()]);
  });
});

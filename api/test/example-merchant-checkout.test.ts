/**
 * The merchant-checkout example end to end in a real browser (playwright-core driving the Chromium
 * of support/browser.ts: the machine's, or the one inside the @sparticuz/chromium npm package): the platform started in-process as `npm start` starts it (demo
 * seed, demo.json, sandbox gateway; on a database of the test's own), the example's shop as a child
 * process (node 22, as `npm start -w examples/merchant-checkout`), and the checkout page: page loads,
 * payment created, card tapped on the simulated home reader, "Paid" shown once the signed webhook
 * reached the shop. Also GraphiQL at /graphql renders without a request to another origin.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { loadConfig } from '../src/config/config.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { type RunningPlatform, startPlatform } from '../src/platform.js';
import { launchBrowser } from './support/browser.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

const root = path.resolve(import.meta.dirname, '../..');

let dataDir: string;
let db: TestDatabase | undefined;
let platform: RunningPlatform | undefined;
let shop: ChildProcess | undefined;
let shopOutput = '';
let shopUrl: string;
let browser: Browser | undefined;

/** Starts the example as `npm start -w examples/merchant-checkout` would, on a free port; resolves with its URL once it is open. */
function startShop(): Promise<string> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ONECARD_DATA_DIR: dataDir, SHOP_PORT: '0', SHOP_HOST: '127.0.0.1' };
    for (const name of ['ONECARD_URL', 'SHOP_URL']) delete env[name];
    const child = spawn(process.execPath, [path.join(root, 'examples/merchant-checkout/server.mjs')], {
      cwd: path.join(root, 'examples/merchant-checkout'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    shop = child;
    const timer = setTimeout(() => reject(new Error(`the shop did not open in 30 s:\n${shopOutput}`)), 30_000);
    const onData = (chunk: Buffer) => {
      shopOutput += chunk.toString();
      const open = /the Demo Shop is open at (http:\/\/\S+?)\/ /.exec(shopOutput);
      if (open) {
        clearTimeout(timer);
        resolve(open[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the shop exited with ${code}:\n${shopOutput}`));
    });
  });
}

async function stopShop() {
  const child = shop;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

beforeAll(async () => {
  await fs.access(path.join(root, 'sdk-js/dist/esm/index.js')).catch(() => {
    throw new Error('the example imports @onecard/sdk from sdk-js/dist: run `npm run build` first');
  });
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-checkout-'));
  db = await freshDatabase();
  const port = await freePort();
  // What `npm start` runs (migrations, demo seed, demo.json, no GATEWAY_URL: the sandbox gateway),
  // on a database of this file's own instead of a second embedded PostgreSQL.
  platform = await startPlatform(
    loadConfig({ NODE_ENV: 'test', PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}`, HOST: '127.0.0.1', ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url }),
    pino({ level: 'silent' }),
  );
  // GraphiQL's bundle is built on its first request: build it meanwhile, not inside the second test.
  const warm = async () => expect((await fetch(`${platform!.url}/graphql/assets/graphiql.js`)).status).toBe(200);
  [shopUrl, browser] = await Promise.all([startShop(), launchBrowser(), warm()]);
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  await stopShop();
  await platform?.stop();
  await db?.close();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

/** Every URL the page requests, to check none goes to another origin. */
async function pageRecordingRequests(): Promise<{ page: Page; requests: string[] }> {
  onTestFailed(() => console.log(`the shop's output:\n${shopOutput}`));
  const page = await browser!.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  return { page, requests };
}

const elsewhere = (requests: string[], origin: string) => requests.filter((u) => !/^(data|blob):/.test(u) && new URL(u).origin !== origin);

it('checks out: the page loads, the payment is made, the card is tapped, and "Paid" shows once the webhook came', async () => {
  const { page, requests } = await pageRecordingRequests();
  try {
    await page.goto(shopUrl);
    expect(await page.title()).toBe('Demo Shop · checkout');
    expect(await page.textContent('#total')).toBe('12.80');

    await page.click('#pay');
    await page.waitForSelector('#order-status[data-status="AWAITING_CARD"]');
    const paymentId = (await page.textContent('#payment-id'))!;
    expect(paymentId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(await page.textContent('#order-amount')).toBe('12.80');

    await page.click('#tap');
    // The reader log says the card paid (the tap's own answer); "Paid" waits for the webhook.
    await page.waitForSelector('#reader-log li.ok');
    expect(await page.textContent('#reader-log')).toMatch(/the card paid/);
    await page.waitForSelector('#order-status[data-status="PAID"]', { timeout: 30_000 });
    expect(await page.textContent('#order-status')).toBe('Paid');
    expect(await page.textContent('#order-events')).toContain('payment.succeeded');

    // The platform agrees: the payment succeeded, for the cart's amount.
    const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
    const merchant = new OneCardClient({ baseUrl: platform!.url, clientId: demo.clients.merchant.client_id, clientSecret: demo.clients.merchant.client_secret, scope: 'payments:read' });
    const { payment } = await merchant.request<{ payment: { status: string; amount: { amount: number }; orderReference: string } }>('query($id: ID!) { payment(id: $id) { status amount { amount } orderReference } }', { id: paymentId });
    expect(payment).toEqual({ status: 'SUCCEEDED', amount: { amount: 1280 }, orderReference: expect.stringMatching(/^order-/) });
    // The page talked to its shop only (no CDN, no call to OneCard from the browser).
    expect(elsewhere(requests, new URL(shopUrl).origin)).toEqual([]);
  } finally {
    await page.close();
  }
});

it('GraphiQL at /graphql renders in the browser with no request to another origin', async () => {
  const { page, requests } = await pageRecordingRequests();
  try {
    const introspected = page.waitForResponse((r) => r.url() === `${platform!.url}/graphql` && r.request().method() === 'POST', { timeout: 45_000 });
    const response = await page.goto(`${platform!.url}/graphql`);
    expect(response!.headers()['content-type']).toMatch(/^text\/html/);
    await page.waitForSelector('.graphiql-container', { timeout: 45_000 });
    expect((await introspected).status()).toBe(200);
    await page.waitForLoadState('networkidle');
    expect(requests.some((u) => u.startsWith(`${platform!.url}/graphql/assets/`))).toBe(true);
    expect(elsewhere(requests, new URL(platform!.url).origin)).toEqual([]);
  } finally {
    await page.close();
  }
});

it('GraphiQL in development: the starter query is there, and "Sign in as a demo client" puts a working Authorization header in Headers', async () => {
  const { page } = await pageRecordingRequests();
  try {
    await page.goto(`${platform!.url}/graphql`);
    await page.waitForSelector('#demo-sign-in:not([disabled])', { timeout: 45_000 });
    expect(await page.textContent('.graphiql-query-editor')).toContain('serverInfo { version publicUrl time }');
    await page.selectOption('select[aria-label="demo client"]', 'operator');
    await page.click('#demo-sign-in');
    await page.waitForSelector('[role=status]:has-text("signed in as the demo operator")');
    // The IDE was remounted with the header: its request carries it and the protected field answers.
    const answered = page.waitForResponse((r) => r.url() === `${platform!.url}/graphql` && r.request().method() === 'POST' && (r.request().postData() ?? '').includes('cities'));
    await page.waitForSelector('.graphiql-execute-button');
    await page.click('.graphiql-execute-button');
    const response = await answered;
    expect(response.request().headers().authorization).toMatch(/^Bearer /);
    const body = (await response.json()) as { data: { serverInfo: { version: string }; cities: { edges: unknown[] } } };
    expect(body.data.cities.edges.length).toBe(2);
  } finally {
    await page.close();
  }
});

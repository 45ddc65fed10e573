/**
 * The web console (issue 26) in a real browser, against the started API: each party's clerk signs in
 * through OneCard's own sign-in page (the console is a public client: code + PKCE) and does the
 * page's main task, and the result is checked in the page and in the API.
 *  1. a merchant refunds part of a payment and sees what remains refundable;
 *  2. a biller imports a CSV file and sees the per-row report inline;
 *  3. a card company registers a reader from its three CSRs and revokes it;
 *  4. the operator closes and clears a settlement window, reconciles it, and resolves a difference with a note.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { createRequire } from 'node:module';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeWorkerUtils } from 'graphile-worker';
import nock from 'nock';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../src/auth/clients.service.js';
import { createPartyUser } from '../src/auth/party-users.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { gatewayClearingAccount, pendingLoadAccount } from '../src/ledger/accounts.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, post } from '../src/ledger/ledger.service.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { dispatchRound, JOB_SCHEMA } from '../src/webhooks/dispatcher.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createMerchant } from '../src/tenancy/tenancy.service.js';
import { launchBrowser } from './support/browser.js';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { apiClient, cardholderApp, csrFor, issueCard, newReader, OPEN, sessionsOf, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';

const GATEWAY = 'https://gateway.console.test';
const world = useCardSessionWorld({
  env: () => ({ GATEWAY_URL: GATEWAY, GATEWAY_SECRET_KEY: 'sk_test_console', GATEWAY_WEBHOOK_SECRET: 'whsec_console_0123456789', GATEWAY_TIMEOUT_MS: '2000' }),
});
const root = path.resolve(import.meta.dirname, '../..');

let browser: Browser;
const users = {} as Record<'merchant' | 'biller' | 'issuer' | 'operator', { name: string; username: string; password: string }>;

/** A sign-in client of the party for the console, and its clerk. */
async function consoleUser(party: keyof typeof users, kind: 'MERCHANT' | 'BILLER' | 'ISSUER' | 'OPERATOR', tenantId: string | null, name: string, scopes: string[]) {
  const em = world.db.orm.em.fork();
  const { client } = await createClient(em, { kind, tenantId, name, scopes, redirectUris: [`${world.server.url}/console/`] });
  users[party] = { name, username: `${party}-clerk`, password: `${party} clerk password` };
  await createPartyUser(em, { clientId: client.client_id, username: users[party].username, password: users[party].password, displayName: name, admin: true });
}

beforeAll(async () => {
  // The console as `npm run build` builds it (a no-op when console/dist is newer than its sources).
  await promisify(execFile)(process.execPath, [path.join(root, 'console/scripts/build.mjs'), '--if-changed']);
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  nock.cleanAll();
  nock.enableNetConnect();
});

/** A page that fails the test on any script error or CSP violation, and on any request to another origin. */
async function consolePage(): Promise<Page> {
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // Chromium's own favicon request on OneCard's sign-in pages (they name no icon) is not the console's.
  page.on('console', (m) => m.type() === 'error' && !m.location().url.endsWith('/favicon.ico') && problems.push(`console error: ${m.text()} (${m.location().url})`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`));
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (!/^(data|blob):/.test(r.url()) && url.origin !== world.server.url) problems.push(`request to another origin: ${r.url()}`);
  });
  (page as Page & { problems: string[] }).problems = problems;
  return page;
}

const problemsOf = (page: Page) => (page as Page & { problems: string[] }).problems;

/** Waits for the status badge in `row` to read `status`; on a timeout, says what the page shows instead. */
async function waitForStatus(page: Page, row: string, status: string) {
  try {
    await page.locator(`${row} .status`, { hasText: new RegExp(`^${status}$`) }).waitFor({ timeout: 15_000 });
  } catch (err) {
    throw new Error(`${row} never showed ${status}; the page shows:\n${await page.textContent('main')}\n${problemsOf(page).join('\n')}`, { cause: err });
  }
}

/**
 * With ONECARD_CONSOLE_SCREENSHOTS=<folder> (e.g. docs/images/console), each task's page is saved
 * there as <name>.png: how docs/console.md's screenshots are made. Without it, nothing is written.
 */
async function screenshot(page: Page, name: string) {
  const dir = process.env.ONECARD_CONSOLE_SCREENSHOTS;
  if (!dir) return;
  await page.setViewportSize({ width: 1100, height: 760 });
  await page.screenshot({ path: path.resolve(root, dir, `${name}.png`), fullPage: true });
}

/** Through the console's sign-in: choose the organisation, sign in on OneCard's page, allow. */
async function signIn(page: Page, party: keyof typeof users) {
  const user = users[party];
  await page.goto(`${world.server.url}/console`);
  await page.getByRole('button', { name: `Sign in to ${user.name}` }).click();
  await page.waitForURL(/\/oauth\/interaction\//);
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('button[type=submit]');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForSelector('#signed-in-as');
  expect(await page.textContent('#signed-in-as')).toContain(user.name);
  expect(new URL(page.url()).search).toBe(''); // the code and state are gone from the address bar
}

// The holder, their reader and their card (¥100.00 loaded): they pay the merchant, then a water bill.
let holder: Awaited<ReturnType<typeof cardholderApp>>;
let home: Awaited<ReturnType<typeof newReader>>;
let chip: ReturnType<typeof issueCard>;
let cardNumber: string;

describe('1. a merchant refunds a payment', () => {
  let paymentId: string;
  let merchant: Awaited<ReturnType<typeof apiClient>>;

  beforeAll(async () => {
    const em = world.db.orm.em.fork();
    const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Console Tea House' });
    merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
    await consoleUser('merchant', 'MERCHANT', shop.id, 'Console Tea House', ['payments:read', 'refunds:write', 'webhooks:manage', 'settlements:read', 'users:manage']);
    // A card loaded at the counter, then the holder pays ¥30.00 on their own reader.
    const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
    const counter = await newReader(world, 'CONSOLE-COUNTER', world.gz);
    holder = await cardholderApp(world, 'console-holder');
    home = await newReader(world, 'CONSOLE-HOME', world.gz, { kind: 'CARDHOLDER', id: holder.id });
    chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    cardNumber = testCardNumber('623177100000');
    await registerCard(em, world.gz.cardCompanyId, { cardNumber, asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: holder.id });
    const counterSessions = sessionsOf(issuer, () => counter);
    expect((await counterSessions.agent(chip).run(await counterSessions.open('LOAD', 10_000))).state).toBe('COMPLETED');
    const made = await merchant.request<{ createPayment: { payment: { id: string } } }>(
      'mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code } } }',
      { input: { amount: 3_000, currency: 'CNY', orderReference: 'console-order-1', idempotencyKey: randomUUID() } },
    );
    paymentId = made.createPayment.payment.id;
    const opened = await holder.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment: paymentId } });
    expect((await sessionsOf(holder.app, () => home).agent(chip, home).run(opened.openCardSession.session as never)).state).toBe('COMPLETED');
  });

  it('registers a webhook endpoint: its secret is shown once, and it is listed', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.fill('#endpoint-url', 'http://127.0.0.1:9/onecard-webhooks');
      await page.click('#endpoint-create');
      await page.waitForSelector('#endpoint-secret');
      expect(await page.textContent('#endpoint-secret code')).toMatch(/^\S{20,}$/);
      await page.locator('tr[data-endpoint="http://127.0.0.1:9/onecard-webhooks"]').waitFor();
      // Shown once: after a reload the page has no way to show it again.
      await page.reload();
      await page.locator('tr[data-endpoint="http://127.0.0.1:9/onecard-webhooks"]').waitFor();
      expect(await page.locator('#endpoint-secret').count()).toBe(0);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('finds the payment in the list, refunds ¥12.50 of ¥30.00, and sees ¥17.50 remaining; the API agrees', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'console-order-1' }).click();
      await page.waitForSelector('#payment-remaining');
      expect(await page.textContent('#payment-amount')).toBe('¥30.00');
      expect(await page.textContent('#payment-remaining')).toBe('¥30.00');

      // A mistyped amount is caught in the page, before anything is sent.
      await page.fill('#refund-amount', '12.505');
      await page.click('#refund-submit');
      await expect(page.getByRole('alert').textContent()).resolves.toContain('at most 2 decimals');

      await page.fill('#refund-amount', '12.50');
      await page.fill('#refund-reason', 'one cup was missing');
      await page.click('#refund-submit');
      await page.waitForSelector('#refund-done');
      expect(await page.textContent('#refund-done')).toBe('Refunded ¥12.50. ¥17.50 can still be refunded.');
      await page.locator('#payment-remaining', { hasText: /^¥17\.50$/ }).waitFor();
      expect(await page.textContent('#payment-refunded')).toBe('¥12.50');
      expect(await page.textContent('#refunds')).toContain('one cup was missing');
      await screenshot(page, 'merchant-refund');

      // More than remains is the API's refusal, shown with its code; nothing more is refunded.
      await page.fill('#refund-amount', '20');
      await page.click('#refund-submit');
      await page.waitForSelector('ul.error[role=alert]');
      expect(await page.textContent('ul.error')).toMatch(/[A-Z_]{5,}/);

      const { payment } = await merchant.request<{ payment: { refundedAmount: { amount: number }; refunds: { amount: { amount: number }; reason: string }[] } }>(
        'query($id: ID!) { payment(id: $id) { refundedAmount { amount } refunds { amount { amount } reason } } }',
        { id: paymentId },
      );
      expect(payment).toEqual({ refundedAmount: { amount: 1_250 }, refunds: [{ amount: { amount: 1_250 }, reason: 'one cup was missing' }] });
      expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('1b. the merchant’s webhook deliveries', () => {
  it('the refund’s event is in the endpoint’s delivery log, and Replay queues it again', async () => {
    // What the background dispatcher does: fan the events out to the endpoints' deliveries (queued
    // on the job queue, whose tables it needs; no worker runs here, so they stay PENDING).
    const utils = await makeWorkerUtils({ connectionString: world.db.orm.config.get('clientUrl'), schema: JOB_SCHEMA });
    await utils.migrate();
    await utils.release();
    await dispatchRound(world.db.orm.em.fork());
    const page = await consolePage();
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByRole('button', { name: 'Deliveries http://127.0.0.1:9/onecard-webhooks' }).click();
      const refunded = page.locator('tr[data-event="payment.refunded"][data-replay=false]');
      await refunded.waitFor();
      await refunded.getByRole('button', { name: /^Replay / }).click();
      await page.waitForSelector('#replay-done');
      await page.locator('tr[data-event="payment.refunded"][data-replay=true]').waitFor();
      await screenshot(page, 'merchant-webhooks');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('1c. the merchant’s admin makes a clerk, who chooses a password at the first sign-in', () => {
  it('the initial password is shown once; it leads only to choosing one’s own, then to the merchant’s console', async () => {
    const page = await consolePage();
    let initial: string;
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'Users' }).click();
      await page.fill('#user-username', 'tea-clerk-2');
      await page.fill('#user-name', '王芳 Tea clerk');
      await page.click('#user-create');
      await page.waitForSelector('#user-made[data-username="tea-clerk-2"]');
      initial = (await page.textContent('#user-initial-password'))!;
      expect(initial).toMatch(/^[\w-]{20}$/);
      await screenshot(page, 'merchant-users');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      await page.reload();
      await page.waitForSelector('#user-username');
      expect(await page.locator('#user-initial-password').count()).toBe(0); // shown once
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }

    const clerk = await consolePage();
    try {
      await clerk.goto(`${world.server.url}/console`);
      await clerk.getByRole('button', { name: 'Sign in to Console Tea House' }).click();
      await clerk.waitForURL(/\/oauth\/interaction\//);
      await clerk.fill('#username', 'tea-clerk-2');
      await clerk.fill('#password', initial);
      await clerk.click('button[type=submit]');
      await clerk.getByRole('heading', { name: 'Choose your password' }).waitFor();
      await clerk.fill('#current', initial);
      await clerk.fill('#next', 'tea clerk’s own password');
      await clerk.fill('#repeated', 'tea clerk’s own password');
      await clerk.getByRole('button', { name: 'Save and sign in' }).click();
      await clerk.getByRole('button', { name: 'Allow' }).click();
      await clerk.waitForSelector('#signed-in-as');
      expect(await clerk.textContent('#signed-in-as')).toContain('Console Tea House');
      await clerk.getByRole('link', { name: 'console-order-1' }).waitFor(); // the merchant's payments
      expect(problemsOf(clerk)).toEqual([]);
    } finally {
      await clerk.close();
    }
    const [row] = await world.db.orm.em.fork().execute<{ must_change_password: boolean; admin: boolean; kind: string }[]>(
      `select u.must_change_password, u.admin, c.kind from party_user u join oauth_client c on c.client_id = u.client_id where u.username = 'tea-clerk-2'`,
    );
    expect(row).toEqual({ must_change_password: false, admin: false, kind: 'MERCHANT' });
  });
});

describe('2. a biller imports a CSV file', () => {
  beforeAll(async () => {
    const water = await createBiller(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Console Water', kind: BillerKind.WATER });
    await consoleUser('biller', 'BILLER', water.id, 'Console Water', ['bills:read', 'bills:write', 'settlements:read']);
  });

  const HEADER = 'account_number,period,amount_due,due_date,biller_reference';

  it('a file with bad rows: the per-row report shows each refused row, and nothing is imported', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'biller');
      await page.fill('#csv-text', [HEADER, 'CW-001,2026-10,4520,2026-11-30,cw-2026-10-001', 'CW-002,2026-10,45.20,2026-11-30,cw-2026-10-002', 'CW-003,2026-10,3100,2026-13-45,cw-2026-10-003'].join('\n'));
      await page.fill('#csv-file-name', 'october.csv');
      await page.click('#csv-import');
      await page.waitForSelector('#import-report[data-status=REFUSED]');
      expect(await page.textContent('#import-report')).toContain('0 of 3 rows accepted, 2 refused');
      const rows = await page.$$eval('#import-refusals tbody tr', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent!.trim())));
      expect(rows.map((r) => [r[0], r[1]])).toEqual([
        ['3', 'amount_due'],
        ['4', 'due_date'],
      ]);
      expect(await page.textContent('#bills-title + *')).toContain('Nothing here yet.');
      await screenshot(page, 'biller-import-report');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the corrected file, chosen as a file: all rows accepted, and the bills are listed', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'biller');
      const csv = [HEADER, 'CW-001,2026-10,4520,2026-11-30,cw-2026-10-001', 'CW-002,2026-10,4520,2026-11-30,cw-2026-10-002', 'CW-003,2026-10,3100,2026-11-30,cw-2026-10-003'].join('\n');
      await page.setInputFiles('#csv-file', { name: 'october-fixed.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
      await expect.poll(() => page.inputValue('#csv-file-name')).toBe('october-fixed.csv');
      await page.click('#csv-import');
      await page.waitForSelector('#import-report[data-status=IMPORTED]');
      expect(await page.textContent('#import-report')).toContain('3 of 3 rows accepted, 0 refused');
      await page.waitForSelector('#bills tbody tr:nth-child(3)');
      expect(await page.textContent('#bills')).toContain('¥45.20');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the day’s reconciliation: a paid bill counted, the total agrees with the ledger, charted by hour, and the CSV file downloads', async () => {
    // The holder pays CW-002 (¥45.20) with the card on their reader.
    const [row] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from bill where account_number = 'CW-002'`);
    const bill = { id: toGlobalId('Bill', row!.id) };
    const made = await holder.app.request<{ payBill: { billPayment: { id: string } | null; userErrors: unknown[] } }>(
      'mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }',
      { input: { bill: bill.id, idempotencyKey: randomUUID() } },
    );
    expect(made.payBill.userErrors).toEqual([]);
    const opened = await holder.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', billPayment: made.payBill.billPayment!.id } });
    expect((await sessionsOf(holder.app, () => home).agent(chip, home).run(opened.openCardSession.session as never)).state).toBe('COMPLETED');

    const page = await consolePage();
    try {
      await signIn(page, 'biller');
      await page.getByRole('link', { name: 'Daily reconciliation' }).click();
      await page.waitForSelector('#reconciliation-payments');
      const totals = await page.textContent('#reconciliation-totals');
      expect(totals).toContain('Payments1');
      expect(totals).toContain('Total¥45.20');
      expect(totals).toContain('Ledger total¥45.20 agrees');
      expect(await page.textContent('#reconciliation-payments')).toContain('CW-002');
      expect(await page.getAttribute('figure.chart svg', 'aria-label')).toMatch(/^Paid by hour \(city time\): \d\d ¥45\.20$/);
      await screenshot(page, 'biller-reconciliation');

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#reconciliation-csv')]);
      const csv = await fs.readFile((await download.path())!, 'utf8');
      expect(csv.split(/\r?\n/)[0]).toMatch(/^[a-z_]+(,[a-z_]+)+$/);
      expect(csv).toContain('CW-002');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('2b. a biller publishes, amends and withdraws a bill', () => {
  it('a mistyped amount is caught; the bill published is listed OPEN, amended to ¥60.10, then withdrawn; a paid bill offers neither; the API agrees', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'biller');
      await page.fill('#bill-account', 'CW-100');
      await page.fill('#bill-period', '2026-11');
      await page.fill('#bill-due', '2026-12-31');
      await page.fill('#bill-reference', 'cw-2026-11-100');
      await page.fill('#bill-amount', '58.305');
      await page.click('#bill-publish');
      await expect(page.getByRole('alert').textContent()).resolves.toContain('at most 2 decimals');
      expect(await world.db.orm.em.fork().execute(`select 1 from bill where biller_reference = 'cw-2026-11-100'`)).toEqual([]);

      await page.fill('#bill-amount', '58.3');
      await page.click('#bill-publish');
      await page.waitForSelector('#bill-published');
      const row = page.locator('tr[data-bill="cw-2026-11-100"]');
      await waitForStatus(page, 'tr[data-bill="cw-2026-11-100"]', 'OPEN');
      expect(await row.textContent()).toContain('¥58.30');

      await page.getByRole('button', { name: 'Amend cw-2026-11-100' }).click();
      expect(await page.inputValue('#amend-amount')).toBe('58.30');
      await page.fill('#amend-amount', '60.10');
      await page.fill('#amend-due', '2027-01-15');
      await page.click('#amend-submit');
      await page.locator('tr[data-bill="cw-2026-11-100"]', { hasText: '¥60.10' }).waitFor();
      expect(await row.textContent()).toContain('2027-01-15');
      await screenshot(page, 'biller-bills');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);

      // CW-002 was paid with the card: it can be neither amended nor withdrawn.
      await waitForStatus(page, 'tr[data-bill="cw-2026-10-002"]', 'PAID');
      expect(await page.locator('tr[data-bill="cw-2026-10-002"] button').count()).toBe(0);

      page.once('dialog', (d) => d.accept());
      await page.getByRole('button', { name: 'Withdraw cw-2026-11-100' }).click();
      await waitForStatus(page, 'tr[data-bill="cw-2026-11-100"]', 'WITHDRAWN');
      expect(await page.textContent('#bill-withdrawn')).toBe('Bill cw-2026-11-100 withdrawn.');
      const [bill] = await world.db.orm.em.fork().execute<{ status: string; amount_due: string; due_date: string; version: number }[]>(
        `select status, amount_due::text, due_date::text, version from bill where biller_reference = 'cw-2026-11-100'`,
      );
      expect(bill).toEqual({ status: 'WITHDRAWN', amount_due: '6010', due_date: '2027-01-15', version: 3 });
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('3. a card company registers a reader from its CSRs and revokes it', () => {
  beforeAll(async () => {
    await consoleUser('issuer', 'ISSUER', world.gz.cardCompanyId, 'Yangchengtong back office', ['readers:manage', 'cards:read', 'cards:write', 'settlements:read']);
  });

  const csr = () => csrFor(generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey);

  it('pastes the three CSRs, sees the reader registered, revokes it, and its certificate is revoked', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'issuer');
      await page.fill('#reader-serial', 'GZ-CONSOLE-0001');
      await page.fill('#reader-model', 'OC-R1');
      await page.fill('#reader-nationalCsr', csr());
      await page.fill('#reader-cityCsr', csr());
      await page.fill('#reader-encryptionCsr', csr());
      await page.click('#reader-register');
      await page.waitForSelector('#reader-registered');
      expect(await page.textContent('#reader-registered')).toMatch(/^Reader GZ-CONSOLE-0001 registered: [A-Z_]+\.$/);
      const row = page.locator('tr[data-serial="GZ-CONSOLE-0001"]');
      await row.waitFor();
      const serial = (await row.locator('code').first().textContent())!;

      page.once('dialog', (d) => d.accept());
      await page.getByRole('button', { name: 'Revoke GZ-CONSOLE-0001' }).click();
      await waitForStatus(page, 'tr[data-serial="GZ-CONSOLE-0001"]', 'REVOKED');
      // Revoked for good: no button brings it back.
      expect(await row.getByRole('button').count()).toBe(0);
      await screenshot(page, 'issuer-readers');

      // The API agrees, and so does the PKI: the city certificate's status is REVOKED.
      const [reader] = await world.db.orm.em.fork().execute<{ status: string }[]>(`select status from reader where serial = ?`, ['GZ-CONSOLE-0001']);
      expect(reader!.status).toBe('REVOKED');
      const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage']);
      const status = await issuer.request<{ certificateStatus: { status: string } | null }>('query($serial: String!) { certificateStatus(serial: $serial) { status } }', { serial });
      expect(status.certificateStatus?.status).toBe('REVOKED');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('3b. a card company finds a card by its number and reports it lost', () => {
  it('searches by the printed number, sees purse and history, reports it lost; an unknown number is said so', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Cards' }).click();
      await page.fill('#card-number', '6231 7799 9999 9999');
      await page.click('#card-search');
      await page.waitForSelector('#card-not-found');

      await page.fill('#card-number', cardNumber.replace(/(\d{4})/g, '$1 '));
      await page.keyboard.press('Enter');
      await page.waitForSelector('#card-found[data-status=ACTIVE]');
      // ¥100.00 loaded, ¥30.00 paid to the merchant, ¥45.20 for the water bill.
      expect(await page.textContent('#card-found')).toContain('Purse¥24.80');
      await page.waitForSelector('#card-history tbody tr:nth-child(3)');
      expect(await page.textContent('#card-history')).toContain('¥45.20');

      await page.fill('#card-reason', 'the holder called: lost on the metro');
      await page.getByRole('button', { name: 'Report lost' }).click();
      await page.waitForSelector('#card-found[data-status=LOST]');
      await screenshot(page, 'issuer-cards');
      const [row] = await world.db.orm.em.fork().execute<{ status: string }[]>(`select status from card where card_number = ?`, [cardNumber]);
      expect(row!.status).toBe('LOST');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('3c. the card company’s blacklist', () => {
  it('the card just reported lost is on it, added with its reason, as terminals will receive it', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Blacklist' }).click();
      const entry = page.locator(`#blacklist tr[data-asn="${chip.asn}"]`);
      await entry.waitFor();
      expect(await entry.getAttribute('data-action')).toBe('ADD');
      expect(await entry.textContent()).toContain('the holder called: lost on the metro');
      const [latest] = await world.db.orm.em.fork().execute<{ version: number }[]>(`select max(version)::int as version from card_blacklist where card_company_id = ?`, [world.gz.cardCompanyId]);
      expect(await page.textContent('#blacklist-title + p')).toContain(`version ${latest!.version}`);
      await screenshot(page, 'issuer-blacklist');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('3d. a card company replaces the lost card (补卡)', () => {
  it('types the new card, sees the old one REPLACED and when its purse moves; the database has the new card for the same holder', async () => {
    const newNumber = testCardNumber('623177200000');
    const page = await consolePage();
    try {
      await signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Cards' }).click();
      await page.fill('#card-number', cardNumber);
      await page.keyboard.press('Enter');
      await page.waitForSelector('#card-found[data-status=LOST]');
      await page.fill('#replace-number', newNumber.replace(/(\d{4})/g, '$1 '));
      await page.fill('#replace-asn', 'ABCDEF0123456789ABCD');
      await page.fill('#replace-issued', '2026-12-01');
      await page.fill('#replace-expires', '2031-12-01');
      await page.fill('#replace-reason', 'lost on the metro; new card at the counter');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      await page.click('#replace-submit');
      await page.waitForSelector('#card-found[data-status=REPLACED]');
      expect(await page.textContent('#replace-done')).toMatch(new RegExp(`^Replaced by card ${newNumber}: .+ moves to it at .+\\.$`));
      expect(await page.locator('#replace-number').count()).toBe(0); // a replaced card is not replaced again
      await screenshot(page, 'issuer-replace');

      const em = world.db.orm.em.fork();
      const [old] = await em.execute<{ id: string; status: string; holder_id: string }[]>(`select id, status, holder_id from card where card_number = ?`, [cardNumber]);
      const [made] = await em.execute<{ id: string; status: string; holder_id: string; asn: string }[]>(`select id, status, holder_id, asn from card where card_number = ?`, [newNumber]);
      expect(old!.status).toBe('REPLACED');
      expect(made).toMatchObject({ status: 'ACTIVE', holder_id: old!.holder_id });
      expect(made!.asn.toUpperCase()).toBe('ABCDEF0123456789ABCD');
      expect(await em.execute(`select 1 from card_balance_transfer where from_card_id = ? and to_card_id = ?`, [old!.id, made!.id])).toHaveLength(1);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('4. the operator closes and clears a window and resolves a reconciliation difference', () => {
  // Ten days ago in Shenzhen: one top-up of ours the gateway agrees with, and a charge only the gateway has.
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.now() - 10 * 86_400_000));
  const at = (time: string) => new Date(`${day}T${time}+08:00`);
  const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
  const books = [
    { id: 'txn_1', object: 'balance_transaction', type: 'charge', source: 'ch_ours_too', amount: 2_000, fee: 20, net: 1_980, currency: 'cny', created: seconds(at('09:00:00')), available_on: seconds(at('09:00:00')) },
    { id: 'txn_2', object: 'balance_transaction', type: 'charge', source: 'ch_only_theirs', amount: 700, fee: 7, net: 693, currency: 'cny', created: seconds(at('18:00:00')), available_on: seconds(at('18:00:00')) },
  ];

  beforeAll(async () => {
    await consoleUser('operator', 'OPERATOR', null, 'OneCard operations', ['settlements:read', 'settlements:manage', 'ledger:read', 'tenants:manage']);
    nock.disableNetConnect();
    nock.enableNetConnect('127.0.0.1');
    nock(GATEWAY)
      .persist()
      .get('/v1/balance_transactions')
      .query(true)
      .reply((uri: string) => {
        const q = new URL(uri, GATEWAY).searchParams;
        const data = books.filter((t) => t.created >= Number(q.get('created[gte]') ?? 0) && t.created < Number(q.get('created[lt]') ?? Infinity));
        return [200, { object: 'list', url: '/v1/balance_transactions', data, has_more: false }];
      });
    const em = world.db.orm.em.fork();
    const topUp = randomUUID();
    await em.transactional(async (tx) => {
      const clearing = await gatewayClearingAccount(tx, 'CNY');
      const pending = await pendingLoadAccount(tx, world.sz.cardCompanyId, 'CNY');
      await post(tx, { key: `top-up:${topUp}:paid`, description: 'console test top-up', lines: [debit(clearing.id, 2_000n), credit(pending.id, 2_000n)] });
      await recordClearingItem(tx, { kind: 'TOP_UP', participant: { kind: 'CARD_COMPANY', id: world.sz.cardCompanyId }, cardCompanyId: world.sz.cardCompanyId, amount: 2_000n, currency: 'CNY', entryKey: `top-up:${topUp}:paid`, reference: topUp, gatewayReference: 'ch_ours_too', occurredAt: at('09:00:00') });
    });
  });

  it('Close, Clear, Reconcile on the window; the difference resolved with a note; the API agrees', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'operator');
      const label = `SZ ${day}`;
      const row = page.locator(`tr[data-window="${label}"]`);
      await row.waitFor();
      expect(await row.locator('.status').textContent()).toBe('OPEN');

      await page.getByRole('button', { name: `Close ${label}` }).click();
      await waitForStatus(page, `tr[data-window="${label}"]`, 'CLOSED');
      await page.getByRole('button', { name: `Clear ${label}` }).click();
      // Cleared into a batch; with nothing to pay out (a top-up's money stays with the card company) it is settled at once.
      await waitForStatus(page, `tr[data-window="${label}"]`, 'SETTLED');

      await page.getByRole('button', { name: `Reconcile with the gateway ${label}` }).click();
      await page.waitForSelector('#reconcile-done');
      expect(await page.textContent('#reconcile-done')).toBe('Reconciled: 1 matched, 1 differences (1 open).');
      const difference = page.locator('tr[data-difference="ch_only_theirs"]');
      await difference.waitFor();
      expect(await difference.textContent()).toContain('THEIRS_ONLY');
      expect(await difference.textContent()).toContain('¥7.00');

      const note = 'A test charge the gateway made by hand; refunded at the gateway, case GW-2201.';
      await page.getByLabel('Note ch_only_theirs').fill(note);
      await page.keyboard.press('Enter'); // the form submits from the keyboard
      await waitForStatus(page, 'tr[data-difference="ch_only_theirs"]', 'RESOLVED');
      expect(await difference.textContent()).toContain(note);
      await screenshot(page, 'operator-settlement');

      const [row2] = await world.db.orm.em.fork().execute<{ status: string; note: string; window_status: string }[]>(
        `select d.status, d.note, w.status as window_status from reconciliation_difference d join settlement_window w on w.id = d.window_id where d.gateway_reference = 'ch_only_theirs'`,
      );
      expect(row2).toEqual({ status: 'RESOLVED', note, window_status: 'SETTLED' });

      // The ledger check, from its page: the ledger balances.
      await page.getByRole('link', { name: 'Ledger' }).click();
      await page.click('#ledger-run');
      await page.waitForSelector('#ledger-result[data-problems="0"]');
      expect(await page.textContent('#ledger-result')).toContain('The ledger balances: no problem found.');
      expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

/**
 * The Guangzhou business day whose window 4b closes and 4e and 4f open: the day the merchant's
 * payment was booked on, read from its clearing item (a run that crosses midnight in Shanghai would
 * otherwise close one day and look for the next).
 */
let windowDay: string;

describe('4b. the merchant’s settlement statements', () => {
  // Today's Guangzhou window, closed and cleared by the operator's back end: the merchant's ¥30.00 payment and its ¥12.50 refund.
  let today: string;
  const cityHour = (d: Date) => new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', hour: '2-digit', hourCycle: 'h23' }).format(d);
  let shopId: string;

  beforeAll(async () => {
    [{ day: today }] = await world.db.orm.em
      .fork()
      .execute<{ day: string }[]>(`select to_char(min(i.business_day), 'YYYY-MM-DD') as day from clearing_item i join merchant m on m.id = i.participant_id where m.name = 'Console Tea House'`);
    windowDay = today;
    const made = await createClient(world.db.orm.em.fork(), { kind: 'OPERATOR', tenantId: null, name: 'operations back end', scopes: ['settlements:manage'] });
    const operator = new OneCardClient({ baseUrl: world.server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: 'settlements:manage' });
    const closed = await operator.request<{ closeSettlementWindow: { window: { id: string } | null; userErrors: unknown[] } }>(
      'mutation($input: CloseSettlementWindowInput!) { closeSettlementWindow(input: $input) { window { id } userErrors { code message } } }',
      { input: { city: toGlobalId('City', world.gz.cityId), businessDay: today } },
    );
    expect(closed.closeSettlementWindow.userErrors).toEqual([]);
    const cleared = await operator.request<{ clearSettlementWindow: { userErrors: unknown[] } }>('mutation($input: ClearSettlementWindowInput!) { clearSettlementWindow(input: $input) { userErrors { code message } } }', {
      input: { window: closed.closeSettlementWindow.window!.id },
    });
    expect(cleared.clearSettlementWindow.userErrors).toEqual([]);
    [{ id: shopId }] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from merchant where name = 'Console Tea House'`);
  });

  it('lists the day’s statement, charts its payment and refund by hour and channel, and downloads the CSV file', async () => {
    const items = (await world.db.orm.em.fork().execute<{ kind: string; epoch_ms: string }[]>(`select kind, (extract(epoch from occurred_at) * 1000)::bigint::text as epoch_ms from clearing_item where participant_id = ? order by kind`, [shopId])).map((i) => ({ kind: i.kind, occurred_at: new Date(Number(i.epoch_ms)) }));
    expect(items.map((i) => i.kind)).toEqual(['PAYMENT', 'REFUND']);
    const page = await consolePage();
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'Settlement statements' }).click();
      const row = page.locator(`tr[data-statement="GZ ${today}"]`);
      await row.waitFor();
      const cells = await row.locator('td, th').allTextContents();
      // business day, city, status, sales, gross, refunds, fees, net: the merchant has no fee plan.
      expect(cells.slice(0, 8)).toEqual([today, 'GZ', expect.stringMatching(/^(PAYING|PAID)$/), '1', '¥30.00', '¥12.50', '¥0.00', '¥17.50']);

      // The chart of the newest statement: each channel at the city hour it happened, and the channel totals.
      await page.waitForSelector(`#statement-volume[data-statement="GZ ${today}"]`);
      const said = await page.getAttribute('#statement-volume svg', 'aria-label');
      const [payment, refund] = items;
      for (const [item, text] of [[payment!, 'PAYMENT ¥30.00'], [refund!, 'REFUND ¥12.50']] as const) expect(said).toMatch(new RegExp(`${cityHour(item.occurred_at)}: [^;]*${text}`));
      expect(await page.locator('#statement-volume svg rect').count()).toBe(2);
      expect(await page.locator('#statement-channels tbody tr').evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)))).toEqual([
        ['PAYMENT', '1', '¥30.00'],
        ['REFUND', '1', '¥12.50'],
      ]);
      await screenshot(page, 'merchant-statements');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);

      // The period's CSV file: the statement's line, amounts in minor units.
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#statements-csv')]);
      const csv = await fs.readFile((await download.path())!, 'utf8');
      const [header, ...lines] = csv.trim().split(/\r?\n/);
      expect(lines).toHaveLength(1);
      const line = Object.fromEntries(header!.split(',').map((name, i) => [name, lines[0]!.split(',')[i]]));
      expect(line).toMatchObject({ business_day: today, city: 'GZ', participant_name: 'Console Tea House', gross: '3000', refunds: '1250', net: '1750' });
      expect(download.suggestedFilename()).toMatch(/^settlement-statements-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);

      // In Chinese: the words follow, the figures stay.
      await page.getByRole('button', { name: '中文' }).click();
      await page.getByRole('heading', { name: '结算单' }).waitFor();
      expect(await row.textContent()).toContain('¥17.50');
      await page.getByRole('button', { name: 'English' }).click();
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('4f. the biller’s settlement statements', () => {
  it('the same page: today’s statement of the bill paid with the card, charted as BILL_PAYMENT', async () => {
    const today = windowDay;
    const page = await consolePage();
    try {
      await signIn(page, 'biller');
      await page.getByRole('link', { name: 'Settlement statements' }).click();
      const row = page.locator(`tr[data-statement="GZ ${today}"]`);
      await row.waitFor();
      expect((await row.locator('td, th').allTextContents()).slice(0, 8)).toEqual([today, 'GZ', expect.stringMatching(/^(PAYING|PAID)$/), '1', '¥45.20', '¥0.00', '¥0.00', '¥45.20']);
      await page.waitForSelector(`#statement-volume[data-statement="GZ ${today}"]`);
      expect(await page.locator('#statement-channels tbody tr').evaluateAll((rows) => rows.map((r) => [...r.children].map((c) => c.textContent)))).toEqual([['BILL_PAYMENT', '1', '¥45.20']]);
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('4e. the card company’s settlement windows', () => {
  it('opens today’s cleared Guangzhou window: the batch, each participant’s net as a chart and a line; the database agrees', async () => {
    const today = windowDay;
    const lines = await world.db.orm.em.fork().execute<{ participant_name: string }[]>(
      `select l.participant_name from settlement_line l join settlement_batch b on b.id = l.batch_id join settlement_window w on w.id = b.window_id join city c on c.id = w.city_id
        where c.code = 'GZ' and w.business_day = ? order by l.participant_name`,
      [today],
    );
    const page = await consolePage();
    try {
      await signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Settlement', exact: true }).click();
      await page.getByRole('button', { name: `Batch GZ ${today}` }).click();
      await page.waitForSelector(`#batch[data-window="GZ ${today}"]`);
      expect((await page.locator('#batch-lines tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-participant')))).sort()).toEqual(lines.map((l) => l.participant_name));
      expect(await page.locator('#batch-lines tr[data-participant="Console Tea House"] td').allTextContents()).toEqual(['MERCHANT', '1', '¥30.00', '¥12.50', '¥0.00', '¥17.50', '¥17.50', expect.stringMatching(/^(PAYING|PAID)$/)]);
      expect(await page.locator('#batch-lines tr[data-participant="Console Water"] td').allTextContents()).toEqual(['BILLER', '1', '¥45.20', '¥0.00', '¥0.00', '¥45.20', '¥45.20', expect.stringMatching(/^(PAYING|PAID)$/)]);
      const said = await page.getAttribute('#batch figure.chart svg', 'aria-label');
      expect(said).toContain('Console Tea House ¥17.50');
      expect(said).toContain('Console Water ¥45.20');
      expect(await page.locator('#batch figure.chart rect').count()).toBe(lines.length);
      await screenshot(page, 'issuer-settlement');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('4c. the operator’s PKI', () => {
  it('lists every CA with its certificate and CRL, and tells the revoked reader’s certificate from an unknown serial', async () => {
    const em = world.db.orm.em.fork();
    const cas = await em.execute<{ id: string }[]>(`select id from certificate_authority order by id`);
    const [revoked] = await em.execute<{ serial: string }[]>(`select serial from issued_certificate where profile = 'reader' and status = 'REVOKED' order by serial limit 1`);
    const page = await consolePage();
    try {
      await signIn(page, 'operator');
      await page.getByRole('link', { name: 'PKI' }).click();
      await page.waitForSelector('#cas tbody tr');
      expect((await page.locator('#cas tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-ca')))).sort()).toEqual(cas.map((c) => c.id));
      // A working CA's CRL link serves its CRL (DER), as relying parties fetch it.
      const crl = await page.locator('#cas a.crl').first().getAttribute('href');
      const served = await fetch(new URL(new URL(crl!).pathname, world.server.url));
      expect([served.status, served.headers.get('content-type')]).toEqual([200, 'application/pkix-crl']);

      // The reader revoked in 3. (its serial typed in capitals with colons, as certificates print it).
      await page.fill('#certificate-serial', revoked!.serial.toUpperCase().replace(/(..)(?=.)/g, '$1:'));
      await page.click('#certificate-check');
      await page.waitForSelector('#certificate-status[data-status=REVOKED]');
      expect(await page.textContent('#certificate-status')).toContain(revoked!.serial);
      await screenshot(page, 'operator-pki');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);

      await page.fill('#certificate-serial', 'ffff0000');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#certificate-status[data-status=UNKNOWN]');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('4d. the operator’s tenants', () => {
  it('lists the cities, makes a merchant in Shenzhen, and sees it listed with its creation in the city’s time', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'operator');
      await page.getByRole('link', { name: 'Tenants' }).click();
      await page.locator('#cities tr[data-city="SZ"]').waitFor();
      expect(await page.locator('#cities tr[data-city="GZ"]').textContent()).toContain('Asia/Shanghai');
      await page.selectOption('#merchant-city', { label: (await page.locator('#merchant-city option', { hasText: /^SZ · / }).textContent())! });
      await page.fill('#merchant-name', 'Console Noodle Bar');
      await page.click('#merchant-create');
      await page.waitForSelector('#merchant-made');
      const row = page.locator('#merchants tr[data-merchant="Console Noodle Bar"]');
      await row.waitFor();
      const [made] = await world.db.orm.em.fork().execute<{ code: string; created_at: string }[]>(
        `select c.code, (extract(epoch from m.created_at) * 1000)::bigint::text as created_at from merchant m join city c on c.id = m.city_id where m.name = 'Console Noodle Bar'`,
      );
      expect(made!.code).toBe('SZ');
      const created = new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Shanghai', dateStyle: 'medium', timeStyle: 'short' }).format(new Date(Number(made!.created_at)));
      expect(await row.locator('td').allTextContents()).toEqual(['SZ', 'CNY', 'ACTIVE', created, 'Edit']);
      await screenshot(page, 'operator-tenants');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

/** axe-core's findings on the page as it is now (run in the page; the CSP does not apply to what the test evaluates). */
async function accessibilityViolations(page: Page): Promise<{ id: string; impact: string; help: string; nodes: string[] }[]> {
  await page.evaluate(await fs.readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8'));
  return page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')) })))`);
}

describe('accessibility and language', () => {
  it.each([['merchant' as const], ['biller' as const], ['issuer' as const], ['operator' as const]])('the %s’s pages have no serious or critical accessibility violations (axe-core)', async (party) => {
    const page = await consolePage();
    try {
      await page.goto(`${world.server.url}/console/`);
      await page.getByRole('button', { name: `Sign in to ${users[party].name}` }).waitFor();
      if (party === 'merchant') await screenshot(page, 'sign-in');
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
      await signIn(page, party);
      await page.locator('main table, main form').first().waitFor();
      if (party === 'merchant') {
        await page.getByRole('link', { name: 'console-order-1' }).click();
        await page.waitForSelector('#refund-amount');
      }
      expect((await accessibilityViolations(page)).filter((v) => ['serious', 'critical'].includes(v.impact))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('switches to Chinese and back: words, money and the page’s lang follow; the choice is kept', async () => {
    const page = await consolePage();
    try {
      await signIn(page, 'merchant');
      await page.getByRole('link', { name: 'console-order-1' }).waitFor();
      await page.getByRole('button', { name: '中文' }).click();
      await page.getByRole('link', { name: '支付' }).waitFor();
      expect(await page.getAttribute('html', 'lang')).toBe('zh-CN');
      expect(await page.textContent('main table')).toContain('已退款');
      expect(await page.textContent('main table')).toContain('¥30.00');
      await page.reload();
      await page.getByRole('link', { name: '支付' }).waitFor();
      await page.getByRole('button', { name: 'English' }).click();
      await page.getByRole('link', { name: 'Payments' }).waitFor();
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the sign-in works from the keyboard alone', async () => {
    const page = await consolePage();
    try {
      await page.goto(`${world.server.url}/console/`);
      const first = page.getByRole('button', { name: /^Sign in to / }).first();
      await first.waitFor();
      await first.focus();
      await page.keyboard.press('Enter');
      await page.waitForURL(/\/oauth\/interaction\//);
      expect(problemsOf(page)).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

it('the console is served with no inline script, under the CSP, and unknown assets are 404', async () => {
  const res = await fetch(`${world.server.url}/console/`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
  const html = await res.text();
  expect(html.match(/<script[^>]*>/g)).toEqual(['<script src="assets/console.js" defer>']);
  expect((await fetch(`${world.server.url}/console/assets/nope.js`)).status).toBe(404);
});

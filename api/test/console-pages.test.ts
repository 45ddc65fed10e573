/**
 * The console's pages over the API added for them (issue 26), in Chromium against the started API,
 * each clerk signing in through OneCard's own sign-in page:
 *  1. a biller opens a bill and sees its payments, newest first;
 *  2. a card company settles an unresolved pending load (a write started on a card that never
 *     confirmed it) with a note, from the keyboard;
 *  3. the operator registers a merchant's console sign-in client with its kind's scopes, then
 *     disables it; a merchant's admin sees its own party's clients only;
 *  4. a merchant filters its payments by date and downloads them as CSV; rotates a webhook
 *     endpoint's secret (shown once) and disables the endpoint;
 *  5. a card company reads its settlement statements (the statements page); the operator and the
 *     card company read the day's interchange as a chart;
 *  6. the operator makes a city (with its card company) and a biller;
 *  7. the operator makes a fee plan and changes it, the rate typed in per cent;
 *  8. the operator edits a city, a merchant and a biller.
 * Each checks the page, the API or the database, axe-core, and that nothing failed in the page.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { expireBillPayments } from '../src/bills/bill-payments.service.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { payableAccount } from '../src/ledger/accounts.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { closeWindow } from '../src/settlement/windows.js';
import { BillerKind } from '../src/tenancy/biller.entity.js';
import { createBiller, createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { recordPendingLoad } from '../src/topups/topups.service.js';
import { apiClient, brokenRelay, cardholderApp, expireSession, issueCard, newReader, OPEN, sessionsOf, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import { useConsoleBrowser } from './support/console-browser.js';

const world = useCardSessionWorld();
const ui = useConsoleBrowser(world);

let holder: Awaited<ReturnType<typeof cardholderApp>>;

beforeAll(async () => {
  holder = await cardholderApp(world, 'console-pages-holder');
  // The card company's and the operator's clerks, used by several parts below.
  await ui.consoleUser('issuer', 'ISSUER', world.gz.cardCompanyId, 'Pages Card Company', ['cards:read', 'topups:write', 'readers:manage', 'settlements:read', 'users:manage']);
  // settlements:read: the operator's home page is its settlement windows.
  await ui.consoleUser('operator', 'OPERATOR', null, 'Pages Operations', ['clients:manage', 'tenants:manage', 'settlements:read']);
});

describe('1. a biller opens a bill and sees its payments', () => {
  let billId: string;

  beforeAll(async () => {
    const water = await createBiller(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Pages Water', kind: BillerKind.WATER });
    await ui.consoleUser('biller', 'BILLER', water.id, 'Pages Water', ['bills:read', 'bills:write']);
    const biller = await apiClient(world, 'BILLER', water.id, ['bills:write']);
    const published = await biller.request<{ publishBill: { bill: { id: string } } }>('mutation($input: BillInput!) { publishBill(input: $input) { bill { id } userErrors { code } } }', {
      input: { accountNumber: 'PW-001', period: '2026-11', amountDue: 4_520, dueDate: '2099-12-31', billerReference: 'pw-2026-11-001', allowPartial: true },
    });
    billId = published.publishBill.bill.id;
    // The holder starts paying ¥20.00, never taps (the expiry job cancels it), then starts ¥25.20.
    for (const [i, amount] of [2_000, 2_520].entries()) {
      const made = await holder.app.request<{ payBill: { userErrors: unknown[] } }>('mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code } } }', { input: { bill: billId, amount, idempotencyKey: randomUUID() } });
      expect(made.payBill.userErrors).toEqual([]);
      if (i === 0) await expireBillPayments(world.db.orm.em.fork(), new Date(Date.now() + 3_600_000));
    }
  });

  it('the bill’s reference opens it: its amounts, then its payments newest first with their status', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'biller');
      await page.getByRole('link', { name: 'pw-2026-11-001' }).click();
      await page.waitForSelector('#bill-payments tbody tr:nth-child(2)');
      expect(new URL(page.url()).hash).toBe(`#/bills/${encodeURIComponent(billId)}`);
      expect(await page.textContent('#bill-facts')).toContain('PW-001');
      const rows = await page.$$eval('#bill-payments tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-status'), tr.children[2]!.textContent]));
      expect(rows).toEqual([
        ['REQUIRES_CARD', '¥25.20'],
        ['CANCELED', '¥20.00'],
      ]);
      expect(await page.textContent('#bill-payments')).toContain('EXPIRED');
      await ui.screenshot(page, 'biller-bill-payments');
      expect(await ui.seriousViolations(page)).toEqual([]);
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('2. a card company settles an unresolved pending load', () => {
  let topUp: string;
  let cardNumber: string;

  beforeAll(async () => {
    // The holder's card is owed ¥12.00; its write onto the card starts, and the card is pulled away after MAC2.
    const reader = await newReader(world, 'PAGES-HOME', world.gz, { kind: 'CARDHOLDER', id: holder.id });
    const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    cardNumber = testCardNumber('623199000000');
    const em = world.db.orm.em.fork();
    const card = await registerCard(em, world.gz.cardCompanyId, { cardNumber, asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId: holder.id });
    const funding = await openAccount(em, { code: 'test.console-pages.funding.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const recorded = await em.transactional((tx) => recordPendingLoad(tx, { origin: 'REFUND', cardId: card.id, key: 'console-pages-load', amount: 1_200n, currency: 'CNY', fromAccountId: funding.id, description: 'console pages test', metadata: {}, cause: 'test' }));
    topUp = toGlobalId('TopUp', recorded.topUpId);
    const opened = await holder.app.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: reader.id, operation: 'LOAD', topUp } });
    await expect(sessionsOf(brokenRelay(holder.app, 1, 'answer', 'card removed'), () => reader).agent(chip).run(opened.openCardSession.session)).rejects.toThrow('card removed');
    await expireSession(world, opened.openCardSession.session.id);
  });

  it('lists it, refuses to settle without a note, releases it with a note typed and Enter; it then waits for the next tap', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Pending loads' }).click();
      const row = page.locator(`tr[data-card="${cardNumber}"][data-status=UNRESOLVED]`);
      await row.waitFor();
      expect(await row.textContent()).toContain('¥12.00');
      await ui.screenshot(page, 'issuer-pending-loads');
      expect(await ui.seriousViolations(page)).toEqual([]);

      // No note: said in the page, nothing sent.
      await page.getByRole('button', { name: `Not loaded ${cardNumber}` }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('Say in the note');

      const input = page.getByRole('textbox', { name: `Note ${cardNumber}` });
      await input.fill('chip balance shows the 12.00 never arrived');
      await input.press('Enter');
      await page.waitForSelector('#pending-settled');
      expect(await page.textContent('#pending-settled')).toContain('released');
      await page.locator('#pending-loads-title ~ *', { hasText: 'Nothing here yet.' }).first().waitFor();
      const [row2] = await world.db.orm.em.fork().execute<{ status: string; load_session_id: string | null; cause: string }[]>(
        `select t.status, t.load_session_id, h.cause from top_up t join top_up_history h on h.top_up_id = t.id where t.id = ? order by h.id desc limit 1`,
        [Buffer.from(topUp, 'base64url').toString().split(':')[1]],
      );
      expect(row2).toEqual({ status: 'PAID', load_session_id: null, cause: expect.stringContaining('chip balance shows the 12.00 never arrived') });

      await page.selectOption('#pending-status', 'WAITING');
      await page.locator(`tr[data-card="${cardNumber}"][data-status=WAITING]`).waitFor();
      expect(await page.locator(`tr[data-card="${cardNumber}"] button`).count()).toBe(0);

      // In Chinese: the page's words follow.
      await page.getByRole('button', { name: '中文' }).click();
      await page.getByRole('heading', { name: '待圈存' }).waitFor();
      await page.getByRole('button', { name: 'English' }).click();
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('3. the operator registers a console sign-in client, then disables it', () => {
  let shopId: string;

  beforeAll(async () => {
    shopId = (await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Pages Noodle Bar' })).id;
    await ui.consoleUser('merchant', 'MERCHANT', shopId, 'Pages Noodle Bar', ['payments:read', 'users:manage']);
  });

  it('the kind’s scopes offered and ticked, the client registered as a public client of the console, listed, then disabled', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'operator');
      await page.getByRole('link', { name: 'OAuth clients' }).click();
      await page.waitForSelector('#client-scopes input[value="refunds:write"]');
      // A merchant's scopes only: no operator scope is offered.
      const offered = await page.locator('#client-scopes input').evaluateAll((inputs) => inputs.map((i) => [i.getAttribute('value'), (i as unknown as { checked: boolean }).checked] as const));
      expect(offered.map(([s]) => s)).toContain('payments:read');
      expect(offered.map(([s]) => s)).not.toContain('clients:manage');
      expect(offered.every(([, checked]) => checked)).toBe(true);
      await page.selectOption('#client-tenant', { label: 'Pages Noodle Bar · GZ' });
      await page.fill('#client-name', 'Noodle Bar console (2nd)');
      await page.uncheck('#client-scopes input[value="webhooks:manage"]');
      await page.click('#client-create');
      await page.waitForSelector('#client-made');
      const clientId = (await page.textContent('#client-made'))!.match(/oc_merchant_\S+?(?=\.$)/)![0];
      const row = page.locator(`tr[data-client="${clientId}"]`);
      await row.waitFor();
      expect(await row.textContent()).toContain('ENABLED');
      const [made] = await world.db.orm.em.fork().execute<{ kind: string; tenant_id: string; auth_method: string; redirect_uris: string[]; scopes: string[]; secret_hash: string | null }[]>(
        `select kind, tenant_id, auth_method, redirect_uris, scopes, secret_hash from oauth_client where client_id = ?`,
        [clientId],
      );
      expect(made).toMatchObject({ kind: 'MERCHANT', tenant_id: shopId, auth_method: 'none', redirect_uris: [`${world.server.url}/console/`], secret_hash: null });
      expect(made!.scopes).not.toContain('webhooks:manage');
      expect(made!.scopes).toContain('refunds:write');
      await ui.screenshot(page, 'operator-clients');
      expect(await ui.seriousViolations(page)).toEqual([]);

      page.once('dialog', (d) => d.accept());
      await page.getByRole('button', { name: 'Disable Noodle Bar console (2nd)' }).click();
      await page.waitForSelector('#client-disabled');
      await page.locator(`tr[data-client="${clientId}"]`, { hasText: 'DISABLED' }).waitFor();
      const [after] = await world.db.orm.em.fork().execute<{ disabled: boolean }[]>(`select disabled from oauth_client where client_id = ?`, [clientId]);
      expect(after).toEqual({ disabled: true });
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the merchant’s admin sees its own party’s clients only, with nothing to register or disable', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'merchant');
      await page.getByRole('link', { name: 'OAuth clients' }).click();
      await page.waitForSelector('#clients tbody tr');
      const names = await page.$$eval('#clients tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-name')));
      expect(names.sort()).toEqual(['Noodle Bar console (2nd)', 'Pages Noodle Bar']);
      expect(await page.locator('#client-create').count()).toBe(0);
      expect(await page.locator('#clients button').count()).toBe(0);
      expect(await ui.seriousViolations(page)).toEqual([]);
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

/** A day in Guangzhou, `daysAgo` before today (YYYY-MM-DD). */
const cityDay = (daysAgo = 0) => new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date(Date.now() - daysAgo * 86_400_000));

describe('4. a merchant’s payments by date, as CSV; a webhook endpoint’s secret rotated, the endpoint disabled', () => {
  const earlier = cityDay(5);
  let secret: string;

  beforeAll(async () => {
    const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Pages Dumplings' });
    await ui.consoleUser('dumplings', 'MERCHANT', shop.id, 'Pages Dumplings', ['payments:read', 'refunds:write', 'webhooks:manage']);
    const backEnd = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'webhooks:manage']);
    for (const order of ['dumplings-old', 'dumplings-new']) {
      const made = await backEnd.request<{ createPayment: { userErrors: unknown[] } }>('mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code } } }', {
        input: { amount: order === 'dumplings-old' ? 1_850 : 990, currency: 'CNY', orderReference: order, idempotencyKey: randomUUID() },
      });
      expect(made.createPayment.userErrors).toEqual([]);
    }
    // The old order was made five days ago (10:00 in the city).
    await world.db.orm.em.fork().execute(`update payment set created_at = ?::timestamptz where order_reference = 'dumplings-old'`, [`${earlier}T10:00:00+08:00`]);
    const endpoint = await backEnd.request<{ createWebhookEndpoint: { secret: string } }>('mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } secret userErrors { code } } }', {
      input: { url: 'https://dumplings.example/hooks', eventTypes: ['*'] },
    });
    secret = endpoint.createWebhookEndpoint.secret;
  });

  it('the payments of one day, in the city’s time, listed and downloaded as CSV in minor units', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'dumplings');
      await page.getByRole('link', { name: 'dumplings-new' }).waitFor();
      await page.fill('#payments-from', earlier);
      await page.fill('#payments-to', earlier);
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByRole('link', { name: 'dumplings-new' }).waitFor({ state: 'detached' });
      expect(await page.getByRole('link', { name: 'dumplings-old' }).count()).toBe(1);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#payments-csv')]);
      const [header, ...lines] = (await fs.readFile((await download.path())!, 'utf8')).trim().split(/\r?\n/);
      expect(header).toBe('order_reference,status,amount,refunded,currency,created_at,payment_id');
      expect(lines.map((l) => l.split(',').slice(0, 5))).toEqual([['dumplings-old', 'REQUIRES_CARD', '1850', '0', 'CNY']]);
      expect(download.suggestedFilename()).toBe(`payments-${earlier}-to-${earlier}.csv`);
      // From the day after: only today's.
      await page.fill('#payments-from', cityDay(4));
      await page.fill('#payments-to', cityDay());
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.getByRole('link', { name: 'dumplings-new' }).waitFor();
      expect(await page.getByRole('link', { name: 'dumplings-old' }).count()).toBe(0);
      await ui.screenshot(page, 'merchant-payments-by-date');
      expect(await ui.seriousViolations(page)).toEqual([]);
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('Rotate secret shows the new secret once; Disable stops the endpoint; the database agrees', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'dumplings');
      await page.getByRole('link', { name: 'Webhooks' }).click();
      page.once('dialog', (d) => d.accept());
      await page.getByRole('button', { name: 'Rotate secret https://dumplings.example/hooks' }).click();
      await page.waitForSelector('#rotated-secret');
      const rotated = (await page.textContent('#rotated-secret'))!;
      expect(rotated).toMatch(/^\S{20,}$/);
      expect(rotated).not.toBe(secret);
      await ui.screenshot(page, 'merchant-webhook-rotated');
      expect(await ui.seriousViolations(page)).toEqual([]);
      await page.getByRole('button', { name: 'Disable https://dumplings.example/hooks' }).click();
      await page.locator('tr[data-endpoint="https://dumplings.example/hooks"]', { hasText: 'DISABLED' }).waitFor();
      expect(await page.locator('#rotated-secret').count()).toBe(0); // shown once
      const [row] = await world.db.orm.em.fork().execute<{ enabled: boolean; previous_secret_expires_at: Date | null }[]>(`select enabled, previous_secret_expires_at from webhook_endpoint where url = 'https://dumplings.example/hooks'`);
      expect(row!.enabled).toBe(false);
      expect(row!.previous_secret_expires_at).not.toBeNull(); // the old secret signs beside the new one for a while
      await page.getByRole('button', { name: 'Enable https://dumplings.example/hooks' }).click();
      await page.locator('tr[data-endpoint="https://dumplings.example/hooks"]', { hasText: 'ENABLED' }).waitFor();
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('5. a card company’s settlement statements, and the day’s interchange', () => {
  const day = cityDay(3);

  beforeAll(async () => {
    // ¥10.00 of transit for Guangzhou's card company on a day three days ago, its window closed and cleared.
    const em = world.db.orm.em.fork();
    const funding = await openAccount(em, { code: 'test.console-pages.transit.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const payable = await payableAccount(em, 'CARD_COMPANY', world.gz.cardCompanyId, 'CNY');
    await em.transactional(async (tx) => {
      await post(tx, { key: 'console-pages-transit', description: 'console pages transit', lines: [debit(funding.id, 1_000n), credit(payable.id, 1_000n)] });
      await recordClearingItem(tx, { kind: 'TRANSIT', participant: { kind: 'CARD_COMPANY', id: world.gz.cardCompanyId }, cardCompanyId: world.gz.cardCompanyId, amount: 1_000n, currency: 'CNY', entryKey: 'console-pages-transit', reference: 'console-pages-transit', occurredAt: new Date(`${day}T10:00:00+08:00`) });
    });
    // And a Shenzhen card spends ¥5.50 at a Guangzhou shop that day: Shenzhen Tong owes Yangchengtong (互联互通).
    const shop = await createMerchant(em, { cityId: world.gz.cityId, name: 'Pages Tea Stall' });
    const shopPayable = await payableAccount(em, 'MERCHANT', shop.id, 'CNY');
    await em.transactional(async (tx) => {
      await post(tx, { key: 'console-pages-interchange', description: 'console pages interchange', lines: [debit(funding.id, 550n), credit(shopPayable.id, 550n)] });
      await recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: shop.id }, cardCompanyId: world.sz.cardCompanyId, amount: 550n, currency: 'CNY', entryKey: 'console-pages-interchange', reference: 'console-pages-interchange', occurredAt: new Date(`${day}T11:00:00+08:00`) });
    });
    const window = await closeWindow(em, { cityId: world.gz.cityId, businessDay: day, closedBy: 'test', cutoff: '02:00' });
    await clearWindow(em, window.id);
  });

  it('the statements page lists the day’s line for the card company, charted as TRANSIT', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'issuer');
      await page.getByRole('link', { name: 'Settlement statements' }).click();
      const row = page.locator(`tr[data-statement="GZ ${day}"]`);
      await row.waitFor();
      expect(await row.textContent()).toContain('¥10.00');
      await page.waitForSelector(`#statement-volume[data-statement="GZ ${day}"]`);
      expect(await page.getAttribute('#statement-volume svg', 'aria-label')).toContain('TRANSIT ¥10.00');
      await ui.screenshot(page, 'issuer-statements');
      expect(await ui.seriousViolations(page)).toEqual([]);
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('the day’s interchange, for the operator and for the card company: the net of each as a chart, and the position', async () => {
    for (const party of ['operator', 'issuer']) {
      const page = await ui.consolePage();
      try {
        await ui.signIn(page, party);
        await page.getByRole('link', { name: 'Interchange' }).click();
        await page.fill('#interchange-day', day);
        await page.getByRole('button', { name: 'Show' }).click();
        const position = page.locator('tr[data-position="SZ>GZ"]');
        await position.waitFor();
        expect((await position.locator('td, th').allTextContents()).slice(2)).toEqual(['1', '¥5.50', '¥0.00', '¥5.50']);
        const said = await page.getAttribute('#interchange svg', 'aria-label');
        expect(said).toContain('Yangchengtong (GZ) ¥5.50');
        // The operator sees every card company's net; a card company its own only (the position names the other).
        if (party === 'operator') expect(said).toMatch(/Shenzhen Tong \(SZ\) [-−]¥5\.50/);
        else expect(said).not.toContain('Shenzhen Tong');
        if (party === 'operator') await ui.screenshot(page, 'operator-interchange');
        expect(await ui.seriousViolations(page)).toEqual([]);
        expect(page.problems).toEqual([]);
      } finally {
        await page.close();
      }
    }
  });
});

describe('6. the operator makes a city (with its card company) and a biller', () => {
  it('a bad code is the API’s refusal shown in the form, nothing made; then HZ and a water company in it are made and listed; the database agrees', async () => {
    const page = await ui.consolePage();
    try {
      await ui.signIn(page, 'operator');
      await page.getByRole('link', { name: 'Tenants' }).click();
      await page.fill('#city-code', 'hz-1');
      await page.fill('#city-name', 'Hangzhou');
      await page.fill('#city-card-company', 'Hangzhou Tong');
      await page.click('#city-create');
      await page.waitForSelector('#new-city-title ~ ul.error[role=alert]');
      expect(await page.textContent('#new-city-title ~ ul.error')).toMatch(/[A-Z_]{5,}/);
      expect(await world.db.orm.em.fork().execute(`select 1 from city where name = 'Hangzhou'`)).toEqual([]);

      await page.fill('#city-code', 'HZ');
      await page.click('#city-create');
      await page.waitForSelector('#city-made');
      await page.locator('tr[data-city="HZ"]').waitFor();
      await page.selectOption('#biller-city', { label: 'HZ · Hangzhou' });
      await page.fill('#biller-name', 'West Lake Water');
      await page.selectOption('#biller-kind', 'WATER');
      await page.click('#biller-create');
      await page.waitForSelector('#biller-made');
      await page.locator('#billers', { hasText: 'West Lake Water' }).waitFor();
      await ui.screenshot(page, 'operator-new-city');
      expect(await ui.seriousViolations(page)).toEqual([]);
      const [row] = await world.db.orm.em.fork().execute<{ code: string; company: string; biller: string; kind: string }[]>(
        `select ci.code, cc.name as company, b.name as biller, b.kind from city ci join card_company cc on cc.city_id = ci.id join biller b on b.city_id = ci.id where ci.code = 'HZ'`,
      );
      expect(row).toEqual({ code: 'HZ', company: 'Hangzhou Tong', biller: 'West Lake Water', kind: 'WATER' });
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('7. the operator makes a fee plan and changes it', () => {
  it('a rate the page cannot read is said beside it, nothing sent; the plan made from "0.6" % and ¥0.50 is listed; a duplicate name is the API’s refusal beside the name; Edit changes it', async () => {
    const page = await ui.consolePage();
    const plan = () => world.db.orm.em.fork().execute<{ basis_points: number; fixed_fee: string; minimum_fee: string }[]>(`select basis_points, fixed_fee, minimum_fee from fee_plan where name = 'Pages Standard'`);
    try {
      await ui.signIn(page, 'operator');
      await page.getByRole('link', { name: 'Tenants' }).click();
      await page.fill('#fee-plan-name', 'Pages Standard');
      await page.fill('#fee-plan-rate', '0.605');
      await page.fill('#fee-plan-fixed', '0.50');
      await page.click('#fee-plan-create');
      expect(await page.textContent('#fee-plan-rate-error')).toContain('at most 2 decimals');
      expect(await page.getAttribute('#fee-plan-rate', 'aria-describedby')).toBe('fee-plan-rate-error');
      expect(await plan()).toEqual([]);

      await page.fill('#fee-plan-rate', '0.6');
      await page.press('#fee-plan-rate', 'Enter');
      await page.waitForSelector('#fee-plan-made');
      const row = page.locator('tr[data-plan="Pages Standard"]');
      await row.waitFor();
      expect((await row.textContent())!.replace(/\s+/g, ' ')).toContain('CNY0.60 %¥0.50¥0.00');
      expect(await plan()).toEqual([{ basis_points: 60, fixed_fee: '50', minimum_fee: '0' }]);

      // The same name again: the API refuses it, and the page puts its message beside the name.
      await page.fill('#fee-plan-name', 'Pages Standard');
      await page.fill('#fee-plan-rate', '1');
      await page.click('#fee-plan-create');
      await page.waitForSelector('#fee-plan-name-error');
      expect(await page.textContent('#fee-plan-name-error')).toBe('a fee plan with this name exists (DUPLICATE_NAME)');
      expect(await world.db.orm.em.fork().execute(`select 1 from fee_plan where name = 'Pages Standard'`)).toHaveLength(1);

      await page.getByRole('button', { name: 'Edit Pages Standard' }).click();
      // Edit opens the plan's current terms, the name focused.
      await page.waitForSelector('#edit-fee-plan-name:focus');
      expect(await page.inputValue('#edit-fee-plan-rate')).toBe('0.60');
      expect(await page.inputValue('#edit-fee-plan-fixed')).toBe('0.50');
      await page.fill('#edit-fee-plan-rate', '1.25');
      await page.fill('#edit-fee-plan-minimum', '2');
      await page.click('#edit-fee-plan-save');
      await page.waitForSelector('#fee-plan-saved');
      await page.locator('tr[data-plan="Pages Standard"]', { hasText: '1.25 %' }).waitFor();
      expect(await plan()).toEqual([{ basis_points: 125, fixed_fee: '50', minimum_fee: '200' }]);
      await ui.screenshot(page, 'operator-fee-plans');
      expect(await ui.seriousViolations(page)).toEqual([]);

      // In Chinese: the plans' words follow, the figures stay.
      await page.getByRole('button', { name: '中文' }).click();
      await page.getByRole('heading', { name: '费率方案', exact: true }).waitFor();
      expect(await page.textContent('#edit-fee-plan')).toContain('费率 %（0.60 即 60 个基点）');
      expect(await page.textContent('#fee-plans')).toContain('1.25 %');
      await page.getByRole('button', { name: 'English' }).click();
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describe('8. the operator edits a city, a merchant and a biller', () => {
  beforeAll(async () => {
    const em = world.db.orm.em.fork();
    const { city } = await createCity(em, { code: 'NB', name: 'Ningbo', cardCompanyName: 'Ningbo Tong', currency: 'CNY', timeZone: 'Asia/Shanghai' });
    // Names early in the alphabet: on the lists' first page.
    await createMerchant(em, { cityId: city.id, name: 'AA Pages Noodles' });
    await createBiller(em, { cityId: city.id, name: 'AA Pages Gas', kind: BillerKind.GAS });
  });

  it('Edit opens the current values; an unknown time zone is the API’s refusal beside it, nothing changed; the new names are listed; the database agrees', async () => {
    const page = await ui.consolePage();
    const db = () => world.db.orm.em.fork();
    try {
      await ui.signIn(page, 'operator');
      await page.getByRole('link', { name: 'Tenants' }).click();
      await page.getByRole('button', { name: 'Edit Ningbo' }).click();
      await page.waitForSelector('#edit-city-card-company');
      expect(await page.inputValue('#edit-city-card-company')).toBe('Ningbo Tong');
      await page.fill('#edit-city-name', 'Ningbo City');
      await page.fill('#edit-city-time-zone', 'Asia/Ningbo');
      await page.click('#edit-city-save');
      await page.waitForSelector('#edit-city-time-zone-error');
      expect(await page.textContent('#edit-city-time-zone-error')).toContain('INVALID_TIME_ZONE');
      expect(await page.textContent('#edit-city-time-zone-error')).toContain('not an IANA time zone');
      expect(await db().execute(`select name, time_zone from city where code = 'NB'`)).toEqual([{ name: 'Ningbo', time_zone: 'Asia/Shanghai' }]);

      await page.fill('#edit-city-time-zone', 'Asia/Shanghai');
      await page.press('#edit-city-time-zone', 'Enter');
      await page.waitForSelector('#city-saved');
      await page.locator('tr[data-city="NB"]', { hasText: 'Ningbo City' }).waitFor();

      await page.getByRole('button', { name: 'Edit AA Pages Noodles' }).click();
      // The form's first field takes the focus.
      await page.waitForSelector('#edit-merchant-name:focus');
      expect(await page.inputValue('#edit-merchant-status')).toBe('ACTIVE');
      await page.fill('#edit-merchant-name', 'AA Pages Noodle House');
      await page.click('#edit-merchant-save');
      await page.waitForSelector('#merchant-saved');
      await page.locator('tr[data-merchant="AA Pages Noodle House"]').waitFor();

      await page.getByRole('button', { name: 'Edit AA Pages Gas' }).click();
      await page.fill('#edit-biller-name', 'AA Pages Gas Company');
      await page.selectOption('#edit-biller-status', 'SUSPENDED');
      await page.click('#edit-biller-save');
      await page.waitForSelector('#biller-saved');
      const biller = page.locator('tr[data-biller="AA Pages Gas Company"]');
      await biller.waitFor();
      expect(await biller.textContent()).toContain('SUSPENDED');
      await ui.screenshot(page, 'operator-edit-tenants');
      expect(await ui.seriousViolations(page)).toEqual([]);

      const [row] = await db().execute(
        `select ci.name as city, cc.name as company, m.name as merchant, m.status as merchant_status, b.name as biller, b.status as biller_status
           from city ci join card_company cc on cc.city_id = ci.id join merchant m on m.city_id = ci.id join biller b on b.city_id = ci.id where ci.code = 'NB'`,
      );
      expect(row).toEqual({ city: 'Ningbo City', company: 'Ningbo Tong', merchant: 'AA Pages Noodle House', merchant_status: 'ACTIVE', biller: 'AA Pages Gas Company', biller_status: 'SUSPENDED' });
      expect(page.problems).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

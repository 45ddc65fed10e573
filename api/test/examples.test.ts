/**
 * The examples (utility-biller, settlement-report, reader-simulator and its QR ride, gate-simulator), run as a person runs them:
 * the whole platform started in-process as `npm start` does (temp data folder, demo seed, sandbox
 * gateway), each example a child Node process with ONECARD_DATA_DIR pointing at that folder, and the
 * assertions on what it prints and writes, checked against the API.
 *
 * The examples import `@onecard/sdk` from sdk-js/dist: `npm run build` (or `npm install`) first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneCardClient } from '../../sdk-js/src/index.js';
import { loadConfig } from '../src/config/config.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { freePort } from '../src/db/embedded-postgres.js';
import { type RunningPlatform, startPlatform } from '../src/platform.js';
import { launchBrowser } from './support/browser.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { bearerClient, cardholderAccessToken } from './support/oauth.js';

const repo = path.resolve(import.meta.dirname, '../..');
const BILLER = path.join(repo, 'examples/utility-biller/biller.mjs');
const PAY = path.join(repo, 'examples/utility-biller/pay-bill.mjs');
const REPORT = path.join(repo, 'examples/settlement-report/report.mjs');

let dataDir: string;
let db: TestDatabase;
let platform: RunningPlatform;
let demo: any;
let operator: OneCardClient;
let water: OneCardClient;
let holder: ReturnType<typeof bearerClient>;
const children = new Set<ChildProcess>();

/** Today in the demo cities' time zone: what the examples default to. */
const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date());
const period = today.slice(0, 7);

/** `3450` → `CNY 34.50`, as the examples print money (integer arithmetic). */
function cny(minor: number | bigint | string): string {
  const n = BigInt(minor);
  const digits = (n < 0n ? -n : n).toString().padStart(3, '0');
  return `CNY ${n < 0n ? '-' : ''}${digits.slice(0, -2).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${digits.slice(-2)}`;
}

beforeAll(async () => {
  await fs.access(path.join(repo, 'sdk-js/dist/esm/index.js')).catch(() => {
    throw new Error('the examples import @onecard/sdk from sdk-js/dist: run `npm run build` first');
  });
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-examples-'));
  db = await freshDatabase();
  const port = await freePort();
  platform = await startPlatform(
    loadConfig({ NODE_ENV: 'test', PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}`, ONECARD_DATA_DIR: dataDir, DATABASE_URL: db.url }),
    pino({ level: 'silent' }),
  );
  demo = platform.demo;
  const as = (name: string, scope: string) => new OneCardClient({ baseUrl: platform.url, clientId: demo.clients[name].client_id, clientSecret: demo.clients[name].client_secret, scope });
  operator = as('operator', 'settlements:read clients:manage bills:read');
  water = as('biller', 'bills:read');
  const lin = demo.cardholders.find((c: { username: string }) => c.username === 'lin');
  const app = demo.clients.cardholderApp;
  holder = bearerClient(platform.url, await cardholderAccessToken(platform.url, { clientId: app.client_id, redirectUri: app.redirect_uri, username: lin.username, password: lin.password, scope: 'card:topup card:read' }));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await platform?.stop();
  await db?.close();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

/** An example as a child process, its output collected as it comes. */
function start(script: string, args: string[]) {
  const env: NodeJS.ProcessEnv = { ...process.env, ONECARD_DATA_DIR: dataDir };
  for (const name of ['ONECARD_URL', 'ONECARD_CLIENT_ID', 'ONECARD_CLIENT_SECRET', 'INIT_CWD']) delete env[name];
  const child = spawn(process.execPath, [script, ...args], { cwd: path.dirname(script), env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    for (const w of [...waiters]) {
      const m = stdout.match(w.pattern);
      if (!m) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(m);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    /** Resolves when stdout matches (the whole output so far), or fails after `ms` showing what was printed. */
    waitFor(pattern: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
      const m = stdout.match(pattern);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${ms} ms; stdout:\n${stdout}\nstderr:\n${stderr}`)), ms);
        waiters.push({
          pattern,
          resolve: (found) => {
            clearTimeout(timer);
            resolve(found);
          },
        });
        void exited.then(() => setTimeout(() => reject(new Error(`exited before ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`)), 50));
      });
    },
  };
}

async function run(script: string, args: string[]) {
  const p = start(script, args);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** The holder pays a bill in full from a top-up of the demo card (paid at once with the sandbox's test card). */
async function payBill(billId: string, amount: number, key: string) {
  const made = await holder.request<any>('mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }', {
    input: { card: demo.registeredCards.gz.id, amount, idempotencyKey: `topup-${key}`, paymentMethod: 'pm_card_visa' },
  });
  expect(made.createTopUp.userErrors).toEqual([]);
  let status = made.createTopUp.topUp.status;
  for (let i = 0; status !== 'PAID' && i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await holder.request<any>('query($id: ID!) { topUp(id: $id) { status } }', { id: made.createTopUp.topUp.id })).topUp.status;
  }
  expect(status).toBe('PAID');
  const paid = await holder.request<any>(
    'mutation($input: PayBillInput!) { payBill(input: $input) { billPayment { status receiptNumber amount { amount } businessDay } userErrors { code message } } }',
    { input: { bill: billId, fromTopUp: made.createTopUp.topUp.id, idempotencyKey: `pay-${key}` } },
  );
  expect(paid.payBill.userErrors).toEqual([]);
  expect(paid.payBill.billPayment).toMatchObject({ status: 'SUCCEEDED', amount: { amount }, businessDay: today });
  return paid.payBill.billPayment.receiptNumber as string;
}

async function billsOfPeriod(client: OneCardClient): Promise<{ id: string; billerReference: string; remaining: { amount: number } }[]> {
  const all = [];
  let after: string | null = null;
  do {
    const { bills }: any = await client.request(
      'query($filter: BillFilterInput, $after: String) { bills(filter: $filter, first: 100, after: $after) { edges { node { id billerReference remaining { amount } } } pageInfo { hasNextPage endCursor } } }',
      { filter: { period }, after },
    );
    all.push(...bills.edges.map((e: any) => e.node));
    after = bills.pageInfo.hasNextPage ? bills.pageInfo.endCursor : null;
  } while (after);
  return all;
}

const waterPayments: { receipt: string; amount: number }[] = [];

describe('examples/utility-biller', () => {
  it('publishes a month of bills from CSV once; a second run adds none', async () => {
    const first = await run(BILLER, ['--wait', '0']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`bills: 300 accounts for ${period}`);
    expect(first.stdout).toMatch(/import \S+: IMPORTED, 300 of 300 rows/);
    expect(first.stdout).toContain('bills imported: 300 new, 0 already published');
    expect(first.stdout).toMatch(/listening for bill\.paid on http:\/\/127\.0\.0\.1:\d+\/onecard\/webhooks/);
    expect(first.stdout).toContain(`reconciliation Guangzhou Water ${today}:\n  0 payments, total CNY 0.00; ledger CNY 0.00 (matches)`);

    const again = await run(BILLER, ['--wait', '0']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('bills imported: 0 new, 300 already published');
    expect(again.stdout).not.toContain('IMPORTED');

    const ours = (await billsOfPeriod(water)).filter((b) => b.billerReference.startsWith(`WB-${period}-GZW-02`));
    expect(ours).toHaveLength(300);
    expect(new Set(ours.map((b) => b.billerReference)).size).toBe(300);
    // The file it imported is kept beside demo.json.
    const csv = await fs.readFile(path.join(dataDir, 'utility-biller', `bills-${period}.csv`), 'utf8');
    expect(csv.split('\r\n')[0]).toBe('account_number,period,amount_due,due_date,biller_reference,allow_partial,late_fee_kind,late_fee_amount,late_fee_basis_points,late_fee_cap');
    expect(csv.trim().split('\r\n')).toHaveLength(301);
  });

  it('--serve: prints each bill.paid advice it verified, and a reconciliation whose total is the payments', async () => {
    const biller = start(BILLER, ['--serve']);
    await biller.waitFor(/serving; Ctrl-C stops/);
    const bills = await billsOfPeriod(water);
    for (const account of ['GZW-0200001', 'GZW-0200002']) {
      const bill = bills.find((b) => b.billerReference === `WB-${period}-${account}`)!;
      let receipt: string;
      if (account === 'GZW-0200001') receipt = await payBill(bill.id, bill.remaining.amount, account);
      else {
        // The example's own payer: the demo holder's app pays the account's bill from a top-up.
        const paid = await run(PAY, [account]);
        expect(paid.stderr).toBe('');
        expect(paid.code).toBe(0);
        expect(paid.stdout).toContain(`lin pays Guangzhou Water ${account} ${period}: ${cny(bill.remaining.amount)}`);
        receipt = paid.stdout.match(/: SUCCEEDED, receipt (R\d{8}-[0-9A-F]{16}), day /)![1]!;
      }
      waterPayments.push({ receipt, amount: bill.remaining.amount });
      await biller.waitFor(new RegExp(`advice ${receipt}: ${account} ${period} paid ${cny(bill.remaining.amount)}, bill PAID, day ${today} \\(event \\S+, webhook, signature verified\\)`));
    }
    const total = waterPayments.reduce((a, p) => a + p.amount, 0);
    const summary = `2 payments, total ${cny(total)}; ledger ${cny(total)} (matches)`;
    await biller.waitFor(new RegExp(summary.replace(/[().]/g, '\\$&')));
    for (const p of waterPayments) expect(biller.stdout).toMatch(new RegExp(`${p.receipt}\\s+\\d\\d:\\d\\d:\\d\\d\\s+GZW-\\d{7}\\s+${period}\\s+${cny(p.amount)}`));
    expect(biller.stdout).not.toContain('refused a delivery');

    // Ctrl-C (here SIGTERM): the last reconciliation, then a clean exit.
    const before = biller.stdout.length;
    biller.child.kill('SIGTERM');
    expect(await biller.exited).toBe(0);
    expect(biller.stdout.slice(before)).toContain(summary);
    expect(biller.stderr).toBe('');
    const saved = await fs.readFile(path.join(dataDir, 'utility-biller', `reconciliation-${today}.csv`), 'utf8');
    for (const p of waterPayments) expect(saved).toContain(p.receipt);
  });
});

describe('examples/settlement-report', () => {
  it('closes and clears the day, writes the CSV reports and a self-contained report.html with charts and the API’s totals', async () => {
    expect(waterPayments).toHaveLength(2);
    // A Guangzhou card pays a Shenzhen bill: interchange between the two cities.
    const made = await operator.request<any>(
      'mutation($input: CreateOAuthClientInput!) { createOAuthClient(input: $input) { client { clientId } clientSecret userErrors { code message } } }',
      { input: { kind: 'BILLER', tenant: demo.tenants.billers.gas, name: 'Shenzhen Gas billing', scopes: ['bills:write'] } },
    );
    const gas = new OneCardClient({ baseUrl: platform.url, clientId: made.createOAuthClient.client.clientId, clientSecret: made.createOAuthClient.clientSecret, scope: 'bills:write' });
    const published = await gas.request<any>('mutation($input: BillInput!) { publishBill(input: $input) { bill { id } userErrors { code message } } }', {
      input: { accountNumber: 'SZG-0001', period, amountDue: 5_600, dueDate: '2099-12-31', billerReference: `SZG-${period}-0001` },
    });
    await payBill(published.publishBill.bill.id, 5_600, 'gas');

    const out = path.join(dataDir, 'report');
    const report = await run(REPORT, ['--date', today, '--close', '--out', out]);
    expect(report.stderr).toBe('');
    expect(report.code).toBe(0);
    expect(report.stdout).toContain(`settlement ${today}: GZ, SZ as operator`);
    expect(report.stdout).toContain(`report: ${path.join(out, 'report.html')}`);

    // What the API says the day was.
    const windows = await operator.request<any>(
      `query($day: String!) { settlementWindows(from: $day, to: $day, first: 5) { edges { node { cityCode status batch {
         gross { amount } fees { amount } net { amount } payoutTotal { amount } topUps { amount } refunds { amount } topUpRefunds { amount } itemCount
         volumeByHour { hour kind count amount { amount currency } }
         lines(first: 20) { edges { node { participantName gross { amount } net { amount } } } } } } } } }`,
      { day: today },
    );
    const batch = Object.fromEntries(windows.settlementWindows.edges.map((e: any) => [e.node.cityCode, e.node.batch]));
    const waterTotal = waterPayments.reduce((a, p) => a + p.amount, 0);
    expect(batch.GZ.gross.amount).toBe(waterTotal);
    expect(batch.GZ.topUps.amount).toBe(waterTotal + 5_600); // the holder's top-ups are Guangzhou cards'
    expect(batch.SZ.gross.amount).toBe(5_600);
    for (const city of ['GZ', 'SZ']) {
      const b = batch[city];
      expect(report.stdout).toMatch(new RegExp(`${city} ${today}: (CLEARED|SETTLED), \\d+ participants?, `));
      expect(report.stdout).toContain(`gross ${cny(b.gross.amount)}, fees ${cny(b.fees.amount)}, net ${cny(b.net.amount)}, payouts ${cny(b.payoutTotal.amount)}`);
    }

    // The CSV files: the platform's reports, and the report's own.
    const files = (await fs.readdir(out)).sort();
    expect(files).toEqual(
      [
        'report.html',
        `interchange-matrix-${today}.csv`,
        `settlement-interchange-GZ-${today}.csv`,
        `settlement-interchange-SZ-${today}.csv`,
        `settlement-lines-GZ-${today}.csv`,
        `settlement-lines-SZ-${today}.csv`,
        `volume-by-hour-${today}.csv`,
      ].sort(),
    );
    const rows = (text: string) => {
      const [header, ...lines] = text.trim().split('\r\n').map((l) => l.split(','));
      return lines.map((l) => Object.fromEntries(header!.map((h, i) => [h, l[i]!])));
    };
    for (const city of ['GZ', 'SZ']) {
      const lines = rows(await fs.readFile(path.join(out, `settlement-lines-${city}-${today}.csv`), 'utf8'));
      expect(lines.reduce((a, l) => a + BigInt(l.gross!), 0n)).toBe(BigInt(batch[city].gross.amount));
      expect(lines.reduce((a, l) => a + BigInt(l.net!), 0n)).toBe(BigInt(batch[city].net.amount));
    }
    const interchange = rows(await fs.readFile(path.join(out, `settlement-interchange-SZ-${today}.csv`), 'utf8'));
    expect(interchange).toEqual([expect.objectContaining({ city: 'SZ', issuer_name: '广州羊城通 Guangzhou Yangchengtong', acquirer_name: '深圳通 Shenzhen Tong', count: '1', net: '5600' })]);

    // volume-by-hour: every channel per hour as the batch's volumeByHour has it, adding up to the batch's totals.
    const KINDS = ['PAYMENT', 'PURCHASE', 'BILL_PAYMENT', 'TRANSIT', 'TOP_UP', 'TOP_UP_REFUND_FAILED', 'REFUND', 'TOP_UP_REFUND'];
    const hourly = rows(await fs.readFile(path.join(out, `volume-by-hour-${today}.csv`), 'utf8'));
    expect(hourly).toHaveLength(2 * 24 * KINDS.length);
    const hourKey = (hour: number, kind: string) => `${String(hour).padStart(2, '0')}:00 ${kind}`;
    for (const city of ['GZ', 'SZ']) {
      const b = batch[city];
      const api = new Map<string, any>(b.volumeByHour.map((v: any) => [hourKey(v.hour, v.kind), v]));
      expect(api.size).toBe(b.volumeByHour.length);
      const csv = hourly.filter((r) => r.city === city);
      expect(csv).toHaveLength(24 * KINDS.length);
      for (const r of csv) {
        const v = api.get(`${r.hour} ${r.kind}`);
        expect([r.business_day, r.direction, r.count, r.amount, r.currency], `${city} ${r.hour} ${r.kind}`).toEqual([
          today,
          ['REFUND', 'TOP_UP_REFUND'].includes(r.kind!) ? 'out' : 'in',
          String(v?.count ?? 0),
          String(v?.amount.amount ?? 0),
          'CNY',
        ]);
      }
      for (const key of api.keys()) expect(csv.some((r) => `${r.hour} ${r.kind}` === key), key).toBe(true);
      const total = (...kinds: string[]) => csv.filter((r) => kinds.includes(r.kind!)).reduce((a, r) => a + BigInt(r.amount!), 0n);
      expect(total('PAYMENT', 'PURCHASE', 'BILL_PAYMENT', 'TRANSIT')).toBe(BigInt(b.gross.amount));
      expect(total('REFUND')).toBe(BigInt(b.refunds.amount));
      expect(total('TOP_UP')).toBe(BigInt(b.topUps.amount));
      expect(total('TOP_UP_REFUND') - total('TOP_UP_REFUND_FAILED')).toBe(BigInt(b.topUpRefunds.amount));
      expect(csv.reduce((a, r) => a + Number(r.count), 0)).toBe(b.itemCount);
    }
    // The day's transactions by channel: the water and gas bills, each paid from a top-up of a Guangzhou card.
    const channel = (city: string, name: string) => {
      const of = hourly.filter((r) => r.city === city && r.channel === name);
      return { count: of.reduce((a, r) => a + Number(r.count), 0), amount: of.reduce((a, r) => a + BigInt(r.amount!), 0n) };
    };
    expect(channel('GZ', 'bills')).toEqual({ count: 2, amount: BigInt(waterTotal) });
    expect(channel('SZ', 'bills')).toEqual({ count: 1, amount: 5_600n });
    expect(channel('GZ', 'top_ups')).toEqual({ count: 3, amount: BigInt(waterTotal + 5_600) });
    expect(channel('SZ', 'top_ups')).toEqual({ count: 0, amount: 0n });

    // report.html: self-contained, with the charts and the API's figures.
    const html = await fs.readFile(path.join(out, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(|src=|https?:\/\/(?!127\.0\.0\.1)/i);
    expect(html).toMatch(/<style>[\s\S]*<\/style>/);
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(7); // per city: hourly, channels, nets; and the card companies' nets
    expect(html).toContain('aria-label="Volume by hour and channel, GZ"');
    expect(html).toContain('aria-label="Net position per participant, GZ"');
    expect(html).toContain('<table class="heat">');
    for (const city of ['GZ', 'SZ']) {
      const b = batch[city];
      for (const v of [b.gross, b.fees, b.net, b.payoutTotal]) expect(html).toContain(`data-minor="${v.amount}">${cny(v.amount)}<`);
      for (const { node } of b.lines.edges) expect(html).toContain(`${node.participantName}: ${cny(node.net.amount)}`);
    }
    // The hourly chart and the day totals by channel, per city, are the batch's volumeByHour.
    const volumeShown = (page: string, city: string) => {
      const section = page.split('<section>').find((s) => s.includes(`<h2>${city} ·`))!;
      const b = batch[city];
      expect(section).toContain(`aria-label="Volume by hour and channel, ${city}"`);
      expect(section.match(/<rect [^>]*data-kind="/g) ?? []).toHaveLength(b.volumeByHour.length);
      for (const v of b.volumeByHour) expect(section).toContain(`data-hour="${v.hour}" data-kind="${v.kind}" data-count="${v.count}" data-minor="${v.amount.amount}"><title>`);
      for (const kind of ['PAYMENT', 'PURCHASE', 'BILL_PAYMENT', 'TRANSIT', 'TOP_UP', 'REFUND', 'TOP_UP_REFUND']) {
        const of = b.volumeByHour.filter((v: any) => v.kind === kind);
        const count = of.reduce((a: number, v: any) => a + v.count, 0);
        const amount = of.reduce((a: bigint, v: any) => a + BigInt(v.amount.amount), 0n);
        expect(section).toContain(`<tr data-kind="${kind}" data-count="${count}" data-minor="${amount}">`);
      }
      for (const [key, v] of [['gross', b.gross], ['refunds', b.refunds], ['topUps', b.topUps], ['topUpRefunds', b.topUpRefunds]]) {
        expect(section).toContain(`<tr data-total="${key}" data-hours="${v.amount}" data-batch="${v.amount}">`);
      }
      expect(section.match(/✓ matches/g)).toHaveLength(4);
      expect(section).not.toContain('differs');
    };
    for (const city of ['GZ', 'SZ']) volumeShown(html, city);
    expect(html).not.toMatch(/no per-hour|Per-hour figures/i);
    const { interchangeMatrix } = await operator.request<any>('query($day: String!) { interchangeMatrix(businessDay: $day) { positions { net { amount } } multilateral { cardCompany { cityCode } net { amount } } } }', { day: today });
    expect(interchangeMatrix.positions).toEqual([{ net: { amount: 5_600 } }]);
    expect(html).toMatch(/<td style="background: rgba\(196, 92, 38, 0\.90\)"[^>]*><strong>CNY 56\.00<\/strong>/);
    for (const n of interchangeMatrix.multilateral) expect(html).toContain(`: ${cny(n.net.amount)}</title>`);

    // A card company sees its own city's day (no --close: it may not).
    const issuerOut = path.join(dataDir, 'report-issuer');
    const asIssuer = await run(REPORT, ['--client', 'issuer', '--date', today, '--out', issuerOut]);
    expect(asIssuer.stderr).toBe('');
    expect(asIssuer.code).toBe(0);
    expect(asIssuer.stdout).toContain(`settlement ${today}: GZ as issuer`);
    expect(asIssuer.stdout).toContain(`gross ${cny(batch.GZ.gross.amount)}`);
    const issuerLines = rows(await fs.readFile(path.join(issuerOut, `settlement-lines-GZ-${today}.csv`), 'utf8'));
    expect(issuerLines.map((l) => [l.participant_name, l.gross, l.net])).toEqual(
      rows(await fs.readFile(path.join(out, `settlement-lines-GZ-${today}.csv`), 'utf8')).map((l) => [l.participant_name, l.gross, l.net]),
    );
    // It gets the hourly figures of its city too.
    expect((await fs.readdir(issuerOut)).sort()).toEqual(
      ['report.html', `interchange-matrix-${today}.csv`, `settlement-interchange-GZ-${today}.csv`, `settlement-lines-GZ-${today}.csv`, `volume-by-hour-${today}.csv`].sort(),
    );
    expect(rows(await fs.readFile(path.join(issuerOut, `volume-by-hour-${today}.csv`), 'utf8'))).toEqual(hourly.filter((r) => r.city === 'GZ'));
    const issuerHtml = await fs.readFile(path.join(issuerOut, 'report.html'), 'utf8');
    volumeShown(issuerHtml, 'GZ');
    expect(issuerHtml).not.toContain('aria-label="Volume by hour and channel, SZ"');
    const refused = await run(REPORT, ['--client', 'issuer', '--close', '--date', today, '--out', issuerOut]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('--close needs the operator');
  });

  it('report.html: times in the city’s zone with the zone named, a CJK-capable font stack, and tables that fit 1280 to 390 px wide with no horizontal scrolling', async () => {
    const html = await fs.readFile(path.join(dataDir, 'report', 'report.html'), 'utf8');
    // Every time shown is local and labelled; the UTC instant stays machine-readable in datetime="…".
    const shown = [...html.matchAll(/<time datetime="([^"]+)">([^<]+)<\/time>/g)];
    expect(shown.length).toBeGreaterThanOrEqual(5); // made, and each city's closed and cleared
    for (const [, utc, text] of shown) {
      expect(text).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} Asia\/Shanghai \(UTC\+08:00\)$/);
      expect(text.slice(0, 16)).toBe(new Date(new Date(utc!).getTime() + 8 * 3_600_000).toISOString().slice(0, 16).replace('T', ' '));
    }
    expect(html).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z(?!")/); // no bare UTC timestamp as text
    expect(html).toMatch(/font: [^;]*"Noto Sans CJK SC"[^;]*"WenQuanYi Micro Hei"[^;]*sans-serif;/);

    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.setContent(html);
      for (const width of [1280, 1024, 768, 390]) {
        await page.setViewportSize({ width, height: 900 });
        // In the page (api/ is type-checked without the DOM library).
        const overflow = await page.evaluate(() => {
          const doc = (globalThis as any).document;
          const all = (selector: string): any[] => [...doc.querySelectorAll(selector)];
          return {
            page: doc.documentElement.scrollWidth - doc.documentElement.clientWidth,
            tables: all('.fit').map((t) => t.scrollWidth - t.clientWidth).filter((d) => d > 0),
            lines: all('table.lines tbody tr').length,
            // What sticks out, to name it when this fails.
            wide: all('body *').filter((e) => e.getBoundingClientRect().right > doc.documentElement.clientWidth + 1).slice(0, 3).map((e) => e.outerHTML.slice(0, 120)),
          };
        });
        expect(overflow, `at ${width} px`).toEqual({ page: 0, tables: [], lines: expect.any(Number), wide: [] });
        expect(overflow.lines).toBeGreaterThan(0);
      }
    } finally {
      await browser.close();
    }
  });
});

describe('examples/reader-simulator', () => {
  const SIMULATE = path.join(repo, 'examples/reader-simulator/simulate.mjs');
  /** Runs the simulator once; its last line is `<operation>: <the session's result as JSON>`. */
  async function simulate(...args: string[]): Promise<{ balance: number; stdout: string }> {
    const run = start(SIMULATE, args);
    const code = await run.exited;
    expect(code, `simulate ${args.join(' ')}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);
    const result = run.stdout.match(new RegExp(`^${args[0]}: (\\{.*\\})$`, 'm'));
    expect(result, run.stdout).not.toBeNull();
    // A balance read answers `balance`; a load `oldBalance`/`newBalance` (with the TAC).
    const answer = JSON.parse(result![1]!) as { balance?: number; newBalance?: number };
    return { balance: (answer.balance ?? answer.newBalance)!, stdout: run.stdout };
  }

  it('reads the demo card at the counter reader, loads cash onto it, and writes a top-up paid at the sandbox gateway onto it (补登)', async () => {
    const before = await simulate('balance');
    // Every APDU exchanged with the card is shown.
    expect(before.stdout).toMatch(/^ {2}> 00a4/m);
    expect((await simulate('load', '500')).balance).toBe(before.balance + 500);
    const topUp = await simulate('topup', '300');
    expect(topUp.stdout).toMatch(/top-up \S+: PAID/);
    expect(topUp.balance).toBe(before.balance + 800);
    // The card's state is kept between runs, as a card keeps its own.
    expect((await simulate('balance')).balance).toBe(before.balance + 800);
  });

  it('qr-ride: lin’s app draws a QR code, the demo reader as a gate verifies it offline and uploads it; the ride is booked once and a screenshot is refused (docs/qr-rides.md)', async () => {
    const ride = await run(path.join(repo, 'examples/reader-simulator/qr-ride.mjs'), ['200']);
    expect(ride.code, `stdout:\n${ride.stdout}\nstderr:\n${ride.stderr}`).toBe(0);
    // The wallet was empty: topped up at the sandbox gateway first.
    expect(ride.stdout).toMatch(/^app {6}top-up \S+ of 20\.00 CNY at the sandbox gateway: PAID$/m);
    expect(ride.stdout).toMatch(/^scanner {2}OPEN: credential [0-9a-f-]{36}, counter 1$/m);
    const result = JSON.parse(ride.stdout.match(/^qr: (\{.*\})$/m)![1]!);
    expect(result).toEqual({ outcome: 'ACCEPTED', replay: 'DUPLICATE', screenshot: 'EXPIRED', balance: 1800, debt: 0 });
    // The API agrees: lin's wallet holds 18.00, after one top-up and one ride.
    const wallet = await holder.request<any>('query($c: ID!) { transitWallet(cardCompany: $c) { balance { amount } history { edges { node { kind balanceChange { amount } } } } } }', { c: demo.tenants.cardCompanies.GZ });
    expect(wallet.transitWallet.balance.amount).toBe(1800);
    expect(wallet.transitWallet.history.edges.map((e: any) => [e.node.kind, e.node.balanceChange.amount])).toEqual([
      ['QR_RIDE', -200],
      ['TOP_UP_PAID', 2000],
    ]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('m1 topup 1500: the seed’s worked example pays at the sandbox and writes the value onto the virtual M1 card, printing each signed step (issue 21)', async () => {
    const before = await simulate('m1', 'balance');
    const topUp = await simulate('m1', 'topup', '1500');
    expect(topUp.stdout).toMatch(/top-up \S+: PAID/);
    // Each signed message, each way: the reader's hello with its certificates, the card's answers, the host's signed answers.
    expect(topUp.stdout).toMatch(/^reader → host {2}message 0, signed by reader .+: hello: the challenge, with its national, city and encryption certificates$/m);
    expect(topUp.stdout).toMatch(/^host → reader {2}answer to 1, signed by host .+: AWAITING_PURSE, run a sealed M1 script/m);
    expect(topUp.stdout).toMatch(/^host → reader {2}answer to 2, signed by host .+: AWAITING_WRITE, run a sealed M1 script/m);
    expect(topUp.stdout).toMatch(/^reader → host {2}message 3, signed by reader .+: script results \[ok, ok, ok, ok, ok, ok, ok \S+, ok \S+\]$/m);
    expect(topUp.stdout).toMatch(/^host → reader {2}answer to 3, signed by host .+: COMPLETED, nothing more$/m);
    // The card ran the write: the increment, the transfer, the backup.
    expect(topUp.stdout).toMatch(/^ {4}card: INCREMENT C1 block 4 by 1500$/m);
    expect(topUp.stdout).toMatch(/^ {4}card: WRITE A0 block 5 ← /m);
    expect(topUp.balance).toBe(before.balance + 1500);
    // The card keeps its value between runs, and the ledger's shadow of its purse agrees with it.
    expect((await simulate('m1', 'balance')).balance).toBe(before.balance + 1500);
    const card = await holder.request<any>('query($id: ID!) { node(id: $id) { ... on Card { cardType purseBalance { amount } pendingLoad { amount } } } }', { id: demo.m1Cards.gz.id });
    expect(card.node).toEqual({ cardType: 'M1', purseBalance: { amount: before.balance + 1500 }, pendingLoad: { amount: 0 } });
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('the quickstart’s refund reaches the card at the next load session: `pending` lists it, `pickup` writes it once (docs/quickstart.md steps 6 to 8)', async () => {
    const merchant = new OneCardClient({ baseUrl: platform.url, clientId: demo.clients.merchant.client_id, clientSecret: demo.clients.merchant.client_secret, scope: 'payments:read payments:write refunds:write' });
    // Step 6: ¥50.00 at the counter, then lin pays ¥12.80 with the card on her home reader (the demo shop's simulated holder).
    const loaded = await simulate('load', '5000');
    const order = `order-quickstart-${Date.now()}`;
    const made = await merchant.request<any>('mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }', {
      input: { amount: 1280, currency: 'CNY', orderReference: order, description: 'two teas', idempotencyKey: `${order}-create` },
    });
    expect(made.createPayment.userErrors).toEqual([]);
    const { simulatedHolder } = await import(path.join(repo, 'examples/merchant-checkout/holder.mjs'));
    const lin = await simulatedHolder({ demo, dataDir, baseUrl: platform.url });
    const paid = await lin.tap(made.createPayment.payment.id);
    expect(paid).toMatchObject({ state: 'COMPLETED', result: { newBalance: loaded.balance - 1280 } });
    // Step 8: refund ¥3.00; it waits as a pending load.
    const refunded = await merchant.request<any>('mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { refund { pendingLoad } userErrors { code message } } }', {
      input: { payment: made.createPayment.payment.id, amount: 300, reason: 'one tea returned', idempotencyKey: `${order}-refund-1` },
    });
    expect(refunded.refundPayment.userErrors).toEqual([]);
    const pendingLoad = refunded.refundPayment.refund.pendingLoad as string;

    const pending = await run(path.join(repo, 'examples/reader-simulator/simulate.mjs'), ['pending']);
    expect(pending.code, pending.stderr).toBe(0);
    expect(pending.stdout).toMatch(new RegExp(`^ {2}REFUND +3\\.00 CNY {2}${pendingLoad} {2}to write$`, 'm'));
    expect(pending.stdout).toMatch(/^pending: \{"count":1,"writable":1,"total":300\}$/m);

    const pickup = await simulate('pickup');
    expect(pickup.balance).toBe(loaded.balance - 1280 + 300);
    expect(pickup.stdout).toMatch(/the holder confirms 1 pending load\(s\), 3\.00 in all/);
    expect((await holder.request<any>('query($id: ID!) { topUp(id: $id) { status } }', { id: pendingLoad })).topUp.status).toBe('LOADED');
    // Nothing is left to pick up, and a second pickup writes nothing.
    const again = await run(path.join(repo, 'examples/reader-simulator/simulate.mjs'), ['pickup']);
    expect(again.stdout).toMatch(/^no pending loads on the card$/m);
    expect((await simulate('balance')).balance).toBe(pickup.balance);
    // The chip and the ledger's shadow of its purse agree, and the ledger holds.
    const card = await holder.request<any>('query($id: ID!) { node(id: $id) { ... on Card { purseBalance { amount } pendingLoad { amount } } } }', { id: demo.registeredCards.gz.id });
    expect(card.node).toEqual({ purseBalance: { amount: pickup.balance }, pendingLoad: { amount: 0 } });
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });
});

describe('examples/gate-simulator', () => {
  const GATE = path.join(repo, 'examples/gate-simulator/gate.mjs');
  const SIMULATE = path.join(repo, 'examples/reader-simulator/simulate.mjs');
  const cardBalance = async () => (await holder.request<any>('query($id: ID!) { node(id: $id) { ... on Card { purseBalance { amount } } } }', { id: demo.registeredCards.gz.id })).node.purseBalance.amount as number;

  it('demo: registers the gate with its terminal number, installs the provisioned PSAM, takes three fares offline and uploads them: booked once', async () => {
    // Value on the demo card first, as the README says (a load at the counter reader).
    expect((await run(SIMULATE, ['load', '1000'])).code).toBe(0);
    const before = await cardBalance();
    const gate = await run(GATE, ['demo']);
    expect(gate.code, `stdout:\n${gate.stdout}\nstderr:\n${gate.stderr}`).toBe(0);
    expect(JSON.parse(gate.stdout.match(/^register: (\{.*\})$/m)![1]!)).toMatchObject({ serial: 'GZ-METRO-GATE-0001', terminalNumber: '440100009001', status: 'ACTIVE' });
    // The installed PSAM shows its number and key versions, nothing else.
    expect(JSON.parse(gate.stdout.match(/^provision: (\{.*\})$/m)![1]!)).toEqual({ terminalNumber: '440100009001', keyVersions: [1], lastSerial: 0 });
    // Three taps, each the five APDUs of an offline purchase, with the PSAM's serials 1, 2, 3.
    const rides = [...gate.stdout.matchAll(/^ride: (\{.*\}) {2}gate opens/gm)].map((m) => JSON.parse(m[1]!));
    expect(rides.map((r) => [r.fare, r.terminalSerial])).toEqual([
      [200, 1],
      [200, 2],
      [200, 3],
    ]);
    expect(gate.stdout).toMatch(/^ {2}> 805401000f00000001/m); // DEBIT FOR PURCHASE with terminal serial 1
    expect(JSON.parse(gate.stdout.match(/^upload: (\{.*\})$/m)![1]!)).toMatchObject({ replayed: false, outcomes: ['ACCEPTED', 'ACCEPTED', 'ACCEPTED'], booked: 600 });
    expect(await cardBalance()).toBe(before - 600);
    // Nothing is left to upload; the card on the chip and the ledger's shadow agree.
    expect((await run(GATE, ['upload'])).stdout).toMatch(/^no rides to upload$/m);
    expect((JSON.parse((await run(SIMULATE, ['balance'])).stdout.match(/^balance: (\{.*\})$/m)![1]!) as { balance: number }).balance).toBe(before - 600);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
    // The gate's file holds its PSAM package sealed, as it was sent; the stored record serials carry on.
    const stored = JSON.parse(await fs.readFile(path.join(dataDir, 'gate.json'), 'utf8'));
    expect(stored).toMatchObject({ terminalNumber: '440100009001', lastSerial: 3, rides: [], batch: null });
    expect(JSON.parse(stored.psamPackage.payload).sealed).toEqual({ wrappedKey: expect.any(String), iv: expect.any(String), ciphertext: expect.any(String), tag: expect.any(String) });
  });

  it('a second gate claiming the first one’s terminal number is refused (DUPLICATE_TERMINAL_NUMBER) and keeps no registration', async () => {
    // The same example in another data folder: another gate, another serial, the number of the first.
    const other = path.join(dataDir, 'second-gate');
    await fs.mkdir(other, { recursive: true });
    await fs.copyFile(path.join(dataDir, 'demo.json'), path.join(other, 'demo.json'));
    const child = spawn(process.execPath, [GATE, 'register', '440100009001', 'GZ-METRO-GATE-0002'], { cwd: path.dirname(GATE), env: { ...process.env, ONECARD_DATA_DIR: other }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/^register: DUPLICATE_TERMINAL_NUMBER: terminal number 440100009001 is registered to another reader of GZ$/m);
    await expect(fs.access(path.join(other, 'gate.json'))).rejects.toThrow();
  });
});

/**
 * clearing_item partitioned by month of business day (issue 23, item 3): the migration moves the
 * items recorded before it; items land in their month's partition, or in the default one when their
 * month has none (a booking never fails on it) until the job moves them; the job keeps three months
 * ahead; `onecard partitions archive` exports a settled month to a file, drops it only once the
 * file matches, leaves the ledger check green, and refuses a month with a window not settled.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { onecard } from './support/cli.js';
import { migrate, openOrm } from '../src/db/orm.js';
import { payableAccount } from '../src/ledger/accounts.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { recordClearingItem } from '../src/settlement/clearing-items.js';
import { createPartitionsAhead, partitionedMonths } from '../src/settlement/clearing-partitions.js';
import { clearWindow } from '../src/settlement/clearing.js';
import { applyPayout } from '../src/settlement/payouts.js';
import { closeWindow } from '../src/settlement/windows.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK } from './support/server.js';

let db: TestDatabase;
let em: EntityManager;
let dataDir: string;
const saved = { url: process.env.DATABASE_URL, kek: process.env.ONECARD_KEY_ENCRYPTION_KEY };

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-partitions-'));
  process.env.ONECARD_DATA_DIR = dataDir;
  process.env.DATABASE_URL = db.url;
  process.env.ONECARD_KEY_ENCRYPTION_KEY = TEST_KEK;
});
afterAll(async () => {
  for (const [name, value] of [['DATABASE_URL', saved.url], ['ONECARD_KEY_ENCRYPTION_KEY', saved.kek]] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  delete process.env.ONECARD_DATA_DIR;
  await fs.rm(dataDir, { recursive: true, force: true });
  await db.close();
});
afterEach(() => {
  process.exitCode = undefined;
  vi.restoreAllMocks();
});

/** Runs `onecard <args>` in-process: what it printed (stdout, stderr) and its exit code. */
/** Which table holds each item: its partition. */
const partitionsOf = async (e: EntityManager, keys: string[]) =>
  Object.fromEntries((await e.execute<{ entry_key: string; part: string }[]>(`select entry_key, tableoid::regclass::text as part from clearing_item where entry_key in (?)`, [keys])).map((r) => [r.entry_key, r.part]));

const at = (local: string) => new Date(`${local}+08:00`);
let n = 0;

async function city(code: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  return { cityId: city.id, cardCompanyId: cardCompany.id };
}

/** A sale as the flows book it: into the merchant's payable, with its clearing item, at 10:00 local on `day`. */
async function sale(merchantId: string, cardCompanyId: string, amount: bigint, day: string): Promise<string> {
  const key = `partition-test:${++n}`;
  const funding = await openAccount(em, { code: 'test.partitions.purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', merchantId, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: 'a sale', lines: [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(`${day}T10:00:00`) });
  });
  return key;
}

/** Closes and clears the day's window, and the gateway pays its payouts: the window is SETTLED. */
async function settle(cityId: string, day: string) {
  const window = await closeWindow(em, { cityId, businessDay: day, closedBy: 'test', cutoff: '02:00', now: at('2026-12-01T09:00:00') });
  const batch = await clearWindow(em, window.id);
  const payouts = await em.execute<{ id: string; amount: string; currency: string }[]>(`select p.id, p.amount::text, btrim(p.currency) as currency from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
  for (const p of payouts) {
    expect(await applyPayout(em, { id: `po_${p.id.slice(0, 8)}`, object: 'payout', amount: Number(p.amount), currency: p.currency.toLowerCase(), status: 'paid', metadata: { settlementPayout: p.id }, created: 0, arrival_date: 0 })).toBe('applied');
  }
  const [row] = await em.execute<{ status: string }[]>(`select status from settlement_window where id = ?`, [window.id]);
  expect(row!.status).toBe('SETTLED');
}

describe('the migration', () => {
  it('moves the items recorded before it into monthly partitions, with their ids; new items number on from them and one entry still records one item', async () => {
    const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await admin.connect();
    const name = `${inject('testDatabasePrefix')}${randomBytes(6).toString('hex')}`;
    await admin.query(`create database ${name}`);
    const url = new URL(inject('pgAdminUrl'));
    url.pathname = `/${name}`;
    const orm = await openOrm(url.toString());
    try {
      await orm.migrator.up({ to: 'Migration20261207001700_party_user_admins' });
      const old = orm.em.fork();
      const { city: c, cardCompany } = await createCity(old, { code: 'OLD', name: 'Old City', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Old Card Co' });
      // Items as the unpartitioned table held them: two in October, one in November.
      for (const [day, amount, key] of [['2026-10-30', 100, 'old:1'], ['2026-10-31', 250, 'old:2'], ['2026-11-02', 400, 'old:3']] as const) {
        await old.execute(
          `insert into clearing_item (city_id, business_day, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference)
           values (?, ?::date, 'TRANSIT', 'CARD_COMPANY', ?, ?, ?, 'CNY', ?::date, ?, ?)`,
          [c.id, day, cardCompany.id, cardCompany.id, amount, day, key, key],
        );
      }
      const before = await old.execute<{ id: string; entry_key: string; amount: string }[]>(`select id::text, entry_key, amount::text from clearing_item order by id`);

      expect(await migrate(orm)).toContain('Migration20261207002300_clearing_item_partitions');
      const now = orm.em.fork();
      const [kind] = await now.execute<{ relkind: string }[]>(`select relkind from pg_class where relname = 'clearing_item'`);
      expect(kind!.relkind).toBe('p');
      expect(await now.execute(`select id::text, entry_key, amount::text from clearing_item order by id`)).toEqual(before);
      expect(await partitionsOf(now, ['old:1', 'old:2', 'old:3'])).toEqual({ 'old:1': 'clearing_item_y2026m10', 'old:2': 'clearing_item_y2026m10', 'old:3': 'clearing_item_y2026m11' });

      // A new item numbers on from the moved ones; the same entry again records nothing.
      const item = { kind: 'TRANSIT' as const, participant: { kind: 'CARD_COMPANY' as const, id: cardCompany.id }, cardCompanyId: cardCompany.id, amount: 300n, currency: 'CNY', entryKey: 'new:1', reference: 'new:1' };
      await recordClearingItem(now, item);
      await recordClearingItem(now, item);
      const fresh = await now.execute<{ id: string }[]>(`select id::text from clearing_item where entry_key = 'new:1'`);
      expect(fresh).toHaveLength(1);
      expect(BigInt(fresh[0]!.id)).toBeGreaterThan(BigInt(before.at(-1)!.id));
      // An entry already in one month's partition is not recorded again under another business day.
      await recordClearingItem(now, { ...item, entryKey: 'old:1', reference: 'old:1' });
      expect(await now.execute(`select business_day::text from clearing_item where entry_key = 'old:1'`)).toEqual([{ business_day: '2026-10-30' }]);
    } finally {
      await orm.close(true);
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});

describe('partitions', () => {
  it('an item lands in its month’s partition; one whose month has none lands in the default partition, and the job moves it into a partition made for it', async () => {
    const c = await city('PRT');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Partition Shop' });
    await recordClearingItem(em, { kind: 'PAYMENT', participant: { kind: 'MERCHANT', id: shop.id }, cardCompanyId: c.cardCompanyId, amount: 500n, currency: 'CNY', entryKey: 'route:now', reference: 'route:now' });
    const [{ month }] = (await em.execute<{ month: string }[]>(`select to_char(business_day, '"y"YYYY"m"MM') as month from clearing_item where entry_key = 'route:now'`)) as [{ month: string }];
    // A terminal whose clock is years ahead: no partition for its month, the booking still goes in.
    await em.execute(
      `insert into clearing_item (city_id, business_day, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference)
       values (?, '2035-02-10', 'PAYMENT', 'MERCHANT', ?, ?, 700, 'CNY', '2035-02-10T02:00:00Z', 'route:far', 'route:far')`,
      [c.cityId, shop.id, c.cardCompanyId],
    );
    const [far] = await em.execute<{ id: string }[]>(`select id::text from clearing_item where entry_key = 'route:far'`);
    expect(await partitionsOf(em, ['route:now', 'route:far'])).toEqual({ 'route:now': `clearing_item_${month}`, 'route:far': 'clearing_item_default' });

    expect(await createPartitionsAhead(em)).toEqual(['2035-02']);
    expect(await partitionsOf(em, ['route:far'])).toEqual({ 'route:far': 'clearing_item_y2035m02' });
    expect(await em.execute(`select id::text, amount::text from clearing_item where entry_key = 'route:far'`)).toEqual([{ id: far!.id, amount: '700' }]);
    expect(await em.execute(`select count(*)::int as n from clearing_item_default`)).toEqual([{ n: 0 }]);
  });

  it('the job keeps this month and the next three: run in June 2031 it makes June to September, and a second run makes nothing', async () => {
    const june = new Date('2031-06-15T12:00:00Z');
    expect(await createPartitionsAhead(em, june)).toEqual(['2031-06', '2031-07', '2031-08', '2031-09']);
    expect(await createPartitionsAhead(em, june)).toEqual([]);
    expect(await partitionedMonths(em)).toEqual(expect.arrayContaining(['2031-06', '2031-07', '2031-08', '2031-09']));
    expect(await partitionedMonths(em)).not.toContain('2031-10');
  });
});

describe('onecard partitions archive', () => {
  it('refuses a month with an open window; archives a settled month into a file whose rows and sums match, drops it, and the ledger check stays green', async () => {
    const c = await city('ARC');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Archive Shop' });
    const october = [await sale(shop.id, c.cardCompanyId, 1_000n, '2026-10-05'), await sale(shop.id, c.cardCompanyId, 2_500n, '2026-10-06')];
    const november = await sale(shop.id, c.cardCompanyId, 700n, '2026-11-03');
    // The October and November items went to the default partition (the test database has no partition for them): the job's round moves them.
    expect((await onecard('partitions', 'ahead')).out).toMatch(/^created: .*2026-10, 2026-11/);
    expect(await partitionsOf(em, [...october, november])).toEqual({ [october[0]!]: 'clearing_item_y2026m10', [october[1]!]: 'clearing_item_y2026m10', [november]: 'clearing_item_y2026m11' });
    const dir = path.join(dataDir, 'archive');

    // October's windows are still open.
    const open = await onecard('partitions', 'archive', '--month', '2026-10', '--dir', dir);
    expect(open.exitCode).toBe(2);
    expect(open.err).toMatch(/MONTH_NOT_SETTLED: 2 item\(s\) of 2026-10 are in windows not settled yet/);
    expect(await partitionedMonths(em)).toContain('2026-10');

    // One settled, one not: still refused, nothing detached.
    await settle(c.cityId, '2026-10-05');
    const half = await onecard('partitions', 'archive', '--month', '2026-10', '--dir', dir);
    expect(half.exitCode).toBe(2);
    expect(half.err).toMatch(/MONTH_NOT_SETTLED: 1 item\(s\)/);
    expect(await em.execute(`select count(*)::int as n from clearing_item where business_day between '2026-10-01' and '2026-10-31'`)).toEqual([{ n: 2 }]);

    await settle(c.cityId, '2026-10-06');
    const done = await onecard('partitions', 'archive', '--month', '2026-10', '--dir', dir);
    expect(done.err).toBe('');
    expect(done.exitCode).toBe(0);
    expect(done.out).toBe(`archived 2026-10: 2 item(s), 3500 CNY (minor units) into ${path.join(dir, 'clearing_item-2026-10.tsv')}; clearing_item_y2026m10 dropped\nledger OK`);

    // The file holds the two items, one a line; the manifest their count and sum.
    const lines = (await fs.readFile(path.join(dir, 'clearing_item-2026-10.tsv'), 'utf8')).trimEnd().split('\n');
    expect(lines.map((l) => l.split('\t')[12])).toEqual(october);
    expect(lines.map((l) => l.split('\t')[8])).toEqual(['1000', '2500']);
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'clearing_item-2026-10.manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({ table: 'clearing_item', month: '2026-10', rows: 2, amounts: { CNY: '3500' }, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });

    // The partition is gone, November is untouched, and the ledger still proves every balance.
    expect(await partitionedMonths(em)).not.toContain('2026-10');
    expect(await em.execute(`select to_regclass('clearing_item_y2026m10') as t`)).toEqual([{ t: null }]);
    expect(await em.execute(`select entry_key, amount::text from clearing_item where business_day < '2026-12-01' and city_id = ?`, [c.cityId])).toEqual([{ entry_key: november, amount: '700' }]);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);

    // November's window is open; October is archived already.
    const nov = await onecard('partitions', 'archive', '--month', '2026-11', '--dir', dir);
    expect([nov.exitCode, nov.err]).toEqual([2, expect.stringContaining('MONTH_NOT_SETTLED')]);
    const again = await onecard('partitions', 'archive', '--month', '2026-10', '--dir', dir);
    expect([again.exitCode, again.err]).toEqual([2, expect.stringContaining('NO_PARTITION')]);
    const bad = await onecard('partitions', 'archive', '--month', '2026-13', '--dir', dir);
    expect([bad.exitCode, bad.err]).toEqual([2, expect.stringContaining('INVALID_MONTH')]);
  });
});

import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { feeFor } from '../tenancy/fee.js';
import { createCity, createFeePlan, createMerchant } from '../tenancy/tenancy.service.js';
import { type ClearingKind, recordClearingItem } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { applyPayout } from './payouts.js';
import { runSettlementJobs } from './settlement.jobs.js';
import { closeDueWindows, closeWindow, windowOf } from './windows.js';
import { feeRevenueAccount, payableAccount, settlementInTransitAccount } from '../ledger/accounts.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
const CUTOFF = '02:00';

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

async function city(code: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  return { cityId: city.id, cardCompanyId: cardCompany.id };
}

/** A sale (or refund) as the payment flows book it: money into (out of) the merchant's payable, and its clearing item. */
async function book(kind: ClearingKind, merchantId: string, amount: bigint, p: { cardCompanyId: string; occurredAt: Date }) {
  const key = `test-sale:${++n}`;
  const funding = await openAccount(em, { code: 'test.card-purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', merchantId, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(funding.id, amount)] : [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant: { kind: 'MERCHANT', id: merchantId }, cardCompanyId: p.cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: p.occurredAt });
  });
}

const at = (local: string) => new Date(`${local}+08:00`);

describe('clearing a window', () => {
  it('makes a line per merchant with fees by plan (the SQL fee equals feeFor), interchange for visiting cards, one balanced entry, and changes nothing when run again', async () => {
    const home = await city('CLA');
    const away = await city('CLB');
    const plan = await createFeePlan(em, { name: 'clearing test 0.6%', basisPoints: 60, fixedFee: 3n, minimumFee: 10n, currency: 'CNY' });
    const shop = await createMerchant(em, { cityId: home.cityId, name: 'Shop', feePlanId: plan.id });
    const free = await createMerchant(em, { cityId: home.cityId, name: 'No plan' });
    const amounts = [1n, 83n, 1250n, 99_999n, 250n];
    for (const a of amounts) await book('PAYMENT', shop.id, a, { cardCompanyId: home.cardCompanyId, occurredAt: at('2026-03-02T10:00:00') });
    await book('PAYMENT', shop.id, 4_000n, { cardCompanyId: away.cardCompanyId, occurredAt: at('2026-03-02T11:00:00') });
    await book('REFUND', shop.id, 500n, { cardCompanyId: away.cardCompanyId, occurredAt: at('2026-03-02T12:00:00') });
    await book('PAYMENT', free.id, 700n, { cardCompanyId: home.cardCompanyId, occurredAt: at('2026-03-02T23:59:59') });
    // The next day's sale stays out of this window.
    await book('PAYMENT', free.id, 9n, { cardCompanyId: home.cardCompanyId, occurredAt: at('2026-03-03T00:00:01') });

    const window = await closeWindow(em, { cityId: home.cityId, businessDay: '2026-03-02', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-03T09:00:00') });
    expect(window.status).toBe('CLOSED');
    const batch = await clearWindow(em, window.id);
    const lines = await em.execute<Record<string, string>[]>(`select participant_id, sales_count, refund_count, gross, refunds, fees, net, due, payout_amount, status from settlement_line where batch_id = ?`, [batch.id]);
    const shopFees = [...amounts, 4_000n].reduce((sum, a) => sum + feeFor({ basisPoints: 60, fixedFee: 3n, minimumFee: 10n }, a), 0n);
    const shopLine = lines.find((l) => l.participant_id === shop.id)!;
    expect(shopLine).toMatchObject({ sales_count: '6', refund_count: '1', gross: '105583', refunds: '500', fees: String(shopFees), status: 'PAYING' });
    expect(BigInt(shopLine.net!)).toBe(BigInt(shopLine.gross!) - 500n - shopFees);
    expect(lines.find((l) => l.participant_id === free.id)).toMatchObject({ gross: '700', fees: '0', net: '700', payout_amount: '700' });
    expect(batch).toMatchObject({ item_count: '8', gross: String(105_583n + 700n), refunds: '500', fees: String(shopFees) });

    const [position] = await em.execute<Record<string, string>[]>(`select issuer_id, acquirer_id, count, gross, refunds, net from interchange_position where batch_id = ?`, [batch.id]);
    expect(position).toMatchObject({ issuer_id: away.cardCompanyId, acquirer_id: home.cardCompanyId, count: '2', gross: '4000', refunds: '500', net: '3500' });

    // The payables keep only the next day's sale; the fees and payouts moved.
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id)).toBe(0n);
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', free.id, 'CNY')).id)).toBe(9n);
    expect(await balance(em, (await feeRevenueAccount(em, 'CNY')).id)).toBe(shopFees);
    expect(await balance(em, (await settlementInTransitAccount(em, 'CNY')).id)).toBe(BigInt(batch.payout_total));
    const payouts = await em.execute<{ amount: string }[]>(`select p.amount::text as amount from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ? order by p.amount`, [batch.id]);
    expect(payouts.map((p) => p.amount)).toEqual(['700', shopLine.payout_amount]);

    const counts = async () => (await em.execute<Record<string, string>[]>(`select (select count(*) from settlement_line) l, (select count(*) from journal_entry) e, (select count(*) from settlement_payout) p, (select count(*) from interchange_position) i`))[0];
    const before = await counts();
    expect(await clearWindow(em, window.id)).toEqual(batch);
    expect(await counts()).toEqual(before);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('puts a transaction that arrives after its window closed into the next window, and carries a negative due forward', async () => {
    const c = await city('CLC');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Shop' });
    await book('PAYMENT', shop.id, 1_000n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-02T10:00:00') });
    // The cut-off job closes 2 March at 02:00 on 3 March.
    const closedIn = async (now: Date) => (await closeDueWindows(em, { cutoff: CUTOFF, now })).filter((w) => w.city_id === c.cityId);
    expect(await closedIn(at('2026-03-03T01:59:00'))).toEqual([]);
    const [first] = await closedIn(at('2026-03-03T02:00:00'));
    expect(first).toMatchObject({ business_day: '2026-03-02', status: 'CLOSED', closed_by: 'cut-off' });
    await clearWindow(em, first!.id);

    // A refund of 2 March's business booked late, and its own day's 3 March: both in 3 March's window.
    await book('REFUND', shop.id, 1_000n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-02T22:00:00') });
    await book('REFUND', shop.id, 300n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-03T08:00:00') });
    const [second] = await closedIn(at('2026-03-04T03:00:00'));
    expect(second).toMatchObject({ business_day: '2026-03-03' });
    const assigned = await em.execute<{ business_day: string; window_id: string }[]>(`select business_day::text, window_id from clearing_item where participant_id = ? order by id`, [shop.id]);
    expect(assigned.map((i) => i.window_id)).toEqual([first!.id, second!.id, second!.id]);

    const owed = await clearWindow(em, second!.id);
    const [line] = await em.execute<Record<string, string>[]>(`select id, net, due, payout_amount, status from settlement_line where batch_id = ?`, [owed.id]);
    expect(line).toMatchObject({ net: '-1300', due: '-1300', payout_amount: '0', status: 'CARRIED_FORWARD' });
    expect(owed.status).toBe('SETTLED');

    // The next day's sales pay the debt first.
    await book('PAYMENT', shop.id, 2_000n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-04T09:00:00') });
    const [third] = await closedIn(at('2026-03-05T03:00:00'));
    const paid = await clearWindow(em, third!.id);
    const [next] = await em.execute<Record<string, string>[]>(`select id, net, carried_in, due, payout_amount, status from settlement_line where batch_id = ?`, [paid.id]);
    expect(next).toMatchObject({ net: '2000', carried_in: '-1300', due: '700', payout_amount: '700', status: 'PAYING' });
    const [carried] = await em.execute<{ carried_into: string }[]>(`select carried_into from settlement_line where id = ?`, [line!.id]);
    expect(carried!.carried_into).toBe(next!.id);
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id)).toBe(0n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('refuses to clear an open window or an unknown one, and to close a day that has not begun', async () => {
    const c = await city('CLD');
    await expect(closeWindow(em, { cityId: c.cityId, businessDay: '2026-03-09', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-08T23:00:00') })).rejects.toMatchObject({ code: 'WINDOW_NOT_STARTED' });
    await book('PAYMENT', (await createMerchant(em, { cityId: c.cityId, name: 'Shop' })).id, 5n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-08T10:00:00') });
    // The sale opened its day's window, which stays open until it is closed.
    const open = await windowOf(em, c.cityId, '2026-03-08');
    expect(open).toMatchObject({ status: 'OPEN' });
    await expect(clearWindow(em, open!.id)).rejects.toMatchObject({ code: 'WINDOW_OPEN', message: 'the window is open: close it first', field: 'window' });
    const unknown = '00000000-0000-4000-8000-000000000000';
    await expect(clearWindow(em, unknown)).rejects.toMatchObject({ code: 'NOT_FOUND', message: `no settlement window ${unknown}`, field: 'window' });
  });

  it('a payout the bank returns after it was paid goes back to the payable and into the next statement; another payout or amount is not booked as ours', async () => {
    const c = await city('CLE');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Shop' });
    await book('PAYMENT', shop.id, 2_500n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-02T10:00:00') });
    const window = await closeWindow(em, { cityId: c.cityId, businessDay: '2026-03-02', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-03T09:00:00') });
    const batch = await clearWindow(em, window.id);
    const [payout] = await em.execute<{ id: string; line_id: string }[]>(`select p.id, p.line_id from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
    const gateway = (status: 'paid' | 'failed', over: Partial<{ id: string; amount: number }> = {}) =>
      ({ id: 'po_returned', object: 'payout', amount: 2_500, currency: 'cny', status, metadata: { settlementPayout: payout!.id }, created: 0, arrival_date: 0, failure_code: status === 'failed' ? 'account_closed' : null, ...over }) as const;

    expect(await applyPayout(em, gateway('paid', { amount: 2_499 }))).toBe('mismatch');
    expect(await applyPayout(em, gateway('paid'))).toBe('applied');
    expect(await applyPayout(em, gateway('paid', { id: 'po_someone_else' }))).toBe('mismatch');
    const lineStatus = async () => (await em.execute<{ status: string }[]>(`select status from settlement_line where id = ?`, [payout!.line_id]))[0]!.status;
    expect(await lineStatus()).toBe('PAID');
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id)).toBe(0n);

    // Days later the bank sends it back.
    expect(await applyPayout(em, gateway('failed'))).toBe('applied');
    expect(await applyPayout(em, gateway('failed'))).toBe('stale');
    expect(await lineStatus()).toBe('PAYOUT_FAILED');
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id)).toBe(2_500n);
    const next = await closeWindow(em, { cityId: c.cityId, businessDay: '2026-03-03', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-04T09:00:00') });
    const again = await clearWindow(em, next.id);
    const [line] = await em.execute<Record<string, string>[]>(`select carried_in, payout_amount, status from settlement_line where batch_id = ?`, [again.id]);
    expect(line).toMatchObject({ carried_in: '2500', payout_amount: '2500', status: 'PAYING' });
    expect(await checkLedger(em)).toEqual([]);
  });

  it('the gateway’s answer about a payout delivered twice at once is booked once: paid once, returned once, carried once', async () => {
    const c = await city('CLG');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Shop' });
    await book('PAYMENT', shop.id, 1_800n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-03-02T10:00:00') });
    const window = await closeWindow(em, { cityId: c.cityId, businessDay: '2026-03-02', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-03T09:00:00') });
    const batch = await clearWindow(em, window.id);
    const [payout] = await em.execute<{ id: string; line_id: string }[]>(`select p.id, p.line_id from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
    const answer = (status: 'paid' | 'failed') =>
      ({ id: 'po_twice', object: 'payout', amount: 1_800, currency: 'cny', status, metadata: { settlementPayout: payout!.id }, created: 0, arrival_date: 0, failure_code: status === 'failed' ? 'account_closed' : null }) as const;
    // Each delivery on its own connection, as two webhook requests would be.
    const twice = (status: 'paid' | 'failed') => Promise.all([applyPayout(db.orm.em.fork(), answer(status)), applyPayout(db.orm.em.fork(), answer(status))]);
    const entries = async (suffix: string) => (await em.execute<{ n: number }[]>(`select count(*)::int as n from journal_entry where entry_key = ?`, [`settlement-payout:${payout!.id}:${suffix}`]))[0]!.n;
    const payable = async () => balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id);

    expect((await twice('paid')).sort()).toEqual(['applied', 'stale']);
    expect(await entries('paid')).toBe(1);
    expect(await payable()).toBe(0n);

    expect((await twice('failed')).sort()).toEqual(['applied', 'stale']);
    expect(await entries('returned')).toBe(1);
    expect(await entries('failed')).toBe(1);
    expect(await payable()).toBe(1_800n);
    const moves = await em.execute<{ from_status: string; to_status: string }[]>(`select from_status, to_status from status_history where machine = 'settlement_payout' and row_id = ? order by id`, [payout!.id]);
    expect(moves.map((m) => `${m.from_status}→${m.to_status}`)).toEqual(['PENDING→PAID', 'PAID→FAILED']);
    const events = await em.execute<{ type: string }[]>(`select type from event_outbox where owner_id = ? and type <> 'settlement.ready' order by id`, [shop.id]);
    expect(events.map((e) => e.type)).toEqual(['settlement.paid', 'settlement.payout_failed']);
    // The next statement carries it once.
    const next = await closeWindow(em, { cityId: c.cityId, businessDay: '2026-03-03', closedBy: 'test', cutoff: CUTOFF, now: at('2026-03-04T09:00:00') });
    const again = await clearWindow(em, next.id);
    const [line] = await em.execute<Record<string, string>[]>(`select carried_in, payout_amount from settlement_line where batch_id = ?`, [again.id]);
    expect(line).toMatchObject({ carried_in: '1800', payout_amount: '1800' });
    expect(await checkLedger(em)).toEqual([]);
  });

  it('the settlement job opens today’s and tomorrow’s windows ahead of their first transaction, and closes and clears a day after its cut-off', async () => {
    const c = await city('CLF');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Shop' });
    await runSettlementJobs(em, null, { cutoff: CUTOFF, now: at('2026-04-01T12:00:00') });
    expect(await windowOf(em, c.cityId, '2026-04-01')).toMatchObject({ status: 'OPEN' });
    expect(await windowOf(em, c.cityId, '2026-04-02')).toMatchObject({ status: 'OPEN' });
    await book('PAYMENT', shop.id, 700n, { cardCompanyId: c.cardCompanyId, occurredAt: at('2026-04-01T13:00:00') });
    const errors: string[] = [];
    await runSettlementJobs(em, null, { cutoff: CUTOFF, now: at('2026-04-02T02:00:00'), onError: (_, step) => errors.push(step) });
    expect(errors).toEqual([]);
    expect(await windowOf(em, c.cityId, '2026-04-01')).toMatchObject({ status: 'CLEARED', closed_by: 'cut-off' });
    expect(await windowOf(em, c.cityId, '2026-04-03')).toMatchObject({ status: 'OPEN' });
  });
});

describe('clearing items and the cut-off job at once', () => {
  it('a transaction recording items for two days does not hold up the job that re-stamps open windows’ cut-offs, and both finish', async () => {
    const c = await city('CLK');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Two-day uploader' });
    const item = (key: string, occurredAt: Date) => ({ kind: 'PAYMENT' as const, participant: { kind: 'MERCHANT' as const, id: shop.id }, cardCompanyId: c.cardCompanyId, amount: 100n, currency: 'CNY', entryKey: `lock-test:${key}`, reference: key, occurredAt });
    // Both days' windows open, with the default cut-off (as a transaction opens them).
    await recordClearingItem(em, item('06', at('2026-01-06T10:00:00')));
    await recordClearingItem(em, item('07', at('2026-01-07T10:00:00')));
    const before = at('2026-01-06T12:00:00');

    await db.orm.em.fork().transactional(async (upload) => {
      // An offline upload: a ride of the 7th, then one of the 6th, in one transaction.
      await recordClearingItem(upload, item('07b', at('2026-01-07T11:00:00')));
      // Meanwhile the job re-stamps every open window's cut-off (another configuration). It must not
      // wait for the upload: had it to, it would hold the 6th's window the upload needs next (a deadlock).
      await db.orm.em.fork().transactional(async (job) => {
        await job.execute(`set local lock_timeout = '10s'`);
        expect(await closeDueWindows(job, { cutoff: '03:00', now: before })).toEqual([]);
      });
      await recordClearingItem(upload, item('06b', at('2026-01-06T11:00:00')));
    });

    const items = await em.execute<{ entry_key: string; business_day: string }[]>(`select entry_key, business_day::text as business_day from clearing_item where entry_key like 'lock-test:%' order by entry_key`);
    expect(items).toEqual([
      { entry_key: 'lock-test:06', business_day: '2026-01-06' },
      { entry_key: 'lock-test:06b', business_day: '2026-01-06' },
      { entry_key: 'lock-test:07', business_day: '2026-01-07' },
      { entry_key: 'lock-test:07b', business_day: '2026-01-07' },
    ]);
    // The job's cut-off (03:00 local the next day), not the default 02:00 the windows were opened with.
    const cutoffs = await em.execute<{ local: string }[]>(`select (cutoff_at at time zone 'Asia/Shanghai')::text as local from settlement_window where city_id = ? order by business_day`, [c.cityId]);
    expect(cutoffs.map((w) => w.local)).toEqual(['2026-01-07 03:00:00', '2026-01-08 03:00:00']);
    await closeDueWindows(em, { cutoff: CUTOFF, now: before });
  });
});

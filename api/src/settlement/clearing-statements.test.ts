/**
 * What clearing tells each participant and writes in the books, beyond the amounts
 * clearing.test.ts holds: every participant kind (merchant, biller, card company) hears a
 * settlement.ready event on its own endpoints with its whole statement (city, business day,
 * currency, net, due, payout, status, the line's id); the clearing entry says what it is and where
 * it comes from; a window with nothing due settles at once, with no entry and no payout; a
 * participant whose payable was never opened is still cleared. (Found by mutation testing,
 * docs/testing.md.)
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { toGlobalId } from '../graphql/global-id.js';
import { payableAccount } from '../ledger/accounts.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { BillerKind } from '../tenancy/biller.entity.js';
import { createBiller, createCity, createFeePlan, createMerchant } from '../tenancy/tenancy.service.js';
import { type ClearingKind, type ParticipantKind, recordClearingItem } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
const DAY = '2026-04-07';
const at = (local: string) => new Date(`${local}+08:00`);

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db?.close());

async function city(code: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  return { cityId: city.id, cardCompanyId: cardCompany.id };
}

/** A sale or refund as the flows book it: into (out of) the participant's payable, with its clearing item. */
async function book(kind: ClearingKind, participant: { kind: ParticipantKind; id: string }, amount: bigint, cardCompanyId: string, day = DAY) {
  const key = `statement-test:${++n}`;
  const funding = await openAccount(em, { code: 'test.statements.purses.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, participant.kind, participant.id, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(funding.id, amount)] : [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant, cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(`${day}T10:00:00`) });
  });
}

const close = (cityId: string) => closeWindow(em, { cityId, businessDay: DAY, closedBy: 'test', cutoff: '02:00', now: at('2026-04-08T09:00:00') });

describe('each participant hears its statement', () => {
  it('a merchant, a biller and a card company each get settlement.ready on their own endpoints, with the whole statement', async () => {
    const home = await city('STA');
    const plan = await createFeePlan(em, { name: 'statements 1%', basisPoints: 100, fixedFee: 0n, minimumFee: 0n, currency: 'CNY' });
    const shop = await createMerchant(em, { cityId: home.cityId, name: 'Statement Shop', feePlanId: plan.id });
    const water = await createBiller(em, { cityId: home.cityId, name: 'Statement Water', kind: BillerKind.WATER });
    const refunder = await createMerchant(em, { cityId: home.cityId, name: 'Refund Only' });
    await book('PAYMENT', { kind: 'MERCHANT', id: shop.id }, 10_000n, home.cardCompanyId);
    await book('BILL_PAYMENT', { kind: 'BILLER', id: water.id }, 3_000n, home.cardCompanyId);
    await book('TRANSIT', { kind: 'CARD_COMPANY', id: home.cardCompanyId }, 200n, home.cardCompanyId);
    // A refund of an earlier day's sale, with no sale today: a negative due, carried forward.
    await book('PAYMENT', { kind: 'MERCHANT', id: refunder.id }, 500n, home.cardCompanyId, '2026-04-06');
    await book('REFUND', { kind: 'MERCHANT', id: refunder.id }, 500n, home.cardCompanyId);

    const window = await close(home.cityId);
    const batch = await clearWindow(em, window.id);
    const lines = await em.execute<{ id: string; participant_id: string }[]>(`select id, participant_id from settlement_line where batch_id = ?`, [batch.id]);
    const lineOf = (id: string) => toGlobalId('SettlementLine', lines.find((l) => l.participant_id === id)!.id);
    const events = await em.execute<{ owner_kind: string; owner_id: string; subject_id: string; payload: Record<string, unknown> }[]>(
      `select owner_kind, owner_id, subject_id, payload from event_outbox where type = 'settlement.ready' and owner_id in (?) order by owner_kind, owner_id`,
      [[shop.id, water.id, home.cardCompanyId, refunder.id]],
    );
    const statement = (id: string, amounts: { net: number; due: number; payout: number; status: string }) => ({
      subject_id: lineOf(id),
      payload: { statement: lineOf(id), city: 'STA', businessDay: DAY, currency: 'CNY', ...amounts },
    });
    expect(events).toEqual(
      expect.arrayContaining([
        { owner_kind: 'MERCHANT', owner_id: shop.id, ...statement(shop.id, { net: 9_900, due: 9_900, payout: 9_900, status: 'PAYING' }) },
        { owner_kind: 'BILLER', owner_id: water.id, ...statement(water.id, { net: 3_000, due: 3_000, payout: 3_000, status: 'PAYING' }) },
        { owner_kind: 'ISSUER', owner_id: home.cardCompanyId, ...statement(home.cardCompanyId, { net: 200, due: 200, payout: 200, status: 'PAYING' }) },
        { owner_kind: 'MERCHANT', owner_id: refunder.id, ...statement(refunder.id, { net: -500, due: -500, payout: 0, status: 'CARRIED_FORWARD' }) },
      ]),
    );
    expect(events).toHaveLength(4);
  });
});

describe('the clearing entry', () => {
  it('is keyed by the window, says which city and day it clears, and names the window and the batch', async () => {
    const home = await city('STB');
    const shop = await createMerchant(em, { cityId: home.cityId, name: 'Entry Shop' });
    await book('PAYMENT', { kind: 'MERCHANT', id: shop.id }, 1_234n, home.cardCompanyId);
    const window = await close(home.cityId);
    const batch = await clearWindow(em, window.id);
    const [entry] = await em.execute<{ id: string; entry_key: string; description: string; metadata: Record<string, unknown> }[]>(`select id, entry_key, description, metadata from journal_entry where id = ?`, [batch.journal_entry_id]);
    expect(entry).toEqual({
      id: batch.journal_entry_id,
      entry_key: `settlement:${window.id}:clearing`,
      description: `clearing of STB ${DAY}: payables to fees and settlement in transit`,
      metadata: { kind: 'CLEARING', window: window.id, batch: batch.id },
    });
  });
});

/** A row's status moves as lifecycle/machine.ts records them (status_history). */
const trail = (machine: string, id: string) =>
  em.execute(`select from_status, to_status, cause from status_history where machine = ? and row_id = ? order by id`, [machine, id]);

describe('nothing due', () => {
  it('a window without items settles at once: a batch of zeros, no entry, no payout', async () => {
    const quiet = await city('STC');
    const window = await close(quiet.cityId);
    const batch = await clearWindow(em, window.id);
    expect(batch).toMatchObject({ status: 'SETTLED', item_count: '0', gross: '0', fees: '0', net: '0', payout_total: '0', journal_entry_id: null, settled_at: expect.anything() });
    const [row] = await em.execute<{ status: string; cleared: boolean; settled: boolean }[]>(`select status, cleared_at is not null as cleared, settled_at is not null as settled from settlement_window where id = ?`, [window.id]);
    expect(row).toEqual({ status: 'SETTLED', cleared: true, settled: true });
    // The status trail an operator reads says why each moved.
    expect(await trail('settlement_batch', batch.id)).toEqual([{ from_status: 'PAYING', to_status: 'SETTLED', cause: 'cleared with nothing to pay' }]);
    expect(await trail('settlement_window', window.id)).toContainEqual({ from_status: 'CLOSED', to_status: 'SETTLED', cause: 'cleared' });
  });

  it('a window whose only line is a negative due settles at once too; the due waits in the payable, unposted', async () => {
    const c = await city('STD');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Only Refunds' });
    await book('PAYMENT', { kind: 'MERCHANT', id: shop.id }, 800n, c.cardCompanyId, '2026-04-06');
    await book('REFUND', { kind: 'MERCHANT', id: shop.id }, 300n, c.cardCompanyId);
    const window = await close(c.cityId);
    const batch = await clearWindow(em, window.id);
    expect(batch).toMatchObject({ status: 'SETTLED', payout_total: '0', journal_entry_id: null });
    const payouts = await em.execute(`select p.id from settlement_payout p join settlement_line l on l.id = p.line_id where l.batch_id = ?`, [batch.id]);
    expect(payouts).toEqual([]);
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', shop.id, 'CNY')).id)).toBe(500n);
  });

  it('a window with a payout is CLEARED, not settled, until the payout is paid', async () => {
    const c = await city('STE');
    const shop = await createMerchant(em, { cityId: c.cityId, name: 'Paying Shop' });
    await book('PAYMENT', { kind: 'MERCHANT', id: shop.id }, 100n, c.cardCompanyId);
    const window = await close(c.cityId);
    const batch = await clearWindow(em, window.id);
    expect(batch).toMatchObject({ status: 'PAYING', settled_at: null });
    const [row] = await em.execute<{ status: string; settled: boolean }[]>(`select status, settled_at is not null as settled from settlement_window where id = ?`, [window.id]);
    expect(row).toEqual({ status: 'CLEARED', settled: false });
    expect(await trail('settlement_window', window.id)).toContainEqual({ from_status: 'CLOSED', to_status: 'CLEARED', cause: 'cleared' });
    expect(await trail('settlement_batch', batch.id)).toEqual([]);
  });
});

describe('a participant whose payable was never opened', () => {
  it('is cleared all the same: clearing opens its payable and pays the due out of it', async () => {
    const c = await city('STF');
    const water = await createBiller(em, { cityId: c.cityId, name: 'No Payable Yet', kind: BillerKind.WATER });
    // An item recorded without the payable ever being opened (as an import of old data would).
    await recordClearingItem(em, { kind: 'BILL_PAYMENT', participant: { kind: 'BILLER', id: water.id }, cardCompanyId: c.cardCompanyId, amount: 1n, currency: 'CNY', entryKey: `statement-test:${++n}`, reference: 'x', occurredAt: at(`${DAY}T10:00:00`) });
    const [before] = await em.execute(`select id from ledger_account where code = ?`, [`biller.${water.id}.payable.CNY`]);
    expect(before).toBeUndefined();
    const window = await close(c.cityId);
    const batch = await clearWindow(em, window.id);
    expect(batch).toMatchObject({ payout_total: '1', status: 'PAYING' });
    const [opened] = await em.execute<{ balance: string }[]>(`select balance::text as balance from ledger_account where code = ?`, [`biller.${water.id}.payable.CNY`]);
    expect(opened).toEqual({ balance: '-1' });
  });
});


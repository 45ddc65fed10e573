/**
 * What a participant is left owing (a negative due) or owed (a payout the bank failed) is carried
 * into its next line, whole: a due that was itself carried goes on carrying all of it, and a failed
 * payout and a negative due carried at once add up. Each carried line names the line that took it.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { recordClearingItem } from './clearing-items.js';
import { payableAccount } from '../ledger/accounts.js';
import { clearWindow } from './clearing.js';
import { applyPayout } from './payouts.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const at = (local: string) => new Date(`${local}+08:00`);

async function shopIn(code: string) {
  const { city, cardCompany } = await createCity(em, { code, name: `City ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} Card Co` });
  const shop = await createMerchant(em, { cityId: city.id, name: 'Shop' });
  return { cityId: city.id, cardCompanyId: cardCompany.id, shopId: shop.id };
}

/** A sale or refund as the payment flows book it: the merchant's payable and its clearing item. */
async function book(c: { cardCompanyId: string; shopId: string }, kind: 'PAYMENT' | 'REFUND', amount: bigint, day: string) {
  const key = `carried-test:${++n}`;
  const cards = await openAccount(em, { code: 'test.carried.cards.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, 'MERCHANT', c.shopId, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: kind === 'REFUND' ? [debit(payable.id, amount), credit(cards.id, amount)] : [debit(cards.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant: { kind: 'MERCHANT', id: c.shopId }, cardCompanyId: c.cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at(`${day}T10:00:00`) });
  });
}

async function clearDay(c: { cityId: string }, day: string) {
  const next = new Date(at(`${day}T00:00:00`).getTime() + 33 * 3600_000);
  const window = await closeWindow(em, { cityId: c.cityId, businessDay: day, closedBy: 'test', cutoff: '02:00', now: next });
  const batch = await clearWindow(em, window.id);
  const [line] = await em.execute<{ id: string; net: string; carried_in: string; due: string; payout_amount: string; status: string; carried_into: string | null }[]>(
    `select id, net::text, carried_in::text, due::text, payout_amount::text, status, carried_into from settlement_line where batch_id = ?`,
    [batch.id],
  );
  return line!;
}

const carriedInto = async (lineId: string) => (await em.execute<{ carried_into: string | null }[]>(`select carried_into from settlement_line where id = ?`, [lineId]))[0]!.carried_into;

describe('carried dues', () => {
  it('a negative due carried twice is carried whole each time (its due, not its own day’s net), until sales pay it off', async () => {
    const c = await shopIn('CDA');
    await book(c, 'PAYMENT', 1_000n, '2026-05-01');
    await book(c, 'REFUND', 2_300n, '2026-05-01');
    const first = await clearDay(c, '2026-05-01');
    expect(first).toMatchObject({ net: '-1300', carried_in: '0', due: '-1300', payout_amount: '0', status: 'CARRIED_FORWARD' });

    await book(c, 'PAYMENT', 500n, '2026-05-02');
    await book(c, 'REFUND', 700n, '2026-05-02');
    const second = await clearDay(c, '2026-05-02');
    expect(second).toMatchObject({ net: '-200', carried_in: '-1300', due: '-1500', payout_amount: '0', status: 'CARRIED_FORWARD' });
    expect(await carriedInto(first.id)).toBe(second.id);

    await book(c, 'PAYMENT', 1_000n, '2026-05-03');
    const third = await clearDay(c, '2026-05-03');
    expect(third).toMatchObject({ net: '1000', carried_in: '-1500', due: '-500', payout_amount: '0', status: 'CARRIED_FORWARD' });
    expect(await carriedInto(second.id)).toBe(third.id);

    await book(c, 'PAYMENT', 2_000n, '2026-05-04');
    const fourth = await clearDay(c, '2026-05-04');
    expect(fourth).toMatchObject({ net: '2000', carried_in: '-500', due: '1500', payout_amount: '1500', status: 'PAYING' });
    expect(await carriedInto(third.id)).toBe(fourth.id);
    // What the shop was paid is what it earned over the four days: 4,500 − 3,000.
    expect(await balance(em, (await payableAccount(em, 'MERCHANT', c.shopId, 'CNY')).id)).toBe(0n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a failed payout and a negative due of the same shop are carried together into one line', async () => {
    const c = await shopIn('CDB');
    await book(c, 'PAYMENT', 2_500n, '2026-05-01');
    const paying = await clearDay(c, '2026-05-01');
    expect(paying).toMatchObject({ due: '2500', payout_amount: '2500', status: 'PAYING' });

    await book(c, 'REFUND', 400n, '2026-05-02');
    const owing = await clearDay(c, '2026-05-02');
    // The first line is still being paid out: only the new negative due is carried.
    expect(owing).toMatchObject({ net: '-400', carried_in: '0', due: '-400', status: 'CARRIED_FORWARD' });

    // Then the bank refuses the first payout: 2,500 is owed to the shop again.
    const [payout] = await em.execute<{ id: string }[]>(`select id from settlement_payout where line_id = ?`, [paying.id]);
    expect(await applyPayout(em, { id: 'po_carried', object: 'payout', amount: 2_500, currency: 'cny', status: 'failed', metadata: { settlementPayout: payout!.id }, created: 0, arrival_date: 0, failure_code: 'account_closed' } as Parameters<typeof applyPayout>[1])).toBe('applied');

    await book(c, 'PAYMENT', 100n, '2026-05-03');
    const third = await clearDay(c, '2026-05-03');
    expect(third).toMatchObject({ net: '100', carried_in: '2100', due: '2200', payout_amount: '2200', status: 'PAYING' });
    expect(await carriedInto(paying.id)).toBe(third.id);
    expect(await carriedInto(owing.id)).toBe(third.id);
    expect(await checkLedger(em)).toEqual([]);
  });
});

/**
 * Clearing computes the operator's fee in SQL; it must equal `feeFor()` to the fen for every shape
 * of fee plan, on exactly the amounts where rounding rules part: a percentage that ends in .5.
 * feeFor() rounds half up; floating point (PostgreSQL's float8 `round`) rounds half to even, so
 * 1,750 fen at 60 bp is 11 fen, never 10.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from '../ledger/ledger-check.js';
import { balance, credit, debit, openAccount, post } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { BillerKind } from '../tenancy/biller.entity.js';
import { type FeeTerms, feeFor } from '../tenancy/fee.js';
import { createBiller, createCity, createFeePlan, createMerchant } from '../tenancy/tenancy.service.js';
import { type ClearingKind, type ParticipantKind, recordClearingItem } from './clearing-items.js';
import { feeRevenueAccount, payableAccount } from '../ledger/accounts.js';
import { clearWindow } from './clearing.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

/** Every shape a fee plan has (tenancy/fee.ts): a percentage, a fixed part, a minimum, and their mixes. */
const PLANS: { name: string; terms: FeeTerms }[] = [
  { name: '60 bp', terms: { basisPoints: 60, fixedFee: 0n, minimumFee: 0n } },
  { name: '1 bp', terms: { basisPoints: 1, fixedFee: 0n, minimumFee: 0n } },
  { name: '25 bp', terms: { basisPoints: 25, fixedFee: 0n, minimumFee: 0n } },
  { name: '50 bp + 3 fixed', terms: { basisPoints: 50, fixedFee: 3n, minimumFee: 0n } },
  { name: '60 bp + 3 fixed, minimum 10', terms: { basisPoints: 60, fixedFee: 3n, minimumFee: 10n } },
  { name: '60 bp, minimum 11', terms: { basisPoints: 60, fixedFee: 0n, minimumFee: 11n } },
  { name: '30 bp, minimum 2', terms: { basisPoints: 30, fixedFee: 0n, minimumFee: 2n } },
  { name: '9,999 bp + 1 fixed', terms: { basisPoints: 9_999, fixedFee: 1n, minimumFee: 0n } },
  { name: '10,000 bp (all of it)', terms: { basisPoints: 10_000, fixedFee: 0n, minimumFee: 0n } },
  { name: 'fixed 5 only', terms: { basisPoints: 0, fixedFee: 5n, minimumFee: 0n } },
  { name: 'minimum 7 only', terms: { basisPoints: 0, fixedFee: 0n, minimumFee: 7n } },
  { name: 'free (all zero)', terms: { basisPoints: 0, fixedFee: 0n, minimumFee: 0n } },
];

const UNIT = 10_000n;
const halfWay = (bp: number, amount: bigint) => (amount * BigInt(bp)) % UNIT === UNIT / 2n;
/** The whole part of amount × bp / 10 000: even means half-up and half-to-even disagree. */
const wholePart = (bp: number, amount: bigint) => (amount * BigInt(bp)) / UNIT;

/**
 * The amounts to clear under a plan: its first half-way amounts with an even whole part (where the
 * two rounding rules differ) and with an odd one, each with its neighbours, a large half-way amount,
 * 1 fen, and for a plan without a percentage a few plain amounts.
 */
function amountsFor(bp: number): bigint[] {
  const found = new Set<bigint>([1n]);
  if (bp > 0) {
    let even = 0;
    let odd = 0;
    for (let a = 1n; a <= 1_000_000n && (even < 3 || odd < 1); a++) {
      if (!halfWay(bp, a)) continue;
      if (wholePart(bp, a) % 2n === 0n ? even++ < 3 : odd++ < 1) for (const n of [a - 1n, a, a + 1n]) if (n > 0n) found.add(n);
    }
    // A large one: the same residue, a billion fen further on, still with an even whole part.
    const first = [...found].find((a) => halfWay(bp, a) && wholePart(bp, a) % 2n === 0n);
    if (first !== undefined) {
      for (let a = first + 1_000_000_000n; a < first + 1_000_100_000n; a++) {
        if (halfWay(bp, a) && wholePart(bp, a) % 2n === 0n) {
          found.add(a);
          break;
        }
      }
    }
  } else {
    for (const a of [1_750n, 99n, 12_345_678n]) found.add(a);
  }
  return [...found].sort((x, y) => (x < y ? -1 : 1));
}

describe('the table itself', () => {
  it('holds, for every plan with a percentage that can end in .5, amounts where half-up and half-to-even differ, 1,750 @ 60 bp among them', () => {
    expect(amountsFor(60)).toContain(1_750n);
    expect(feeFor(PLANS[0]!.terms, 1_750n)).toBe(11n);
    for (const { name, terms } of PLANS) {
      if (terms.basisPoints === 0 || terms.basisPoints === 10_000) continue;
      const differing = amountsFor(terms.basisPoints).filter((a) => halfWay(terms.basisPoints, a) && wholePart(terms.basisPoints, a) % 2n === 0n);
      expect(differing.length, name).toBeGreaterThanOrEqual(3);
    }
  });
});

let day = 0;
let keys = 0;

/** A sale booked as the flows book it: money into the participant's payable, and its clearing item. */
async function sale(kind: ClearingKind, participant: { kind: ParticipantKind; id: string }, cardCompanyId: string, amount: bigint, occurredAt: Date) {
  const key = `fee-test-sale:${++keys}`;
  const funding = await openAccount(em, { code: 'test.fee-sales.CNY', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const payable = await payableAccount(em, participant.kind, participant.id, 'CNY');
  await em.transactional(async (tx) => {
    await post(tx, { key, description: kind, lines: [debit(funding.id, amount), credit(payable.id, amount)] });
    await recordClearingItem(tx, { kind, participant, cardCompanyId, amount, currency: 'CNY', entryKey: key, reference: key, occurredAt });
  });
}

describe('clearing fees equal feeFor() on half-way amounts', () => {
  it.each(PLANS)('$name: each merchant’s, biller’s and card company’s line carries exactly feeFor() of its sale', async ({ name, terms }) => {
    const code = `FEE${String.fromCharCode(64 + ++day)}`;
    const businessDay = `2026-04-${String(day).padStart(2, '0')}`;
    const occurredAt = new Date(`${businessDay}T12:00:00+08:00`);
    const { city, cardCompany } = await createCity(em, { code, name: `Fee city ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} cards` });
    const plan = await createFeePlan(em, { name: `clearing fees: ${name}`, ...terms, currency: 'CNY' });
    // No API gives a card company a plan yet; the operator sets it in the table (as settlement.test.ts does).
    await em.execute(`update card_company set fee_plan_id = ? where id = ?`, [plan.id, cardCompany.id]);

    // One participant per sale, so each line's fee is one item's fee: no sum can hide an error.
    const expected = new Map<string, { amount: bigint; fee: bigint; who: string }>();
    const amounts = amountsFor(terms.basisPoints);
    for (const [i, amount] of amounts.entries()) {
      const merchant = await createMerchant(em, { cityId: city.id, name: `${code} shop ${i}`, feePlanId: plan.id });
      await sale(i % 2 ? 'PURCHASE' : 'PAYMENT', { kind: 'MERCHANT', id: merchant.id }, cardCompany.id, amount, occurredAt);
      expected.set(merchant.id, { amount, fee: feeFor(terms, amount), who: `merchant, ${amount} fen` });
    }
    // A biller and the card company (transit revenue), each on the plan with the first amount where the rules differ.
    const telling = amounts.find((a) => terms.basisPoints > 0 && halfWay(terms.basisPoints, a) && wholePart(terms.basisPoints, a) % 2n === 0n) ?? amounts.at(-1)!;
    const biller = await createBiller(em, { cityId: city.id, name: `${code} water`, kind: BillerKind.WATER, feePlanId: plan.id });
    await sale('BILL_PAYMENT', { kind: 'BILLER', id: biller.id }, cardCompany.id, telling, occurredAt);
    expected.set(biller.id, { amount: telling, fee: feeFor(terms, telling), who: `biller, ${telling} fen` });
    await sale('TRANSIT', { kind: 'CARD_COMPANY', id: cardCompany.id }, cardCompany.id, telling, occurredAt);
    expected.set(cardCompany.id, { amount: telling, fee: feeFor(terms, telling), who: `card company, ${telling} fen` });

    const revenueBefore = await balance(em, (await feeRevenueAccount(em, 'CNY')).id);
    const window = await closeWindow(em, { cityId: city.id, businessDay, closedBy: 'test', cutoff: '02:00', now: new Date(`${businessDay}T23:00:00+08:00`) });
    const batch = await clearWindow(em, window.id);
    const lines = await em.execute<{ participant_id: string; gross: string; fees: string; net: string }[]>(`select participant_id, gross::text, fees::text, net::text from settlement_line where batch_id = ?`, [batch.id]);

    const got = Object.fromEntries(lines.map((l) => [expected.get(l.participant_id)?.who ?? l.participant_id, { gross: l.gross, fee: l.fees, net: l.net }]));
    const want = Object.fromEntries([...expected.values()].map((e) => [e.who, { gross: String(e.amount), fee: String(e.fee), net: String(e.amount - e.fee) }]));
    expect(got).toEqual(want);
    const totalFees = [...expected.values()].reduce((sum, e) => sum + e.fee, 0n);
    expect(BigInt(batch.fees)).toBe(totalFees);
    // The fees the ledger moved to the operator's revenue are the same fens.
    expect((await balance(em, (await feeRevenueAccount(em, 'CNY')).id)) - revenueBefore).toBe(totalFees);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('a participant without a fee plan pays no fee on a half-way amount', async () => {
    const code = `FEE${String.fromCharCode(64 + ++day)}`;
    const businessDay = `2026-04-${String(day).padStart(2, '0')}`;
    const { city, cardCompany } = await createCity(em, { code, name: `Fee city ${code}`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code} cards` });
    const merchant = await createMerchant(em, { cityId: city.id, name: `${code} shop` });
    await sale('PAYMENT', { kind: 'MERCHANT', id: merchant.id }, cardCompany.id, 1_750n, new Date(`${businessDay}T12:00:00+08:00`));
    const window = await closeWindow(em, { cityId: city.id, businessDay, closedBy: 'test', cutoff: '02:00', now: new Date(`${businessDay}T23:00:00+08:00`) });
    const batch = await clearWindow(em, window.id);
    const [line] = await em.execute<{ fees: string; net: string }[]>(`select fees::text, net::text from settlement_line where batch_id = ?`, [batch.id]);
    expect(line).toEqual({ fees: '0', net: '1750' });
  });
});

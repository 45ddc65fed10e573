/**
 * Clearing's one pass over a window (issue 23) sums per (participant, issuer, kind): every line,
 * the batch and the interchange positions must equal what the items say, item by item, when each
 * participant has every kind of item (sales of each kind, refunds, top-ups and their refunds),
 * cards of several issuers, and a fee plan of each shape or none. Only sales pay a fee, each
 * sale's fee is feeFor() of it, and a refund or a top-up is never charged one.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { BillerKind } from '../tenancy/biller.entity.js';
import { type FeeTerms, feeFor } from '../tenancy/fee.js';
import { createBiller, createCity, createFeePlan, createMerchant } from '../tenancy/tenancy.service.js';
import { type ClearingKind, type ParticipantKind, recordClearingItem, SALE_KINDS } from './clearing-items.js';
import { clearWindow } from './clearing.js';
import { closeWindow } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const KINDS: ClearingKind[] = ['PAYMENT', 'PURCHASE', 'BILL_PAYMENT', 'TRANSIT', 'REFUND', 'TOP_UP', 'TOP_UP_REFUND', 'TOP_UP_REFUND_FAILED'];
const at = (local: string) => new Date(`${local}+08:00`);

/** A small deterministic generator: the same items on every run. */
function generator(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s % n;
  };
}

describe('clearing a window where every participant has every kind of item', () => {
  it('lines, batch and interchange equal the items summed in TypeScript, fees by feeFor() on sales only', async () => {
    const home = await createCity(em, { code: 'MXA', name: 'Mixed home', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'MXA cards' });
    const away = await createCity(em, { code: 'MXB', name: 'Mixed away', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'MXB cards' });
    const far = await createCity(em, { code: 'MXC', name: 'Mixed far', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'MXC cards' });
    const shapes: FeeTerms[] = [
      { basisPoints: 60, fixedFee: 3n, minimumFee: 10n },
      { basisPoints: 60, fixedFee: 0n, minimumFee: 0n },
      { basisPoints: 0, fixedFee: 5n, minimumFee: 0n },
      { basisPoints: 25, fixedFee: 0n, minimumFee: 2n },
      { basisPoints: 10_000, fixedFee: 0n, minimumFee: 0n },
    ];
    const plans = [];
    for (const [k, terms] of shapes.entries()) plans.push({ id: (await createFeePlan(em, { name: `mixed kinds plan ${k}`, ...terms, currency: 'CNY' })).id, terms });
    const participants: { kind: ParticipantKind; id: string; terms: FeeTerms | null }[] = [];
    for (const [k, plan] of plans.entries()) {
      participants.push({ kind: 'MERCHANT', id: (await createMerchant(em, { cityId: home.city.id, name: `MX shop ${k}`, feePlanId: plan.id })).id, terms: plan.terms });
    }
    participants.push({ kind: 'MERCHANT', id: (await createMerchant(em, { cityId: home.city.id, name: 'MX shop without plan' })).id, terms: null });
    participants.push({ kind: 'BILLER', id: (await createBiller(em, { cityId: home.city.id, name: 'MX water', kind: BillerKind.WATER, feePlanId: plans[0]!.id })).id, terms: plans[0]!.terms });
    participants.push({ kind: 'BILLER', id: (await createBiller(em, { cityId: home.city.id, name: 'MX gas', kind: BillerKind.GAS })).id, terms: null });
    await em.execute(`update card_company set fee_plan_id = ? where id = ?`, [plans[3]!.id, home.cardCompany.id]);
    participants.push({ kind: 'CARD_COMPANY', id: home.cardCompany.id, terms: plans[3]!.terms });
    // A participant with only refunds and top-ups: a line, and no fee.
    const quiet = { kind: 'MERCHANT' as const, id: (await createMerchant(em, { cityId: home.city.id, name: 'MX shop that only refunds', feePlanId: plans[0]!.id })).id, terms: plans[0]!.terms };

    const issuers = [home.cardCompany.id, away.cardCompany.id, far.cardCompany.id, null];
    const amounts = [1n, 83n, 1_750n, 2_500n, 99_999n, 250n, 1_000_001n, 7n];
    const items: { kind: ClearingKind; participant: (typeof participants)[number]; issuer: string | null; amount: bigint }[] = [];
    const next = generator(23);
    for (const participant of participants) {
      for (const kind of KINDS) for (let k = 0; k < 3; k++) items.push({ kind, participant, issuer: issuers[next(issuers.length)]!, amount: amounts[next(amounts.length)]! });
    }
    for (const kind of ['REFUND', 'TOP_UP', 'TOP_UP_REFUND', 'TOP_UP_REFUND_FAILED'] as const) items.push({ kind, participant: quiet, issuer: away.cardCompany.id, amount: 1_750n });
    for (const [k, item] of items.entries()) {
      const key = `mixed-kinds:${k}`;
      await recordClearingItem(em, { kind: item.kind, participant: { kind: item.participant.kind, id: item.participant.id }, cardCompanyId: item.issuer, amount: item.amount, currency: 'CNY', entryKey: key, reference: key, occurredAt: at('2026-06-10T10:00:00') });
    }

    const window = await closeWindow(em, { cityId: home.city.id, businessDay: '2026-06-10', closedBy: 'test', cutoff: '02:00', now: at('2026-06-11T09:00:00') });
    const batch = await clearWindow(em, window.id);

    const sale = (k: ClearingKind) => SALE_KINDS.includes(k);
    const expectedLines = new Map<string, Record<string, string>>();
    for (const p of [...participants, quiet]) {
      const own = items.filter((i) => i.participant.id === p.id);
      const sum = (f: (i: (typeof items)[number]) => boolean) => own.filter(f).reduce((s, i) => s + i.amount, 0n);
      const gross = sum((i) => sale(i.kind));
      const refunds = sum((i) => i.kind === 'REFUND');
      const fees = own.filter((i) => sale(i.kind)).reduce((s, i) => s + (p.terms ? feeFor(p.terms, i.amount) : 0n), 0n);
      const net = gross - refunds - fees;
      expectedLines.set(`${p.kind}:${p.id}`, {
        sales_count: String(own.filter((i) => sale(i.kind)).length),
        refund_count: String(own.filter((i) => i.kind === 'REFUND').length),
        top_up_count: String(own.filter((i) => i.kind === 'TOP_UP').length),
        gross: String(gross),
        refunds: String(refunds),
        fees: String(fees),
        net: String(net),
        due: String(net),
        payout_amount: String(net > 0n ? net : 0n),
        top_ups: String(sum((i) => i.kind === 'TOP_UP')),
        top_up_refunds: String(sum((i) => i.kind === 'TOP_UP_REFUND') - sum((i) => i.kind === 'TOP_UP_REFUND_FAILED')),
      });
    }
    const lines = await em.execute<Record<string, string>[]>(
      `select participant_kind, participant_id, sales_count::text, refund_count::text, top_up_count::text, gross::text, refunds::text, fees::text, net::text, due::text,
              payout_amount::text, top_ups::text, top_up_refunds::text
         from settlement_line where batch_id = ?`,
      [batch.id],
    );
    expect(Object.fromEntries(lines.map(({ participant_kind, participant_id, ...rest }) => [`${participant_kind}:${participant_id}`, rest]))).toEqual(Object.fromEntries(expectedLines));

    const total = (field: string) => String([...expectedLines.values()].reduce((s, l) => s + BigInt(l[field]!), 0n));
    const itemCount = [...expectedLines.values()].reduce((s, l) => s + BigInt(l.sales_count!) + BigInt(l.refund_count!) + BigInt(l.top_up_count!), 0n);
    expect(batch).toMatchObject({ item_count: String(itemCount), gross: total('gross'), refunds: total('refunds'), fees: total('fees'), net: total('net'), payout_total: total('payout_amount'), top_ups: total('top_ups'), top_up_refunds: total('top_up_refunds') });

    // Interchange: sales and refunds made with other issuers' cards, whoever was paid; top-ups are not interchange.
    const expectedPositions: Record<string, Record<string, string>> = {};
    for (const issuer of [away.cardCompany.id, far.cardCompany.id]) {
      const own = items.filter((i) => i.issuer === issuer && (sale(i.kind) || i.kind === 'REFUND'));
      const gross = own.filter((i) => sale(i.kind)).reduce((s, i) => s + i.amount, 0n);
      const refunds = own.filter((i) => i.kind === 'REFUND').reduce((s, i) => s + i.amount, 0n);
      expectedPositions[issuer] = { acquirer_id: home.cardCompany.id, count: String(own.length), gross: String(gross), refunds: String(refunds), net: String(gross - refunds) };
    }
    const positions = await em.execute<Record<string, string>[]>(`select issuer_id, acquirer_id, count::text, gross::text, refunds::text, net::text from interchange_position where batch_id = ?`, [batch.id]);
    expect(Object.fromEntries(positions.map(({ issuer_id, ...rest }) => [issuer_id, rest]))).toEqual(expectedPositions);
  });
});

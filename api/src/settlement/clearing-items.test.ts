/**
 * Recording a clearing item (clearing-items.ts): what clearing will pay a participant is the items
 * it finds, so each settleable movement must be recorded once, with its amount, participant and
 * references, in its participant's city, on the local business day it happened there, in the window
 * that will clear it. windows.test.ts holds an item racing its window's close; this file holds the
 * item itself. (Written for mutation testing, docs/testing.md.)
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { BillerKind } from '../tenancy/biller.entity.js';
import { createBiller, createCity, createMerchant } from '../tenancy/tenancy.service.js';
import { type ClearingItemInput, recordClearingItem, setGatewayReference } from './clearing-items.js';
import { closeWindow, ensureWindow, windowOf } from './windows.js';

let db: TestDatabase;
let em: EntityManager;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

/** A merchant in a city on Shanghai time, a biller in one on Tokyo time, and each city's card company. */
async function participants(code: string) {
  const shanghai = await createCity(em, { code: `${code}S`, name: `City ${code}S`, timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: `${code}S Card Co` });
  const tokyo = await createCity(em, { code: `${code}T`, name: `City ${code}T`, timeZone: 'Asia/Tokyo', currency: 'CNY', cardCompanyName: `${code}T Card Co` });
  const merchant = await createMerchant(em, { cityId: shanghai.city.id, name: `${code} Shop` });
  const biller = await createBiller(em, { cityId: tokyo.city.id, name: `${code} Water`, kind: BillerKind.WATER });
  return { shanghai, tokyo, merchant, biller };
}

let keys = 0;
const item = (participant: ClearingItemInput['participant'], cardCompanyId: string, more: Partial<ClearingItemInput> = {}): ClearingItemInput => ({
  kind: 'PAYMENT',
  participant,
  cardCompanyId,
  amount: 500n,
  currency: 'CNY',
  entryKey: `items-test:${++keys}`,
  reference: `ref-${keys}`,
  ...more,
});

type ItemRow = Record<string, unknown> & { city_id: string; business_day: string; window_id: string | null; occurred_at: string };
const itemsOf = (entryKey: string) =>
  em.execute<ItemRow[]>(
    `select city_id, business_day::text as business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount::text as amount, currency, to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as occurred_at, entry_key, reference, gateway_reference
       from clearing_item where entry_key = ?`,
    [entryKey],
  );

describe('recording a clearing item', () => {
  it('records every field, in the open window of its day, once however often it is recorded', async () => {
    const { shanghai, merchant } = await participants('CIA');
    const window = await ensureWindow(em, shanghai.city.id, '2026-04-10', '02:00');
    const sale = item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { kind: 'PURCHASE', amount: 1234n, gatewayReference: 'ch_1', occurredAt: new Date('2026-04-10T03:00:00Z') });
    await recordClearingItem(em, sale);
    const expected = {
      city_id: shanghai.city.id,
      business_day: '2026-04-10',
      window_id: window.id,
      kind: 'PURCHASE',
      participant_kind: 'MERCHANT',
      participant_id: merchant.id,
      card_company_id: shanghai.cardCompany.id,
      amount: '1234',
      currency: 'CNY',
      occurred_at: '2026-04-10T03:00:00Z',
      entry_key: sale.entryKey,
      reference: sale.reference,
      gateway_reference: 'ch_1',
    };
    expect(await itemsOf(sale.entryKey)).toEqual([expected]);
    // A replayed entry records nothing new, even when it says it happened on another day (another partition).
    await recordClearingItem(em, sale);
    await recordClearingItem(em, { ...sale, amount: 1n, occurredAt: new Date('2026-04-20T03:00:00Z') });
    expect(await itemsOf(sale.entryKey)).toEqual([expected]);
  });

  it('without a gateway reference or an issuer, records them as none', async () => {
    const { shanghai, merchant } = await participants('CIB');
    const refund = item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { kind: 'REFUND', occurredAt: new Date('2026-04-10T03:00:00Z') });
    await recordClearingItem(em, { ...refund, cardCompanyId: null });
    expect(await itemsOf(refund.entryKey)).toMatchObject([{ kind: 'REFUND', card_company_id: null, gateway_reference: null }]);
  });

  it("is in its participant's city, on the local date there: a merchant's, a biller's, a card company's", async () => {
    const { shanghai, tokyo, merchant, biller } = await participants('CIC');
    // 15:30 UTC is 23:30 in Shanghai (the 10th) and 00:30 in Tokyo (the 11th).
    const occurredAt = new Date('2026-04-10T15:30:00Z');
    const cases: [ClearingItemInput, string, string][] = [
      [item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { occurredAt }), shanghai.city.id, '2026-04-10'],
      [item({ kind: 'BILLER', id: biller.id }, tokyo.cardCompany.id, { kind: 'BILL_PAYMENT', occurredAt }), tokyo.city.id, '2026-04-11'],
      [item({ kind: 'CARD_COMPANY', id: tokyo.cardCompany.id }, tokyo.cardCompany.id, { kind: 'TRANSIT', occurredAt }), tokyo.city.id, '2026-04-11'],
      [item({ kind: 'CARD_COMPANY', id: shanghai.cardCompany.id }, shanghai.cardCompany.id, { kind: 'TOP_UP', occurredAt }), shanghai.city.id, '2026-04-10'],
    ];
    for (const [recorded, cityId, day] of cases) {
      await recordClearingItem(em, recorded);
      const [row] = await itemsOf(recorded.entryKey);
      expect([row?.city_id, row?.business_day, row?.participant_kind], recorded.kind).toEqual([cityId, day, recorded.participant.kind]);
      // No window was open for it: it opened its day's.
      expect(row?.window_id, recorded.kind).toBe((await windowOf(em, cityId, day))?.id);
    }
  });

  it("an offline record's local time is read in the city's time zone; no time at all is now", async () => {
    const { tokyo, biller } = await participants('CID');
    const offline = item({ kind: 'BILLER', id: biller.id }, tokyo.cardCompany.id, { occurredLocal: '2026-04-12 23:59:59' });
    await recordClearingItem(em, offline);
    expect(await itemsOf(offline.entryKey)).toMatchObject([{ business_day: '2026-04-12', occurred_at: '2026-04-12T14:59:59Z' }]);

    const before = Date.now();
    const live = item({ kind: 'BILLER', id: biller.id }, tokyo.cardCompany.id);
    await recordClearingItem(em, live);
    const [row] = await itemsOf(live.entryKey);
    expect(Date.parse(row!.occurred_at)).toBeGreaterThanOrEqual(before - 5_000);
    expect(Date.parse(row!.occurred_at)).toBeLessThanOrEqual(Date.now() + 5_000);
    // Its business day is the Tokyo date of that instant (not of a second query's clock: no flake at midnight).
    const [{ day }] = await em.execute<{ day: string }[]>(`select (?::timestamptz at time zone 'Asia/Tokyo')::date::text as day`, [row!.occurred_at]);
    expect(row!.business_day).toBe(day);
  });

  it("an item of a day whose window has closed goes into the next day's window, keeping its own business day", async () => {
    const { shanghai, merchant } = await participants('CIE');
    await ensureWindow(em, shanghai.city.id, '2026-04-10', '02:00');
    await closeWindow(em, { cityId: shanghai.city.id, businessDay: '2026-04-10', closedBy: 'operator', cutoff: '02:00', now: new Date('2026-04-11T01:00:00Z') });
    const late = item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { occurredAt: new Date('2026-04-10T12:00:00Z') });
    await recordClearingItem(em, late);
    const next = await windowOf(em, shanghai.city.id, '2026-04-11');
    expect(next).toMatchObject({ status: 'OPEN' });
    expect(await itemsOf(late.entryKey)).toMatchObject([{ business_day: '2026-04-10', window_id: next!.id }]);
    // Recorded again, still once.
    await recordClearingItem(em, late);
    expect(await itemsOf(late.entryKey)).toHaveLength(1);
  });

  it('refuses an amount that is not positive, and a participant with no city, recording nothing', async () => {
    const { shanghai, merchant } = await participants('CIF');
    for (const amount of [0n, -5n]) {
      const bad = item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { amount });
      await expect(recordClearingItem(em, bad)).rejects.toThrow(`a clearing item is a positive amount; got ${amount}`);
      expect(await itemsOf(bad.entryKey)).toEqual([]);
    }
    const nobody = '00000000-0000-4000-8000-0000000000aa';
    for (const kind of ['MERCHANT', 'BILLER', 'CARD_COMPANY'] as const) {
      const orphan = item({ kind, id: nobody }, shanghai.cardCompany.id);
      await expect(recordClearingItem(em, orphan)).rejects.toThrow(`no city for ${kind.toLowerCase()} ${nobody}: clearing item ${orphan.entryKey} not recorded`);
      expect(await itemsOf(orphan.entryKey)).toEqual([]);
    }
    // The merchant's id is no biller's: a biller's city is read from the billers.
    const mistaken = item({ kind: 'BILLER', id: merchant.id }, shanghai.cardCompany.id);
    await expect(recordClearingItem(em, mistaken)).rejects.toThrow(`no city for biller ${merchant.id}`);
  });
});

describe('setGatewayReference', () => {
  it("names the item's gateway object once, and leaves a named item and the other items alone", async () => {
    const { shanghai, merchant } = await participants('CIG');
    const [refund, other, named] = [
      item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { kind: 'REFUND' }),
      item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { kind: 'REFUND' }),
      item({ kind: 'MERCHANT', id: merchant.id }, shanghai.cardCompany.id, { gatewayReference: 'ch_named' }),
    ];
    for (const i of [refund, other, named]) await recordClearingItem(em, i);
    await setGatewayReference(em, refund.entryKey, 're_first');
    await setGatewayReference(em, refund.entryKey, 're_second');
    await setGatewayReference(em, named.entryKey, 're_other');
    expect((await itemsOf(refund.entryKey))[0]!.gateway_reference).toBe('re_first');
    expect((await itemsOf(other.entryKey))[0]!.gateway_reference).toBeNull();
    expect((await itemsOf(named.entryKey))[0]!.gateway_reference).toBe('ch_named');
  });
});

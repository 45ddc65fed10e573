import type { EntityManager } from '@mikro-orm/postgresql';
import { windowForNewItem } from './windows.js';

/** What clearing counts. Sales earn the payee money (less the operator's fee); the rest adjust it. */
export type ClearingKind = 'PAYMENT' | 'PURCHASE' | 'BILL_PAYMENT' | 'TRANSIT' | 'REFUND' | 'TOP_UP' | 'TOP_UP_REFUND' | 'TOP_UP_REFUND_FAILED';
export const SALE_KINDS: readonly ClearingKind[] = ['PAYMENT', 'PURCHASE', 'BILL_PAYMENT', 'TRANSIT'];
export type ParticipantKind = 'MERCHANT' | 'BILLER' | 'CARD_COMPANY';

export interface ClearingItemInput {
  kind: ClearingKind;
  /** Who is paid (or charged back): a merchant, a biller, or a card company (transit revenue, top-ups of its cards). */
  participant: { kind: ParticipantKind; id: string };
  /** The card's issuer; a card used outside its home city makes interchange. */
  cardCompanyId: string | null;
  amount: bigint;
  currency: string;
  /** The ledger entry this item mirrors: one item per entry, so a replayed entry records nothing new. */
  entryKey: string;
  /** The business object: a payment, bill payment, top-up, refund or offline purchase. */
  reference: string;
  /** The payment gateway's id (charge, refund) for reconciliation. */
  gatewayReference?: string | null;
  /** When it happened; now by default. An offline record gives the card's local date and time instead. */
  occurredAt?: Date;
  /** `YYYY-MM-DD HH:MM:SS` in the city's time zone (offline records carry no offset). */
  occurredLocal?: string;
}

/**
 * Records a settleable movement in the same transaction as its ledger entry. Its city is the
 * participant's, its business day the local date of when it happened there, and its window the
 * one windowForNewItem gives: that day's while open, else the next (settlement/windows.ts).
 * Idempotent by the entry key: `clearing_item` is partitioned by business day, so its unique key
 * is (entry_key, business_day); the insert also asks that no partition holds the key.
 *
 * The usual case (the window already open) is one statement: the city, the business day, the
 * window and the item. The window is taken FOR KEY SHARE: every close moves it through closeWindow,
 * which locks it FOR UPDATE first, so an item waits for a close in flight, and once the close
 * commits PostgreSQL re-reads the row, finds it closed and the statement writes nothing. A stronger
 * lock (FOR SHARE) would also wait for the cut-off job's re-stamping of open windows' cut-offs,
 * and deadlock with a transaction that records items for two days (an offline upload; test).
 * Then, as when the window does not exist yet, windowForNewItem opens or finds the next one.
 */
export async function recordClearingItem(em: EntityManager, item: ClearingItemInput): Promise<void> {
  if (item.amount <= 0n) throw new RangeError(`a clearing item is a positive amount; got ${item.amount}`);
  const participantCity =
    item.participant.kind === 'MERCHANT' ? 'select city_id from merchant where id = ?' : item.participant.kind === 'BILLER' ? 'select city_id from biller where id = ?' : 'select city_id from card_company where id = ?';
  const values = [item.kind, item.participant.kind, item.participant.id, item.cardCompanyId, item.amount.toString(), item.currency, item.entryKey, item.reference, item.gatewayReference ?? null];
  const [at] = await em.execute<{ city_id: string; occurred_at: Date; business_day: string; window_open: boolean }[]>(
    `with at as (
       select c.id as city_id, t.occurred_at, (t.occurred_at at time zone c.time_zone)::date as business_day
         from city c cross join lateral (select coalesce(?::timestamptz, ?::timestamp at time zone c.time_zone, now()) as occurred_at) t
        where c.id = (${participantCity})
     ),
     -- windowForNewItem's target: the day's own window, or the day after the last closed one when that is later
     target as (
       select at.*, greatest(at.business_day, (select max(l.business_day) + 1 from settlement_window l where l.city_id = at.city_id and l.status <> 'OPEN')) as window_day from at
     ),
     open_window as (
       select w.id from settlement_window w join target on w.city_id = target.city_id and w.business_day = target.window_day where w.status = 'OPEN' for key share of w
     ),
     recorded as (
       insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference, gateway_reference)
       select target.city_id, target.business_day, open_window.id, ?, ?, ?, ?, ?, ?, target.occurred_at, ?, ?, ? from target, open_window
        where not exists (select 1 from clearing_item x where x.entry_key = ?)
       on conflict (entry_key, business_day) do nothing
     )
     select city_id, occurred_at, business_day::text as business_day, exists (select 1 from open_window) as window_open from target`,
    [item.occurredAt ?? null, item.occurredLocal ?? null, item.participant.id, ...values, item.entryKey],
  );
  if (!at) throw new Error(`no city for ${item.participant.kind.toLowerCase()} ${item.participant.id}: clearing item ${item.entryKey} not recorded`);
  if (at.window_open) return;
  const windowId = await windowForNewItem(em, at.city_id, at.business_day);
  await em.execute(
    `insert into clearing_item (city_id, business_day, window_id, kind, participant_kind, participant_id, card_company_id, amount, currency, occurred_at, entry_key, reference, gateway_reference)
     select ?, ?::date, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
      where not exists (select 1 from clearing_item x where x.entry_key = ?)
     on conflict (entry_key, business_day) do nothing`,
    [at.city_id, at.business_day, windowId, ...values.slice(0, 6), at.occurred_at, ...values.slice(6), item.entryKey],
  );
}

/** The gateway's id of an item learnt after it was recorded (a refund is booked before the gateway names it). */
export async function setGatewayReference(em: EntityManager, entryKey: string, gatewayReference: string): Promise<void> {
  await em.execute(`update clearing_item set gateway_reference = ? where entry_key = ? and gateway_reference is null`, [gatewayReference, entryKey]);
}

import type { EntityManager } from '@mikro-orm/postgresql';
import type { TopUpLimits } from '../config/config.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import type { PurseObserver } from '../readers/session/purpose.js';
import { recordEvent } from '../webhooks/outbox.js';
import { TopUpError } from './topups.errors.js';
import { recordAutoTopUp } from './topups.service.js';
import { cardPurseBalance } from '../ledger/accounts.js';

/** Below this balance a card without settings of its own raises a low-balance event (10.00 in the card's currency). */
export const DEFAULT_LOW_BALANCE_THRESHOLD = 1_000n;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AutoTopUpRow {
  card_id: string;
  holder_id: string;
  threshold: string;
  amount: string;
  payment_method: string;
  enabled: boolean;
  last_triggered_at: Date | null;
  currency: string;
}

export async function autoTopUpOf(em: EntityManager, cardId: string): Promise<AutoTopUpRow | null> {
  if (!UUID.test(cardId)) return null;
  const [row] = await em.execute<AutoTopUpRow[]>(
    `select a.card_id, a.holder_id, a.threshold::text as threshold, a.amount::text as amount, a.payment_method, a.enabled, a.last_triggered_at, btrim(ci.currency) as currency
       from card_auto_top_up a join card c on c.id = a.card_id join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id
      where a.card_id = ?`,
    [cardId],
  );
  return row ?? null;
}

/** Sets a registered card's auto top-up; only the app of the card's holder (scope card:topup). */
export async function setAutoTopUp(em: EntityManager, principal: Principal, limits: TopUpLimits, input: { cardId: string; threshold: bigint; amount: bigint; paymentMethod: string; enabled: boolean }): Promise<AutoTopUpRow> {
  if (!principal.scopes.includes('card:topup') || !principal.holderId || !UUID.test(input.cardId)) throw new TopUpError('NOT_FOUND', `no card ${input.cardId} you may top up`, 'card');
  if (input.amount < limits.min || input.amount > limits.max) throw new TopUpError('TOP_UP_AMOUNT_OUT_OF_RANGE', `a top-up is ${limits.min} to ${limits.max} minor units`, 'amount');
  if (input.threshold < 0n || input.threshold + input.amount > limits.purseMax) throw new TopUpError('INVALID_INPUT', `threshold plus amount must stay within the purse maximum (${limits.purseMax})`, 'threshold');
  if (!/^pm_[A-Za-z0-9_]{1,100}$/.test(input.paymentMethod)) throw new TopUpError('INVALID_INPUT', 'a payment method is a gateway reference like pm_…', 'paymentMethod');
  const [card] = await em.execute<{ id: string }[]>(`select id from card where id = ? and holder_id = ?`, [input.cardId, principal.holderId]);
  if (!card) throw new TopUpError('NOT_FOUND', `no card ${input.cardId} you may top up`, 'card');
  await em.execute(
    `insert into card_auto_top_up (card_id, holder_id, threshold, amount, payment_method, enabled, updated_by_client) values (?, ?, ?, ?, ?, ?, ?)
     on conflict (card_id) do update set holder_id = excluded.holder_id, threshold = excluded.threshold, amount = excluded.amount,
       payment_method = excluded.payment_method, enabled = excluded.enabled, updated_by_client = excluded.updated_by_client, updated_at = now()`,
    [card.id, principal.holderId, input.threshold.toString(), input.amount.toString(), input.paymentMethod, input.enabled, principal.clientId],
  );
  return (await autoTopUpOf(em, card.id))!;
}

/** A purse a purchase (or a batch of them) moved: its balance before and after. */
export interface PurseMove {
  asn: string;
  currency: string;
  before: bigint;
  after: bigint;
}

interface Crossing {
  id: string;
  asn: string;
  card_company_id: string;
  holder_id: string | null;
  threshold: string;
  settings: Pick<AutoTopUpRow, 'holder_id' | 'amount' | 'payment_method' | 'enabled'> | null;
}

/**
 * The registered cards these moves took below their threshold (at or above it before, below it
 * after), with their settings, in one statement however many purses moved. A card already below
 * its threshold before the move is not among them: it was told when it went below.
 */
async function cardsCrossingThreshold(em: EntityManager, moves: PurseMove[]): Promise<Crossing[]> {
  if (moves.length === 0) return [];
  return em.execute<Crossing[]>(
    `select c.id, c.asn, c.card_company_id, c.holder_id, coalesce(a.threshold, ?::bigint)::text as threshold,
            case when a.card_id is null then null else jsonb_build_object('holder_id', a.holder_id, 'amount', a.amount::text, 'payment_method', a.payment_method, 'enabled', a.enabled) end as settings
       from json_to_recordset(?::json) as m(asn text, before bigint, after bigint)
       join card c on c.asn = m.asn
       left join card_auto_top_up a on a.card_id = c.id
      where m.after < coalesce(a.threshold, ?::bigint) and m.before >= coalesce(a.threshold, ?::bigint)
      order by c.id`,
    [DEFAULT_LOW_BALANCE_THRESHOLD.toString(), JSON.stringify(moves.map((m) => ({ asn: m.asn.toUpperCase(), before: m.before.toString(), after: m.after.toString() }))), DEFAULT_LOW_BALANCE_THRESHOLD.toString(), DEFAULT_LOW_BALANCE_THRESHOLD.toString()],
  );
}

/**
 * What a card going below its threshold causes: a `card.low_balance` event for the card company,
 * and, when the holder turned it on, an auto top-up recorded in the caller's transaction for the
 * job to charge (idempotent by `trigger`). Never refuses the purchase: a top-up the limits refuse
 * is reported as an event instead.
 */
async function lowBalanceReached(em: EntityManager, limits: TopUpLimits, card: Crossing, move: PurseMove, trigger: string): Promise<void> {
  const { settings } = card;
  const subject = { card: toGlobalId('Card', card.id), balance: Number(move.after), threshold: Number(BigInt(card.threshold)), currency: move.currency };
  await recordEvent(em, { type: 'card.low_balance', ownerKind: 'ISSUER', ownerId: card.card_company_id, subjectId: subject.card, payload: subject });
  if (!settings?.enabled || settings.holder_id !== card.holder_id) return;
  try {
    // A savepoint: a refusal leaves the purchase's transaction as it was.
    const made = await em.transactional((tx) => recordAutoTopUp(tx, card.id, limits, { amount: BigInt(settings.amount), paymentMethod: settings.payment_method, trigger }));
    if (made) await em.execute(`update card_auto_top_up set last_triggered_at = now() where card_id = ?`, [card.id]);
  } catch (err) {
    if (!(err instanceof TopUpError)) throw err;
    await recordEvent(em, { type: 'card.auto_top_up_refused', ownerKind: 'ISSUER', ownerId: card.card_company_id, subjectId: subject.card, payload: { ...subject, reason: err.code, message: err.message } });
  }
}

/**
 * Handed to the card-session engine at the composition root (card-sessions.ts), with the
 * configuration's top-up limits: after an online purchase that took a card's purse below its
 * threshold (it was at or above it before), lowBalanceReached.
 */
export const lowBalanceObserver = (limits: TopUpLimits): PurseObserver => async (em, done) => {
  if (done.session.operation !== 'PURCHASE') return;
  // The engine hands over the shadow it read after this purchase's entry (the row stays locked until commit).
  const after = done.purseBalance ?? (await cardPurseBalance(em, done.asn, done.currency));
  const move = { asn: done.asn, currency: done.currency, before: after + BigInt(done.result.amount as number), after };
  const [card] = await cardsCrossingThreshold(em, [move]);
  if (card) await lowBalanceReached(em, limits, card, move, done.session.id);
};

/**
 * After an offline batch is booked (issue 23): the same as an online purchase, once per card and
 * not per record, each card's purse taken from before the batch to after it. A card whose rides
 * took it below its threshold is told once, however many of its rides the batch holds. Its auto
 * top-up is keyed by the batch and the card, so it is recorded once.
 */
export async function lowBalanceAfterOfflineBatch(em: EntityManager, limits: TopUpLimits, batchRowId: string, moves: PurseMove[]): Promise<void> {
  const byAsn = new Map(moves.map((m) => [m.asn.toUpperCase(), m]));
  for (const card of await cardsCrossingThreshold(em, moves)) await lowBalanceReached(em, limits, card, byAsn.get(card.asn.toUpperCase())!, `offline:${batchRowId}:${card.id}`);
}

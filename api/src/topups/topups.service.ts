import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TopUpLimits } from '../config/config.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { credit, debit, post, type PostedEntry, reverse } from '../ledger/ledger.service.js';
import { recordClearingItem, setGatewayReference } from '../settlement/clearing-items.js';
import { recordEvent } from '../webhooks/outbox.js';
import { crashPoint } from '../graphql/crash-point.js';
import { type GatewayClient, GatewayError, type PaymentIntent, type Refund } from './gateway/gateway-client.js';
import { sealClientSecret } from './client-secret.js';
import { TopUpError } from './topups.errors.js';
import { cardPurseAccount, cardPurseBalance, gatewayClearingAccount, pendingLoadAccount } from '../ledger/accounts.js';

export type TopUpStatus = 'CREATED' | 'AWAITING_PAYMENT' | 'PAID' | 'LOADED' | 'SPENT' | 'FAILED' | 'CANCELED' | 'REFUNDING' | 'REFUNDED';
export type TopUpOrigin = 'APP' | 'COUNTER' | 'AUTO' | 'TRANSFER' | 'REFUND';

export interface LoadClaim {
  /** The card's online counter and balance when the host issued MAC2 (before the card increments). */
  onlineCounter: number;
  oldBalance: number;
  /** What MAC2 bound: the log record a credited card writes carries them. */
  terminal: string;
  date: string;
  time: string;
}

export interface TopUpRow {
  id: string;
  card_id: string;
  card_company_id: string;
  origin: TopUpOrigin;
  holder_id: string | null;
  created_by_client: string;
  idempotency_key: string;
  request_hash: string;
  amount: string;
  currency: string;
  status: TopUpStatus;
  payment_method: string | null;
  gateway_intent_id: string | null;
  /** Sealed (topups/client-secret.ts). */
  client_secret_sealed: string | null;
  failure_code: string | null;
  failure_message: string | null;
  city_day: string;
  load_session_id: string | null;
  load_claim: LoadClaim | null;
  loaded_session_id: string | null;
  gateway_refund_id: string | null;
  gateway_charge_id: string | null;
  refund_attempt: string | null;
  /** The client, holder and idempotency key of the request that started the latest refund (resumes it after a crash). */
  refund_key: string | null;
  spent_on: string | null;
  gateway_attempts: number;
  created_at: Date;
  updated_at: Date;
  paid_at: Date | null;
  loaded_at: Date | null;
  refunded_at: Date | null;
  /** Joined: the card's ASN and number, for the session guard and events. */
  asn: string;
  card_number: string;
}

/**
 * Top-up states as data (STYLE.md §2). Only forward: a late or repeated gateway event that would
 * move a top-up back is recorded and ignored. FAILED → PAID: the holder paid on a later attempt at
 * the gateway, and money taken is never left behind. REFUNDING → PAID: the gateway refused the refund.
 * PAID → SPENT: the holder paid a bill with it instead of loading it onto the card.
 */
export const TOP_UP_TRANSITIONS: Readonly<Record<TopUpStatus, readonly TopUpStatus[]>> = {
  CREATED: ['AWAITING_PAYMENT', 'PAID', 'FAILED', 'CANCELED'],
  AWAITING_PAYMENT: ['PAID', 'FAILED', 'CANCELED'],
  FAILED: ['PAID'],
  PAID: ['LOADED', 'SPENT', 'REFUNDING', 'REFUNDED'],
  REFUNDING: ['REFUNDED', 'PAID'],
  LOADED: [],
  SPENT: [],
  CANCELED: [],
  REFUNDED: [],
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOP_UP_COLUMNS = `t.*, t.amount::text as amount, t.city_day::text as city_day, c.asn, c.card_number`;
const TOP_UP_FROM = `top_up t join card c on c.id = t.card_id`;

export const topUpGlobalId = (id: string) => toGlobalId('TopUp', id);

// ——— ledger accounts ———

// ——— reading ———

export async function topUpById(em: EntityManager, id: string, lock = false): Promise<TopUpRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<TopUpRow[]>(`select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.id = ?${lock ? ' for update of t' : ''}`, [id]);
  return row ?? null;
}

/**
 * Who sees which top-ups, as a WHERE clause (ownership in the query): the operator all, a card
 * company its cards', a cardholder app those of its holder's registered cards; each with a read scope.
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  switch (principal.kind) {
    case 'OPERATOR':
      return principal.scopes.includes('cards:read') ? { sql: 'true', params: [] } : null;
    case 'ISSUER':
      return principal.scopes.includes('cards:read') && principal.tenantId && UUID.test(principal.tenantId) ? { sql: 't.card_company_id = ?', params: [principal.tenantId] } : null;
    case 'CARDHOLDER_APP':
      return principal.scopes.includes('card:read') && principal.holderId && UUID.test(principal.holderId) ? { sql: 'c.holder_id = ?', params: [principal.holderId] } : null;
    default:
      return null;
  }
}

export async function findTopUpFor(em: EntityManager, principal: Principal, id: string): Promise<TopUpRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<TopUpRow[]>(`select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.id = ? and (${where.sql})`, [id, ...where.params]);
  return row ?? null;
}

/** A top-up's status and sealed gateway client secret, as they are now. */
export async function clientSecretSealedOf(em: EntityManager, id: string): Promise<{ status: TopUpStatus; client_secret_sealed: string | null } | null> {
  const [row] = await em.execute<{ status: TopUpStatus; client_secret_sealed: string | null }[]>(`select status, client_secret_sealed from top_up where id = ?`, [id]);
  return row ?? null;
}

/** A card's top-ups, newest first; keyset on (created_at, id). The card's own visibility is the caller's. */
export function listTopUpsOfCard(em: EntityManager, cardId: string, opts: { after?: { createdAt: string; id: string }; statuses?: TopUpStatus[]; limit: number }): Promise<TopUpRow[]> {
  const params: unknown[] = [cardId];
  let sql = `select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.card_id = ?`;
  if (opts.statuses?.length) {
    sql += ` and t.status in (?)`;
    params.push(opts.statuses);
  }
  if (opts.after) {
    sql += ` and (t.created_at, t.id) < (?::timestamptz, ?::uuid)`;
    params.push(opts.after.createdAt, opts.after.id);
  }
  sql += ` order by t.created_at desc, t.id desc limit ?`;
  params.push(opts.limit);
  return em.execute<TopUpRow[]>(sql, params);
}

/** Paid top-ups of a card not yet on it: what the next 补登 would write. */
export async function pendingLoadOfCard(em: EntityManager, cardId: string): Promise<bigint> {
  const [row] = await em.execute<{ sum: string }[]>(`select coalesce(sum(amount), 0)::text as sum from top_up where card_id = ? and status = 'PAID'`, [cardId]);
  return BigInt(row!.sum);
}

export function topUpHistory(em: EntityManager, topUpId: string) {
  return em.execute<{ from_status: TopUpStatus | null; to_status: TopUpStatus; cause: string; at: Date }[]>(
    `select from_status, to_status, cause, at from top_up_history where top_up_id = ? order by id`,
    [topUpId],
  );
}

// ——— creating ———

export interface CreateTopUpInput {
  cardId: string;
  amount: bigint;
  idempotencyKey: string;
  /** A saved payment method reference at the gateway: charged at once. Without it the holder pays at the gateway's page. */
  paymentMethod?: string | null;
}

interface CardForTopUp {
  id: string;
  card_company_id: string;
  holder_id: string | null;
  status: string;
  card_type: string;
  asn: string;
  currency: string;
  time_zone: string;
}

/** The card a principal may top up: the holder's registered card (app), or one of the card company's (counter). */
async function cardToTopUp(em: EntityManager, principal: Principal, cardId: string): Promise<{ card: CardForTopUp; origin: TopUpOrigin } | null> {
  let where: { sql: string; params: unknown[]; origin: TopUpOrigin } | null = null;
  if (principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') && principal.holderId && UUID.test(principal.holderId)) where = { sql: 'c.holder_id = ?', params: [principal.holderId], origin: 'APP' };
  else if (principal.kind === 'ISSUER' && principal.scopes.includes('topups:write') && principal.tenantId && UUID.test(principal.tenantId)) where = { sql: 'c.card_company_id = ?', params: [principal.tenantId], origin: 'COUNTER' };
  if (!where || !UUID.test(cardId)) return null;
  // Locked: top-ups of one card are created one at a time, so the limits below hold under concurrency.
  const [card] = await em.execute<CardForTopUp[]>(
    `select c.id, c.card_company_id, c.holder_id, c.status, c.card_type, c.asn, btrim(ci.currency) as currency, ci.time_zone
       from card c join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id
      where c.id = ? and (${where.sql}) for update of c`,
    [cardId, ...where.params],
  );
  return card ? { card, origin: where.origin } : null;
}

const requestHash = (input: CreateTopUpInput) => createHash('sha256').update(JSON.stringify([input.cardId, input.amount.toString(), input.paymentMethod ?? null])).digest('hex');

/**
 * The limits a new top-up must stay within, checked with the card row locked: the amount, the
 * day's total in the card's city, and the purse maximum counting what is paid or on its way.
 */
async function checkLimits(em: EntityManager, card: CardForTopUp, amount: bigint, limits: TopUpLimits): Promise<string> {
  if (amount < limits.min || amount > limits.max) throw new TopUpError('TOP_UP_AMOUNT_OUT_OF_RANGE', `a top-up is ${limits.min} to ${limits.max} minor units`, 'amount');
  const [today] = await em.execute<{ day: string; total: string; outstanding: string }[]>(
    `select (now() at time zone ?)::date::text as day,
            coalesce(sum(amount) filter (where city_day = (now() at time zone ?)::date and status not in ('FAILED','CANCELED','REFUNDED')), 0)::text as total,
            coalesce(sum(amount) filter (where status in ('CREATED','AWAITING_PAYMENT','PAID','REFUNDING')), 0)::text as outstanding
       from top_up where card_id = ?`,
    [card.time_zone, card.time_zone, card.id],
  );
  if (BigInt(today!.total) + amount > limits.dailyMax) {
    throw new TopUpError('DAILY_LIMIT_EXCEEDED', `the card has been topped up ${today!.total} today; the daily limit is ${limits.dailyMax}`, 'amount');
  }
  const purse = await cardPurseBalance(em, card.asn, card.currency);
  if (purse + BigInt(today!.outstanding) + amount > limits.purseMax) {
    throw new TopUpError('PURSE_LIMIT_EXCEEDED', `the card holds ${purse} with ${today!.outstanding} on its way; a purse holds at most ${limits.purseMax}`, 'amount');
  }
  return today!.day;
}

/**
 * Records a top-up (CREATED) and only then asks the gateway for the payment, so that a webhook
 * that arrives before the gateway call returns finds the top-up, and a crash in between leaves a
 * row the job submits again (the gateway call is idempotent by the top-up id). The same client and
 * idempotency key with the same request returns the first top-up; with another request, a refusal.
 */
export async function createTopUp(em: EntityManager, deps: { gateway: GatewayClient | null; limits: TopUpLimits }, principal: Principal, input: CreateTopUpInput): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  if (!/^[\x20-\x7e]{1,200}$/.test(input.idempotencyKey) || !input.idempotencyKey.trim()) throw new TopUpError('INVALID_INPUT', 'an idempotency key is 1 to 200 printable ASCII characters, not only spaces', 'idempotencyKey');
  if (input.paymentMethod != null && !/^pm_[A-Za-z0-9_]{1,100}$/.test(input.paymentMethod)) throw new TopUpError('INVALID_INPUT', 'a payment method is a gateway reference like pm_…', 'paymentMethod');
  const hash = requestHash(input);
  // A cardholder app is one OAuth client for many holders: each holder has a key space of its own.
  const key = principal.kind === 'CARDHOLDER_APP' && principal.holderId ? `${principal.holderId}/${input.idempotencyKey}` : input.idempotencyKey;
  const created = await em.transactional(async (tx) => {
    // Two requests with one key wait on each other at this insert's unique index: never two top-ups.
    const existing = await topUpByKey(tx, principal.clientId, key);
    if (existing) return existing;
    const found = await cardToTopUp(tx, principal, input.cardId);
    if (!found) throw new TopUpError('NOT_FOUND', `no card ${input.cardId} you may top up`, 'card');
    // A saved payment method is the holder's: only the holder's app may charge it.
    if (found.origin !== 'APP' && input.paymentMethod != null) throw new TopUpError('FORBIDDEN_OPERATION', 'only the cardholder’s app charges a saved payment method; a counter top-up is paid at paymentUrl', 'paymentMethod');
    const row = await insertTopUp(tx, found.card, deps.limits, {
      origin: found.origin,
      holderId: principal.kind === 'CARDHOLDER_APP' ? principal.holderId : found.card.holder_id,
      clientId: principal.clientId,
      idempotencyKey: key,
      hash,
      amount: input.amount,
      paymentMethod: input.paymentMethod ?? null,
    });
    return row ?? (await topUpByKey(tx, principal.clientId, key))!;
  });
  if (created.request_hash !== hash) throw new TopUpError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was used for another top-up request', 'idempotencyKey');
  if (created.status !== 'CREATED') return { topUp: created };
  await crashPoint('top-up-recorded', 'createTopUp');
  const gatewayError = await submitToGateway(em, deps.gateway, created);
  return { topUp: (await topUpById(em, created.id))!, gatewayError };
}

interface NewTopUp {
  origin: TopUpOrigin;
  holderId: string | null;
  clientId: string;
  idempotencyKey: string;
  hash: string;
  amount: bigint;
  paymentMethod: string | null;
}

/** Inserts a CREATED top-up for a card locked by the caller, within the limits; null when the key raced in first. */
async function insertTopUp(tx: EntityManager, card: CardForTopUp, limits: TopUpLimits, t: NewTopUp): Promise<TopUpRow | null> {
  if (card.status !== 'ACTIVE') throw new TopUpError('CARD_NOT_USABLE', `the card is ${card.status}`, 'card');
  if (card.card_type !== 'CPU') throw new TopUpError('CARD_NOT_USABLE', 'online top-ups are written to CPU cards; load an M1 card at a counter', 'card');
  const day = await checkLimits(tx, card, t.amount, limits);
  const id = randomUUID();
  const [row] = await tx.execute<{ id: string }[]>(
    `insert into top_up (id, card_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, payment_method, city_day)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'CREATED', ?, ?) on conflict (created_by_client, idempotency_key) do nothing returning id`,
    [id, card.id, card.card_company_id, t.origin, t.holderId, t.clientId, t.idempotencyKey, t.hash, t.amount.toString(), card.currency, t.paymentMethod, day],
  );
  if (!row) return null;
  await history(tx, id, null, 'CREATED', t.origin === 'AUTO' ? 'auto top-up' : 'create');
  return topUpById(tx, id);
}

/** The client id auto top-ups are recorded under (no OAuth client asks for them). */
export const AUTO_TOP_UP_CLIENT = 'onecard:auto-top-up';

/**
 * An auto top-up, recorded in the caller's transaction (the purchase that took the purse below
 * its threshold); the job asks the gateway. Idempotent by the triggering session.
 */
export async function recordAutoTopUp(tx: EntityManager, cardId: string, limits: TopUpLimits, t: { amount: bigint; paymentMethod: string; trigger: string }): Promise<TopUpRow | null> {
  const [card] = await tx.execute<CardForTopUp[]>(
    `select c.id, c.card_company_id, c.holder_id, c.status, c.card_type, c.asn, btrim(ci.currency) as currency, ci.time_zone
       from card c join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id where c.id = ? for update of c`,
    [cardId],
  );
  if (!card) return null;
  return insertTopUp(tx, card, limits, { origin: 'AUTO', holderId: card.holder_id, clientId: AUTO_TOP_UP_CLIENT, idempotencyKey: `auto:${t.trigger}`, hash: 'auto', amount: t.amount, paymentMethod: t.paymentMethod });
}

/** The client id balance transfers of replaced cards are recorded under. */
export const BALANCE_TRANSFER_CLIENT = 'onecard:balance-transfer';

/**
 * Value owed to a card that did not come through the gateway (a replaced card's balance, a
 * merchant's refund), recorded in the caller's transaction as a PAID pending load: the ledger moves
 * it from `fromAccountId` into the card company's pending loads, and the card's next tap writes it
 * onto the chip (补登). When the card was replaced since, the value follows the chain to the card
 * in use. Idempotent by `key` (the ledger entry's and the top-up's).
 */
export async function recordPendingLoad(
  tx: EntityManager,
  t: { origin: 'TRANSFER' | 'REFUND'; cardId: string; key: string; amount: bigint; currency: string; fromAccountId: string; description: string; metadata: Record<string, unknown>; cause: string },
): Promise<{ topUpId: string; entry: PostedEntry }> {
  const [target] = await tx.execute<{ id: string; card_company_id: string; holder_id: string | null; time_zone: string }[]>(
    `with recursive chain as (select c.* from card c where c.id = ? union all select n.* from card n join chain on n.id = chain.replaced_by)
     select chain.id, chain.card_company_id, chain.holder_id, ci.time_zone from chain join card_company cc on cc.id = chain.card_company_id join city ci on ci.id = cc.city_id
      where chain.replaced_by is null`,
    [t.cardId],
  );
  const pending = await pendingLoadAccount(tx, target!.card_company_id, t.currency);
  const entry = await post(tx, { key: t.key, description: t.description, lines: [debit(t.fromAccountId, t.amount), credit(pending.id, t.amount)], metadata: { ...t.metadata, toCard: target!.id } });
  const client = t.origin === 'TRANSFER' ? BALANCE_TRANSFER_CLIENT : REFUND_CLIENT;
  const [existing] = await tx.execute<{ id: string }[]>(`select id from top_up where created_by_client = ? and idempotency_key = ?`, [client, t.key]);
  if (existing) return { topUpId: existing.id, entry };
  const id = randomUUID();
  await tx.execute(
    `insert into top_up (id, card_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, city_day, paid_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PAID', (now() at time zone ?)::date, now())`,
    [id, target!.id, target!.card_company_id, t.origin, target!.holder_id, client, t.key, t.origin.toLowerCase(), t.amount.toString(), t.currency, target!.time_zone],
  );
  await history(tx, id, null, 'PAID', t.cause);
  return { topUpId: id, entry };
}

/**
 * A PAID top-up (locked by the caller) spent on something else than the card, in the caller's
 * transaction: its value leaves the card company's pending loads for `toAccountId` (e.g. a biller's
 * payable), and the top-up is SPENT. A load that was started on the card (MAC2 issued) cannot be.
 */
export async function spendTopUp(tx: EntityManager, topUp: TopUpRow, spend: { toAccountId: string; key: string; description: string; metadata: Record<string, unknown>; spentOn: string }): Promise<TopUpRow> {
  if (topUp.status !== 'PAID') throw new TopUpError('NOT_REFUNDABLE', `a ${topUp.status} top-up cannot be spent`, 'fromTopUp');
  if (topUp.load_session_id) throw new TopUpError('NOT_REFUNDABLE', 'a load of this top-up was started on the card; present the card to a reader to settle it first', 'fromTopUp');
  if (topUp.origin === 'TRANSFER' || topUp.origin === 'REFUND') throw new TopUpError('NOT_REFUNDABLE', 'only a top-up paid at the gateway can be spent this way', 'fromTopUp');
  const pending = await pendingLoadAccount(tx, topUp.card_company_id, topUp.currency);
  await post(tx, { key: spend.key, description: spend.description, lines: [debit(pending.id, BigInt(topUp.amount)), credit(spend.toAccountId, BigInt(topUp.amount))], metadata: { ...spend.metadata, topUp: topUp.id } });
  await tx.execute(`update top_up set spent_on = ? where id = ?`, [spend.spentOn, topUp.id]);
  return moveTo(tx, topUp.id, 'SPENT', `spent on ${spend.spentOn}`);
}

/** The client id merchants' refunds to cards are recorded under. */
export const REFUND_CLIENT = 'onecard:payment-refund';

/**
 * A replaced card's balance, moved (in the caller's transaction) to the card now in the holder's
 * hand as a pending load (see recordPendingLoad). Returns the old purse's balance after the entry,
 * which must be zero (the caller moved the whole purse).
 */
export async function recordTransferLoad(tx: EntityManager, t: { transferId: string; fromCardId: string; fromAsn: string; toCardId: string; currency: string; amount: bigint }): Promise<{ id: string; purseBalanceAfter: bigint }> {
  const purse = await cardPurseAccount(tx, t.fromAsn, t.currency);
  const { entry } = await recordPendingLoad(tx, {
    origin: 'TRANSFER',
    cardId: t.toCardId,
    key: `card-balance-transfer:${t.transferId}`,
    amount: t.amount,
    currency: t.currency,
    fromAccountId: purse.id,
    description: `balance of replaced card ${t.fromAsn}, to be loaded onto its replacement`,
    metadata: { kind: 'BALANCE_TRANSFER', balanceTransfer: t.transferId, fromCard: t.fromCardId },
    cause: `balance transfer ${t.transferId}`,
  });
  return { id: entry.id, purseBalanceAfter: entry.lines.find((l) => l.account === purse.id)!.balanceAfter };
}

/**
 * On a replacement: the old card's paid top-ups not yet started on its chip follow the holder to
 * the new card. One whose load was started (MAC2 issued) stays: only the old card can settle it.
 */
export async function movePendingLoads(tx: EntityManager, fromCardId: string, toCardId: string): Promise<number> {
  const moved = await tx.execute<{ id: string }[]>(`update top_up set card_id = ?, updated_at = now() where card_id = ? and status = 'PAID' and load_session_id is null returning id`, [toCardId, fromCardId]);
  for (const { id } of moved) await history(tx, id, 'PAID', 'PAID', `moved to replacement card ${toCardId}`);
  return moved.length;
}

async function topUpByKey(em: EntityManager, clientId: string, key: string): Promise<TopUpRow | null> {
  const [row] = await em.execute<TopUpRow[]>(`select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.created_by_client = ? and t.idempotency_key = ?`, [clientId, key]);
  return row ?? null;
}

async function history(em: EntityManager, topUpId: string, from: TopUpStatus | null, to: TopUpStatus, cause: string): Promise<void> {
  await em.execute(`insert into top_up_history (top_up_id, from_status, to_status, cause) values (?, ?, ?, ?)`, [topUpId, from, to, cause]);
}

/**
 * Asks the gateway for the payment of a CREATED top-up (idempotent by the top-up id, so a retry by
 * the client or the job never charges twice). A saved payment method is charged at once. A gateway
 * that does not answer leaves the top-up CREATED for the job; the caller is told.
 */
export async function submitToGateway(em: EntityManager, gateway: GatewayClient | null, topUp: TopUpRow): Promise<TopUpError | undefined> {
  if (!gateway) return new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured');
  await em.execute(`update top_up set gateway_attempts = gateway_attempts + 1, updated_at = now() where id = ?`, [topUp.id]);
  try {
    const intent = await gateway.createPaymentIntent(
      {
        amount: BigInt(topUp.amount),
        currency: topUp.currency,
        description: `OneCard top-up of card ${maskCardNumber(topUp.card_number)}`,
        // The holder rides along, so a gateway that keeps payment methods per customer can check it is theirs.
        metadata: { topUpId: topUp.id, card: toGlobalId('Card', topUp.card_id), ...(topUp.holder_id ? { holder: topUp.holder_id } : {}) },
        ...(topUp.payment_method ? { paymentMethod: topUp.payment_method, confirm: true } : {}),
      },
      `topup:${topUp.id}`,
    );
    await applyIntent(em, topUp.id, intent, 'create');
    return undefined;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (err.kind === 'CARD_DECLINED') {
      if (err.paymentIntent) await applyIntent(em, topUp.id, err.paymentIntent, 'create');
      else await moveTo(em, topUp.id, 'FAILED', 'create', { failureCode: err.declineCode ?? err.code ?? 'card_declined', failureMessage: err.message });
      return new TopUpError('PAYMENT_DECLINED', `the gateway declined the payment: ${err.declineCode ?? err.code ?? 'declined'}`, 'paymentMethod');
    }
    if (err.kind === 'UNAVAILABLE') return new TopUpError('GATEWAY_UNAVAILABLE', 'the payment gateway did not answer; the top-up is kept and submitted again (retry with the same idempotency key to see it)');
    // The gateway refused the request itself (our key, our parameters): nothing will make it pass.
    await moveTo(em, topUp.id, 'FAILED', 'create', { failureCode: `gateway_${err.kind.toLowerCase()}`, failureMessage: err.message });
    return new TopUpError('GATEWAY_UNAVAILABLE', `the payment gateway refused the request: ${err.message}`);
  }
}

export const maskCardNumber = (number: string) => `**** ${number.slice(-4)}`;

// ——— state changes from the gateway ———

/** The status a payment intent means for its top-up, or null when it means no change. */
function statusOfIntent(intent: PaymentIntent): TopUpStatus | null {
  switch (intent.status) {
    case 'succeeded':
      return 'PAID';
    case 'canceled':
      return 'CANCELED';
    case 'requires_payment_method':
      return intent.last_payment_error ? 'FAILED' : 'AWAITING_PAYMENT';
    default:
      return 'AWAITING_PAYMENT';
  }
}

function sealIfPossible(topUpId: string, secret: string | null | undefined): string | null {
  try {
    return sealClientSecret(topUpId, secret);
  } catch {
    return null; // no key in this process: the app falls back to the payment page (paymentUrl)
  }
}

/**
 * Applies what the gateway says of a payment intent (create answer, webhook, poll) to its top-up,
 * once and forward only. PAID books the money: gateway clearing → the card company's pending loads.
 * Returns what happened, for the event log.
 */
export async function applyIntent(em: EntityManager, topUpId: string, intent: PaymentIntent, cause: string): Promise<'applied' | 'stale' | 'unknown' | 'mismatch'> {
  return em.transactional(async (tx) => {
    const topUp = await topUpById(tx, topUpId, true);
    if (!topUp) return 'unknown';
    if (topUp.gateway_intent_id && topUp.gateway_intent_id !== intent.id) return 'stale';
    // Never book what we did not ask for; answered (not retried forever) and left for a person.
    if (!Number.isSafeInteger(intent.amount) || BigInt(intent.amount) !== BigInt(topUp.amount) || String(intent.currency).toUpperCase() !== topUp.currency) return 'mismatch';
    // Sealed once, when first seen: a later answer (webhook, poll) needs no key, so a process that has
    // none (or a key that fails) still books a PAID intent; the secret is only worth its sealing while it awaits payment.
    const sealed = topUp.client_secret_sealed ?? sealIfPossible(topUp.id, intent.client_secret);
    await tx.execute(`update top_up set gateway_intent_id = ?, client_secret_sealed = ?, gateway_charge_id = coalesce(gateway_charge_id, ?), updated_at = now() where id = ?`, [intent.id, sealed, intent.latest_charge ?? null, topUp.id]);
    const to = statusOfIntent(intent);
    if (!to || to === topUp.status || !TOP_UP_TRANSITIONS[topUp.status].includes(to)) return 'stale';
    const failure = to === 'FAILED' ? { failureCode: intent.last_payment_error?.decline_code ?? intent.last_payment_error?.code ?? 'payment_failed', failureMessage: intent.last_payment_error?.message ?? null } : {};
    await moveTo(tx, topUp.id, to, cause, failure);
    return 'applied';
  });
}

/** Applies what the gateway says of a refund to its top-up: REFUNDED, or back to PAID with the refund's entry reversed. */
export async function applyRefund(em: EntityManager, topUpId: string, refund: Refund, cause: string): Promise<'applied' | 'stale' | 'unknown' | 'conflict'> {
  return em.transactional(async (tx) => {
    const topUp = await topUpById(tx, topUpId, true);
    if (!topUp) return 'unknown';
    const ours = topUp.status === 'REFUNDING' && (!refund.metadata?.attempt || refund.metadata.attempt === topUp.refund_attempt) && (!topUp.gateway_refund_id || topUp.gateway_refund_id === refund.id);
    if (!ours) {
      if (refund.status !== 'succeeded' || topUp.status === 'REFUNDED') return 'stale';
      // The gateway did refund after all (an attempt we took for refused): book it, unless the card
      // has the value already, which is money paid out twice and for a person to settle.
      if (topUp.status !== 'PAID' || topUp.load_session_id) return 'conflict';
      await startRefund(tx, topUp, randomUUID(), cause, refund.id);
      await moveTo(tx, topUp.id, 'REFUNDED', cause);
      return 'applied';
    }
    const to: TopUpStatus | null = refund.status === 'succeeded' ? 'REFUNDED' : refund.status === 'failed' || refund.status === 'canceled' ? 'PAID' : null;
    if (!to) return 'stale';
    await tx.execute(`update top_up set gateway_refund_id = coalesce(gateway_refund_id, ?) where id = ?`, [refund.id, topUp.id]);
    await setGatewayReference(tx, refundEntryKey(topUp, topUp.refund_attempt!), refund.id);
    await moveTo(tx, topUp.id, to, cause, to === 'PAID' ? { failureCode: refund.failure_reason ?? 'refund_failed', failureMessage: 'the gateway did not complete the refund' } : {});
    return 'applied';
  });
}

interface MoveDetail {
  failureCode?: string | null;
  failureMessage?: string | null;
  sessionId?: string;
  tac?: string;
}

/**
 * Moves a top-up (locked by the caller's transaction, or by this one) along TOP_UP_TRANSITIONS
 * with the ledger entry, timestamps, history row and outbox event that go with the move.
 */
export async function moveTo(em: EntityManager, topUpId: string, to: TopUpStatus, cause: string, detail: MoveDetail = {}): Promise<TopUpRow> {
  const run = async (tx: EntityManager) => {
    const topUp = (await topUpById(tx, topUpId, true))!;
    if (!TOP_UP_TRANSITIONS[topUp.status].includes(to)) throw new TopUpError('INVALID_INPUT', `a ${topUp.status} top-up cannot become ${to}`);
    const amount = BigInt(topUp.amount);
    if (to === 'PAID' && topUp.status !== 'REFUNDING') {
      const clearing = await gatewayClearingAccount(tx, topUp.currency);
      const pending = await pendingLoadAccount(tx, topUp.card_company_id, topUp.currency);
      await post(tx, { key: `top-up:${topUp.id}:paid`, description: `top-up of card ${maskCardNumber(topUp.card_number)} paid at the gateway`, lines: [debit(clearing.id, amount), credit(pending.id, amount)], metadata: { kind: 'TOP_UP_PAID', topUp: topUp.id, intent: topUp.gateway_intent_id } });
      await recordClearingItem(tx, { kind: 'TOP_UP', ...cardCompanyItem(topUp), amount, entryKey: `top-up:${topUp.id}:paid`, gatewayReference: topUp.gateway_charge_id ?? topUp.gateway_intent_id });
    }
    if (to === 'PAID' && topUp.status === 'REFUNDING') await reverseRefundEntry(tx, topUp);
    await tx.execute(
      `update top_up set status = ?, updated_at = now(),
              paid_at = case when ? = 'PAID' then coalesce(paid_at, now()) else paid_at end,
              loaded_at = case when ? = 'LOADED' then now() else loaded_at end,
              refunded_at = case when ? = 'REFUNDED' then now() else refunded_at end,
              loaded_session_id = coalesce(?, loaded_session_id),
              failure_code = coalesce(?, failure_code), failure_message = coalesce(?, failure_message)
        where id = ?`,
      [to, to, to, to, to === 'LOADED' ? (detail.sessionId ?? null) : null, detail.failureCode ?? null, detail.failureMessage ?? null, topUp.id],
    );
    await history(tx, topUp.id, topUp.status, to, cause);
    const event = EVENT_OF[to];
    if (event && !(to === 'PAID' && topUp.status === 'REFUNDING')) {
      await recordEvent(tx, { type: event, ownerKind: 'ISSUER', ownerId: topUp.card_company_id, subjectId: topUpGlobalId(topUp.id), payload: { topUp: topUpGlobalId(topUp.id), card: toGlobalId('Card', topUp.card_id), amount: Number(amount), currency: topUp.currency, status: to } });
    }
    return (await topUpById(tx, topUp.id))!;
  };
  return em.isInTransaction() ? run(em) : em.transactional(run);
}

const EVENT_OF: Partial<Record<TopUpStatus, string>> = { PAID: 'topup.paid', LOADED: 'topup.loaded', FAILED: 'topup.failed', CANCELED: 'topup.canceled', REFUNDED: 'topup.refunded' };

/** A top-up's clearing item belongs to its card company, in the card's city. */
const cardCompanyItem = (topUp: Pick<TopUpRow, 'id' | 'card_company_id' | 'currency'>) =>
  ({ participant: { kind: 'CARD_COMPANY', id: topUp.card_company_id }, cardCompanyId: topUp.card_company_id, currency: topUp.currency, reference: topUp.id }) as const;

const refundEntryKey = (topUp: Pick<TopUpRow, 'id'>, attempt: string) => `top-up:${topUp.id}:refund:${attempt}`;

/** A refund the gateway refused or failed: its entry is reversed and the top-up is PAID again, free for another refund or the card. */
async function reverseRefundEntry(em: EntityManager, topUp: TopUpRow): Promise<void> {
  const key = refundEntryKey(topUp, topUp.refund_attempt!);
  const [entry] = await em.execute<{ id: string }[]>(`select id from journal_entry where entry_key = ?`, [key]);
  if (entry) {
    await reverse(em, entry.id, { key: `${key}:failed`, description: `refund of top-up ${topUp.id} failed at the gateway`, metadata: { kind: 'TOP_UP_REFUND_FAILED', topUp: topUp.id } });
    await recordClearingItem(em, { kind: 'TOP_UP_REFUND_FAILED', ...cardCompanyItem(topUp), amount: BigInt(topUp.amount), entryKey: `${key}:failed`, gatewayReference: topUp.gateway_refund_id });
  }
  await em.execute(`update top_up set gateway_refund_id = null, refund_attempt = null where id = ?`, [topUp.id]);
}

// ——— refunds ———

/**
 * Refunds a paid top-up that is not on the card, through the gateway. The cardholder app may for
 * its card once the card can no longer be used (lost, blocked, replaced, expired); the card company
 * for any of its cards' paid top-ups. A top-up whose load was started (MAC2 issued) is refused:
 * the card may hold it, and only the card's next tap can tell.
 *
 * Resumable by `idempotencyKey` (the API's idempotency layer cannot hold a transaction over the
 * gateway call): the refund remembers the key that started it, so the same request again after a
 * crash finds it and carries on (asks the gateway again if it is still REFUNDING) instead of
 * refusing a top-up that is no longer PAID because of it.
 */
export async function refundTopUp(em: EntityManager, gateway: GatewayClient | null, principal: Principal, topUpId: string, idempotencyKey?: string): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  const refundKey = idempotencyKey ? `${principal.clientId}/${principal.holderId ?? ''}/${idempotencyKey}` : null;
  const claimed = await em.transactional(async (tx) => {
    const topUp = await findTopUpFor(tx, { ...principal, scopes: [...principal.scopes, 'cards:read', 'card:read'] }, topUpId);
    const mayRefund =
      topUp &&
      ((principal.kind === 'ISSUER' && principal.scopes.includes('topups:write')) || (principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup')) || (principal.kind === 'OPERATOR' && principal.scopes.includes('tenants:manage')));
    if (!topUp || !mayRefund) throw new TopUpError('NOT_FOUND', `no top-up ${topUpId} you may refund`, 'topUp');
    const locked = (await topUpById(tx, topUp.id, true))!;
    if (refundKey && locked.refund_key === refundKey) return locked; // this very request, after a crash: resumed below
    if (locked.status !== 'PAID') throw new TopUpError('NOT_REFUNDABLE', `a ${locked.status} top-up cannot be refunded`, 'topUp');
    if (locked.origin === 'TRANSFER' || locked.origin === 'REFUND') throw new TopUpError('NOT_REFUNDABLE', 'this pending load is not a gateway payment (a replaced card’s balance, or a merchant’s refund): it is loaded onto the card', 'topUp');
    if (locked.load_session_id) throw new TopUpError('NOT_REFUNDABLE', 'a load of this top-up was started on the card; present the card to a reader to settle it first', 'topUp');
    const [card] = await tx.execute<{ status: string }[]>(`select status from card where id = ?`, [locked.card_id]);
    if (principal.kind === 'CARDHOLDER_APP' && card!.status === 'ACTIVE') throw new TopUpError('NOT_REFUNDABLE', 'the card can still take the load: present it to a reader, or ask the card company', 'topUp');
    if (!gateway) throw new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured');
    return startRefund(tx, locked, randomUUID(), `refund by ${principal.clientId}`, null, refundKey);
  });
  // This request's refund ended REFUNDED (another refund would have written its own key), or is
  // still on its way; anything else (back to PAID, or loaded onto the card since) means the gateway
  // refused it, which was (and stays) its answer: never a success-looking one.
  if (claimed.status === 'REFUNDED') return { topUp: claimed };
  if (claimed.status !== 'REFUNDING') return { topUp: claimed, gatewayError: new TopUpError('NOT_REFUNDABLE', `the gateway refused the refund: ${claimed.failure_message ?? 'refused'}`, 'topUp') };
  await crashPoint('refund-started', 'refundTopUp');
  if (!gateway) return { topUp: claimed, gatewayError: new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured') };
  const gatewayError = await submitRefund(em, gateway, claimed);
  return { topUp: (await topUpById(em, claimed.id))!, gatewayError };
}

/**
 * A PAID top-up (locked by the caller) becomes REFUNDING under a new attempt: the value leaves the
 * pending loads now; a refund the gateway refuses puts it back (reversal).
 */
async function startRefund(tx: EntityManager, locked: TopUpRow, attempt: string, cause: string, gatewayRefundId: string | null = null, refundKey: string | null = null): Promise<TopUpRow> {
  await tx.execute(`update top_up set refund_attempt = ?, gateway_refund_id = ?, refund_key = ? where id = ?`, [attempt, gatewayRefundId, refundKey, locked.id]);
  const row = await moveTo(tx, locked.id, 'REFUNDING', cause);
  const pending = await pendingLoadAccount(tx, locked.card_company_id, locked.currency);
  const clearing = await gatewayClearingAccount(tx, locked.currency);
  await post(tx, { key: refundEntryKey(locked, attempt), description: `refund of top-up ${locked.id} through the gateway`, lines: [debit(pending.id, BigInt(locked.amount)), credit(clearing.id, BigInt(locked.amount))], metadata: { kind: 'TOP_UP_REFUND', topUp: locked.id } });
  await recordClearingItem(tx, { kind: 'TOP_UP_REFUND', ...cardCompanyItem(locked), amount: BigInt(locked.amount), entryKey: refundEntryKey(locked, attempt), gatewayReference: gatewayRefundId });
  return row;
}

/**
 * Sends a REFUNDING top-up's refund to the gateway (idempotent by the top-up's refund attempt), and
 * applies the answer. A gateway that does not answer leaves it REFUNDING for the job.
 */
export async function submitRefund(em: EntityManager, gateway: GatewayClient, topUp: TopUpRow): Promise<TopUpError | undefined> {
  const attempt = topUp.refund_attempt!;
  try {
    const refund = await gateway.createRefund({ paymentIntent: topUp.gateway_intent_id!, amount: BigInt(topUp.amount), metadata: { topUpId: topUp.id, attempt } }, `topup-refund:${topUp.id}:${attempt}`);
    await em.execute(`update top_up set gateway_refund_id = ? where id = ? and refund_attempt = ?`, [refund.id, topUp.id, attempt]);
    await setGatewayReference(em, refundEntryKey(topUp, attempt), refund.id);
    await applyRefund(em, topUp.id, refund, 'refund');
    return undefined;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    // No answer, or another request with this key still running (409): the refund may exist; the job asks again.
    if (err.kind === 'UNAVAILABLE' || err.code === 'charge_already_refunded') return new TopUpError('GATEWAY_UNAVAILABLE', 'the payment gateway did not answer; the refund is submitted again');
    // The gateway refused this very request (it did nothing): the value goes back to the pending loads,
    // unless another attempt has taken over meanwhile.
    await em.transactional(async (tx) => {
      const now = await topUpById(tx, topUp.id, true);
      if (now?.status === 'REFUNDING' && now.refund_attempt === attempt) await moveTo(tx, topUp.id, 'PAID', 'refund refused', { failureCode: `refund_${err.code ?? 'refused'}`, failureMessage: err.message });
    });
    return new TopUpError('NOT_REFUNDABLE', `the gateway refused the refund: ${err.message}`, 'topUp');
  }
}

import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { TopUpLimits } from '../config/config.js';
import { m1LoadLimitOf } from '../tenancy/tenancy.service.js';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';
import { crashPoint } from '../graphql/crash-point.js';
import { cardPurseBalance } from '../ledger/accounts.js';
import { type GatewayClient, GatewayError } from './gateway/gateway-client.js';
import { TopUpError } from './topups.errors.js';
import { walletBalances } from '../wallets/wallet-ledger.js';
import { findWalletFor, type WalletRow } from '../wallets/wallet-rows.js';
import type { ClientSecretSeal } from './client-secret.js';
import { applyIntent } from './gateway-answers.js';
import { moveTo, recordTopUpHistory } from './top-up-moves.js';
import { targetOf, topUpById, topUpByKey, type TopUpOrigin, type TopUpRow } from './top-up-rows.js';

/**
 * Top-up orders: the holder's app, the card company's counter or the auto top-up asks for a load;
 * the order is checked against the limits, recorded CREATED and sent to the payment gateway.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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
export async function createTopUp(em: EntityManager, deps: { gateway: GatewayClient | null; limits: TopUpLimits; clientSecrets: ClientSecretSeal | null }, principal: Principal, input: CreateTopUpInput): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  return orderTopUp(em, deps, principal, input, requestHash(input), 'createTopUp', async (tx, key, hash) => {
    const found = await cardToTopUp(tx, principal, input.cardId);
    if (!found) throw new TopUpError('NOT_FOUND', `no card ${input.cardId} you may top up`, 'card');
    // A saved payment method is the holder's: only the holder's app may charge it.
    if (found.origin !== 'APP' && input.paymentMethod != null) throw new TopUpError('FORBIDDEN_OPERATION', 'only the cardholder’s app charges a saved payment method; a counter top-up is paid at paymentUrl', 'paymentMethod');
    return insertTopUp(tx, found.card, deps.limits, {
      origin: found.origin,
      holderId: principal.kind === 'CARDHOLDER_APP' ? principal.holderId : found.card.holder_id,
      clientId: principal.clientId,
      idempotencyKey: key,
      hash,
      amount: input.amount,
      paymentMethod: input.paymentMethod ?? null,
    });
  });
}

export interface CreateWalletTopUpInput {
  walletId: string;
  amount: bigint;
  idempotencyKey: string;
  paymentMethod?: string | null;
}

/**
 * A top-up of the holder's transit wallet (issue 25): the same order, gateway, webhook and job as a
 * card's; once PAID the value is in the wallet at once (top-up-moves.ts), there is nothing to write
 * onto a chip. Only the holder's app asks for it (scope card:topup).
 */
export async function createWalletTopUp(em: EntityManager, deps: { gateway: GatewayClient | null; limits: TopUpLimits; clientSecrets: ClientSecretSeal | null }, principal: Principal, input: CreateWalletTopUpInput): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  const hash = createHash('sha256').update(JSON.stringify(['wallet', input.walletId, input.amount.toString(), input.paymentMethod ?? null])).digest('hex');
  return orderTopUp(em, deps, principal, input, hash, 'createWalletTopUp', async (tx, key) => {
    // Locked: one wallet's top-ups are created one at a time, so its limits hold under concurrency.
    const wallet = principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') ? await findWalletFor(tx, principal, input.walletId, true) : null;
    if (!wallet) throw new TopUpError('NOT_FOUND', `no transit wallet ${input.walletId} you may top up`, 'wallet');
    const day = await checkWalletLimits(tx, wallet, input.amount, deps.limits);
    const id = randomUUID();
    const [row] = await tx.execute<{ id: string }[]>(
      `insert into top_up (id, wallet_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, payment_method, city_day)
       values (?, ?, ?, 'APP', ?, ?, ?, ?, ?, ?, 'CREATED', ?, ?) on conflict (created_by_client, idempotency_key) do nothing returning id`,
      [id, wallet.id, wallet.card_company_id, wallet.holder_id, principal.clientId, key, hash, input.amount.toString(), wallet.currency, input.paymentMethod ?? null, day],
    );
    if (!row) return null;
    await recordTopUpHistory(tx, id, null, 'CREATED', 'create');
    return topUpById(tx, id);
  });
}

/** A wallet's limits are a card's: the amount, the day's total in its city, and the most it may hold (TOPUP_PURSE_MAX). */
async function checkWalletLimits(em: EntityManager, wallet: WalletRow, amount: bigint, limits: TopUpLimits): Promise<string> {
  if (amount < limits.min || amount > limits.max) throw new TopUpError('TOP_UP_AMOUNT_OUT_OF_RANGE', `a top-up is ${limits.min} to ${limits.max} minor units`, 'amount');
  const [today] = await em.execute<{ day: string; total: string; outstanding: string }[]>(
    `select (now() at time zone ?)::date::text as day,
            coalesce(sum(amount) filter (where city_day = (now() at time zone ?)::date and status not in ('FAILED','CANCELED','REFUNDED')), 0)::text as total,
            coalesce(sum(amount) filter (where status in ('CREATED','AWAITING_PAYMENT')), 0)::text as outstanding
       from top_up where wallet_id = ?`,
    [wallet.time_zone, wallet.time_zone, wallet.id],
  );
  if (BigInt(today!.total) + amount > limits.dailyMax) throw new TopUpError('DAILY_LIMIT_EXCEEDED', `the wallet has been topped up ${today!.total} today; the daily limit is ${limits.dailyMax}`, 'amount');
  // A paid top-up is in the wallet's balance already; only what is on its way is added.
  const { balance } = await walletBalances(em, wallet);
  if (balance + BigInt(today!.outstanding) + amount > limits.purseMax) throw new TopUpError('PURSE_LIMIT_EXCEEDED', `the wallet holds ${balance} with ${today!.outstanding} on its way; it holds at most ${limits.purseMax}`, 'amount');
  return today!.day;
}

/**
 * The order common to a card's and a wallet's top-up: the key checked, the top-up recorded by
 * `insert` (null when the key raced in first), then sent to the gateway outside the transaction.
 */
async function orderTopUp(
  em: EntityManager,
  deps: { gateway: GatewayClient | null; clientSecrets: ClientSecretSeal | null },
  principal: Principal,
  input: { idempotencyKey: string; paymentMethod?: string | null },
  hash: string,
  /** The mutation, for its crash point. */
  operation: 'createTopUp' | 'createWalletTopUp',
  insert: (tx: EntityManager, key: string, hash: string) => Promise<TopUpRow | null>,
): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  if (!/^[\x20-\x7e]{1,200}$/.test(input.idempotencyKey) || !input.idempotencyKey.trim()) throw new TopUpError('INVALID_INPUT', 'an idempotency key is 1 to 200 printable ASCII characters, not only spaces', 'idempotencyKey');
  if (input.paymentMethod != null && !/^pm_[A-Za-z0-9_]{1,100}$/.test(input.paymentMethod)) throw new TopUpError('INVALID_INPUT', 'a payment method is a gateway reference like pm_…', 'paymentMethod');
  // A cardholder app is one OAuth client for many holders: each holder has a key space of its own.
  const key = principal.kind === 'CARDHOLDER_APP' && principal.holderId ? `${principal.holderId}/${input.idempotencyKey}` : input.idempotencyKey;
  const created = await em.transactional(async (tx) => {
    // Two requests with one key wait on each other at this insert's unique index: never two top-ups.
    const existing = await topUpByKey(tx, principal.clientId, key);
    if (existing) return existing;
    const row = await insert(tx, key, hash);
    return row ?? (await topUpByKey(tx, principal.clientId, key))!;
  });
  if (created.request_hash !== hash) throw new TopUpError('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was used for another top-up request', 'idempotencyKey');
  if (created.status !== 'CREATED') return { topUp: created };
  await crashPoint('top-up-recorded', operation);
  const gatewayError = await submitToGateway(em, deps.gateway, created, deps.clientSecrets);
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

/**
 * An M1 card takes a top-up in one write script, which its card company limits (docs/cards.md,
 * "What an M1 card proves"): a larger top-up could never be written onto it, so it is refused here.
 */
async function checkM1TopUp(tx: EntityManager, card: CardForTopUp, amount: bigint): Promise<void> {
  const limit = await m1LoadLimitOf(tx, card.card_company_id);
  if (amount > limit) throw new TopUpError('TOP_UP_AMOUNT_OUT_OF_RANGE', `an M1 card takes at most ${limit} minor units in one load (its card company's limit)`, 'amount');
}

/** Inserts a CREATED top-up for a card locked by the caller, within the limits; null when the key raced in first. */
async function insertTopUp(tx: EntityManager, card: CardForTopUp, limits: TopUpLimits, t: NewTopUp): Promise<TopUpRow | null> {
  if (card.status !== 'ACTIVE') throw new TopUpError('CARD_NOT_USABLE', `the card is ${card.status}`, 'card');
  if (card.card_type === 'M1') await checkM1TopUp(tx, card, t.amount);
  const day = await checkLimits(tx, card, t.amount, limits);
  const id = randomUUID();
  const [row] = await tx.execute<{ id: string }[]>(
    `insert into top_up (id, card_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, payment_method, city_day)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'CREATED', ?, ?) on conflict (created_by_client, idempotency_key) do nothing returning id`,
    [id, card.id, card.card_company_id, t.origin, t.holderId, t.clientId, t.idempotencyKey, t.hash, t.amount.toString(), card.currency, t.paymentMethod, day],
  );
  if (!row) return null;
  await recordTopUpHistory(tx, id, null, 'CREATED', t.origin === 'AUTO' ? 'auto top-up' : 'create');
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

/**
 * Asks the gateway for the payment of a CREATED top-up (idempotent by the top-up id, so a retry by
 * the client or the job never charges twice). A saved payment method is charged at once. A gateway
 * that does not answer leaves the top-up CREATED for the job; the caller is told.
 */
export async function submitToGateway(em: EntityManager, gateway: GatewayClient | null, topUp: TopUpRow, clientSecrets: ClientSecretSeal | null): Promise<TopUpError | undefined> {
  if (!gateway) return new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured');
  await em.execute(`update top_up set gateway_attempts = gateway_attempts + 1, updated_at = now() where id = ?`, [topUp.id]);
  try {
    const intent = await gateway.createPaymentIntent(
      {
        amount: BigInt(topUp.amount),
        currency: topUp.currency,
        description: `OneCard top-up of ${targetOf(topUp)}`,
        // The holder rides along, so a gateway that keeps payment methods per customer can check it is theirs.
        metadata: { topUpId: topUp.id, ...(topUp.card_id ? { card: toGlobalId('Card', topUp.card_id) } : { wallet: toGlobalId('TransitWallet', topUp.wallet_id!) }), ...(topUp.holder_id ? { holder: topUp.holder_id } : {}) },
        ...(topUp.payment_method ? { paymentMethod: topUp.payment_method, confirm: true } : {}),
      },
      `topup:${topUp.id}`,
    );
    await applyIntent(em, topUp.id, intent, 'create', clientSecrets);
    return undefined;
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err;
    if (err.kind === 'CARD_DECLINED') {
      if (err.paymentIntent) await applyIntent(em, topUp.id, err.paymentIntent, 'create', clientSecrets);
      else await moveTo(em, topUp.id, 'FAILED', 'create', { failureCode: err.declineCode ?? err.code ?? 'card_declined', failureMessage: err.message });
      return new TopUpError('PAYMENT_DECLINED', `the gateway declined the payment: ${err.declineCode ?? err.code ?? 'declined'}`, 'paymentMethod');
    }
    if (err.kind === 'UNAVAILABLE') return new TopUpError('GATEWAY_UNAVAILABLE', 'the payment gateway did not answer; the top-up is kept and submitted again (retry with the same idempotency key to see it)');
    // The gateway refused the request itself (our key, our parameters): nothing will make it pass.
    await moveTo(em, topUp.id, 'FAILED', 'create', { failureCode: `gateway_${err.kind.toLowerCase()}`, failureMessage: err.message });
    return new TopUpError('GATEWAY_UNAVAILABLE', `the payment gateway refused the request: ${err.message}`);
  }
}

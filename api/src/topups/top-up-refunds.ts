import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { crashPoint } from '../graphql/crash-point.js';
import { setGatewayReference } from '../settlement/clearing-items.js';
import { type GatewayClient, GatewayError } from './gateway/gateway-client.js';
import { TopUpError } from './topups.errors.js';
import { walletBalances } from '../wallets/wallet-ledger.js';
import { walletById } from '../wallets/wallet-rows.js';
import { applyRefund } from './gateway-answers.js';
import { moveTo, refundEntryKey, startRefund } from './top-up-moves.js';
import { findTopUpFor, topUpById, type TopUpRow } from './top-up-rows.js';

/**
 * Refunds of paid top-ups that are not on the card, through the gateway, resumable by their
 * idempotency key; the gateway's answer is applied by gateway-answers.ts.
 */

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
export async function refundTopUp(em: EntityManager, gateway: GatewayClient | null, principal: Principal, topUpId: string, idempotencyKey?: string, target: 'CARD' | 'WALLET' = 'CARD'): Promise<{ topUp: TopUpRow; gatewayError?: TopUpError }> {
  const refundKey = idempotencyKey ? `${principal.clientId}/${principal.holderId ?? ''}/${idempotencyKey}` : null;
  const claimed = await em.transactional(async (tx) => {
    const topUp = await findTopUpFor(tx, { ...principal, scopes: [...principal.scopes, 'cards:read', 'card:read'] }, topUpId, target);
    const mayRefund =
      topUp &&
      ((principal.kind === 'ISSUER' && principal.scopes.includes('topups:write')) || (principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup')) || (principal.kind === 'OPERATOR' && principal.scopes.includes('tenants:manage')));
    if (!topUp || !mayRefund) throw new TopUpError('NOT_FOUND', `no top-up ${topUpId} you may refund`, 'topUp');
    const locked = (await topUpById(tx, topUp.id, true))!;
    if (refundKey && locked.refund_key === refundKey) return locked; // this very request, after a crash: resumed below
    if (locked.status !== 'PAID') throw new TopUpError('NOT_REFUNDABLE', `a ${locked.status} top-up cannot be refunded`, 'topUp');
    if (locked.origin === 'TRANSFER' || locked.origin === 'REFUND') throw new TopUpError('NOT_REFUNDABLE', 'this pending load is not a gateway payment (a replaced card’s balance, or a merchant’s refund): it is loaded onto the card', 'topUp');
    if (locked.load_session_id) throw new TopUpError('NOT_REFUNDABLE', 'a load of this top-up was started on the card; present the card to a reader to settle it first', 'topUp');
    // A wallet's holder may take back what the wallet still holds at any time (the ledger refuses what rides spent).
    const [card] = locked.card_id ? await tx.execute<{ status: string }[]>(`select status from card where id = ?`, [locked.card_id]) : [];
    if (principal.kind === 'CARDHOLDER_APP' && card?.status === 'ACTIVE') throw new TopUpError('NOT_REFUNDABLE', 'the card can still take the load: present it to a reader, or ask the card company', 'topUp');
    if (locked.wallet_id) {
      const { balance } = await walletBalances(tx, (await walletById(tx, locked.wallet_id, true))!);
      if (balance < BigInt(locked.amount)) throw new TopUpError('NOT_REFUNDABLE', `the wallet holds ${balance}: rides spent part of this top-up, which can no longer be refunded whole`, 'topUp');
    }
    if (!gateway) throw new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured');
    return startRefund(tx, locked, randomUUID(), `refund by ${principal.clientId}`, null, refundKey);
  });
  // This request's refund ended REFUNDED (another refund would have written its own key), or is
  // still on its way; anything else (back to PAID, or loaded onto the card since) means the gateway
  // refused it, which was (and stays) its answer: never a success-looking one.
  if (claimed.status === 'REFUNDED') return { topUp: claimed };
  if (claimed.status !== 'REFUNDING') return { topUp: claimed, gatewayError: new TopUpError('NOT_REFUNDABLE', `the gateway refused the refund: ${claimed.failure_message ?? 'refused'}`, 'topUp') };
  await crashPoint('refund-started', target === 'CARD' ? 'refundTopUp' : 'refundWalletTopUp');
  if (!gateway) return { topUp: claimed, gatewayError: new TopUpError('GATEWAY_UNAVAILABLE', 'no payment gateway is configured') };
  const gatewayError = await submitRefund(em, gateway, claimed);
  return { topUp: (await topUpById(em, claimed.id))!, gatewayError };
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

import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { setGatewayReference } from '../settlement/clearing-items.js';
import { canMove } from '../lifecycle/machine.js';
import type { PaymentIntent, Refund } from './gateway/gateway-client.js';
import type { ClientSecretSeal } from './client-secret.js';
import { moveTo, refundEntryKey, startRefund, topUpMachine } from './top-up-moves.js';
import { topUpById, type TopUpStatus } from './top-up-rows.js';
import { walletBalances } from '../wallets/wallet-ledger.js';
import { walletById } from '../wallets/wallet-rows.js';

/** Whether a wallet (its row locked until the caller commits) still holds `amount`: rides may have spent a top-up's value. */
async function walletStillHolds(tx: EntityManager, walletId: string, amount: bigint): Promise<boolean> {
  const wallet = (await walletById(tx, walletId, true))!;
  return (await walletBalances(tx, wallet)).balance >= amount;
}

/**
 * What the payment gateway says of a top-up's payment intent or refund (its answer to our call, a
 * signed webhook, the job's poll), applied once and forward only.
 */

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

function sealIfPossible(clientSecrets: ClientSecretSeal | null, topUpId: string, secret: string | null | undefined): string | null {
  if (!clientSecrets) return null; // no key handed in: the app falls back to the payment page (paymentUrl)
  try {
    return clientSecrets.seal(topUpId, secret);
  } catch {
    return null; // a key that fails: the same fallback
  }
}

/**
 * Applies what the gateway says of a payment intent (create answer, webhook, poll) to its top-up,
 * once and forward only. PAID books the money: gateway clearing → the card company's pending loads.
 * Returns what happened, for the event log.
 */
export async function applyIntent(em: EntityManager, topUpId: string, intent: PaymentIntent, cause: string, clientSecrets: ClientSecretSeal | null): Promise<'applied' | 'stale' | 'unknown' | 'mismatch'> {
  return em.transactional(async (tx) => {
    const topUp = await topUpById(tx, topUpId, true);
    if (!topUp) return 'unknown';
    if (topUp.gateway_intent_id && topUp.gateway_intent_id !== intent.id) return 'stale';
    // Never book what we did not ask for; answered (not retried forever) and left for a person.
    if (!Number.isSafeInteger(intent.amount) || BigInt(intent.amount) !== BigInt(topUp.amount) || String(intent.currency).toUpperCase() !== topUp.currency) return 'mismatch';
    // Sealed once, when first seen: a later answer (webhook, poll) needs no key, so a process that has
    // none (or a key that fails) still books a PAID intent; the secret is only worth its sealing while it awaits payment.
    const sealed = topUp.client_secret_sealed ?? sealIfPossible(clientSecrets, topUp.id, intent.client_secret);
    await tx.execute(`update top_up set gateway_intent_id = ?, client_secret_sealed = ?, gateway_charge_id = coalesce(gateway_charge_id, ?), updated_at = now() where id = ?`, [intent.id, sealed, intent.latest_charge ?? null, topUp.id]);
    const to = statusOfIntent(intent);
    if (!to || to === topUp.status || !canMove(topUpMachine, topUp.status, to)) return 'stale';
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
      // has the value already or rides spent what the wallet got, which is money paid out twice and
      // for a person to settle (answered, not retried forever).
      if (topUp.status !== 'PAID' || topUp.load_session_id) return 'conflict';
      if (topUp.wallet_id && !(await walletStillHolds(tx, topUp.wallet_id, BigInt(topUp.amount)))) return 'conflict';
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

import type { EntityManager } from '@mikro-orm/postgresql';
import { toGlobalId } from '../graphql/global-id.js';
import { credit, debit, post, reverse } from '../ledger/ledger.service.js';
import { gatewayClearingAccount, pendingLoadAccount } from '../ledger/accounts.js';
import { assertMove, defineMachine, type Move, NOW, type Patch, sql, transition } from '../lifecycle/machine.js';
import { recordClearingItem } from '../settlement/clearing-items.js';
import { recordEvent } from '../webhooks/outbox.js';
import { TopUpError } from './topups.errors.js';
import { postWalletRefund, postWalletTopUp } from '../wallets/wallet-ledger.js';
import { walletById } from '../wallets/wallet-rows.js';
import { targetOf, topUpById, topUpGlobalId, type TopUpRow, type TopUpStatus } from './top-up-rows.js';

/**
 * The top-up lifecycle: its table, its machine (lifecycle/machine.ts) and `moveTo`, with the ledger
 * entry, clearing item, history row and outbox event each move brings; starting a refund.
 */

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

export async function recordTopUpHistory(em: EntityManager, topUpId: string, from: TopUpStatus | null, to: TopUpStatus, cause: string): Promise<void> {
  await em.execute(`insert into top_up_history (top_up_id, from_status, to_status, cause) values (?, ?, ?, ?)`, [topUpId, from, to, cause]);
}

export interface MoveDetail {
  failureCode?: string | null;
  failureMessage?: string | null;
  sessionId?: string;
  tac?: string;
}

/** What entering a state announces to the card company. */
const EVENT_OF: Partial<Record<TopUpStatus, string>> = { PAID: 'topup.paid', LOADED: 'topup.loaded', FAILED: 'topup.failed', CANCELED: 'topup.canceled', REFUNDED: 'topup.refunded' };

/**
 * The top-up lifecycle (lifecycle/machine.ts). Top-ups keep their own history, top_up_history (its
 * `cause`: the create call, a gateway event id, a poll, a card session), which topUpHistory shows;
 * entering PAID, LOADED, FAILED, CANCELED or REFUNDED tells the card company (outbox), except a
 * refund the gateway refused (REFUNDING → PAID: the top-up was announced PAID already).
 */
export const topUpMachine = defineMachine<TopUpStatus, TopUpRow>({
  name: 'top_up',
  table: 'top_up',
  initial: ['CREATED', 'PAID'],
  transitions: TOP_UP_TRANSITIONS,
  refuse: (from, to) => new TopUpError('INVALID_INPUT', `a ${from} top-up cannot become ${to}`),
  reload: async (em, id) => (await topUpById(em, id))!,
  history: (em, move) => recordTopUpHistory(em, move.id, move.from, move.to, move.cause ?? ''),
  onEnter: Object.fromEntries(
    Object.entries(EVENT_OF).map(([state, type]) => [
      state,
      async (em: EntityManager, topUp: TopUpRow, move: Move<TopUpStatus>) => {
        if (move.to === 'PAID' && move.from === 'REFUNDING') return;
        await recordEvent(em, { type: type!, ownerKind: 'ISSUER', ownerId: topUp.card_company_id, subjectId: topUpGlobalId(topUp.id), payload: { topUp: topUpGlobalId(topUp.id), ...(topUp.card_id ? { card: toGlobalId('Card', topUp.card_id) } : { wallet: toGlobalId('TransitWallet', topUp.wallet_id!) }), amount: Number(topUp.amount), currency: topUp.currency, status: move.to } });
      },
    ]),
  ),
});

/**
 * Moves a top-up (locked by the caller's transaction, or by this one) along TOP_UP_TRANSITIONS
 * with the ledger entry, timestamps, history row and outbox event that go with the move.
 */
export async function moveTo(em: EntityManager, topUpId: string, to: TopUpStatus, cause: string, detail: MoveDetail = {}): Promise<TopUpRow> {
  const run = async (tx: EntityManager) => {
    const topUp = (await topUpById(tx, topUpId, true))!;
    assertMove(topUpMachine, topUp.status, to);
    const amount = BigInt(topUp.amount);
    if (to === 'PAID' && topUp.status !== 'REFUNDING') {
      const clearing = await gatewayClearingAccount(tx, topUp.currency);
      const entry = { key: `top-up:${topUp.id}:paid`, description: `top-up of ${targetOf(topUp)} paid at the gateway`, metadata: { kind: 'TOP_UP_PAID', topUp: topUp.id, intent: topUp.gateway_intent_id } };
      if (topUp.wallet_id) {
        // A wallet has no chip to write: the value is the holder's at once, less any ride debt it clears.
        await postWalletTopUp(tx, (await walletById(tx, topUp.wallet_id, true))!, { ...entry, sourceAccountId: clearing.id, amount });
      } else {
        const pending = await pendingLoadAccount(tx, topUp.card_company_id, topUp.currency);
        await post(tx, { ...entry, lines: [debit(clearing.id, amount), credit(pending.id, amount)] });
      }
      await recordClearingItem(tx, { kind: 'TOP_UP', ...cardCompanyItem(topUp), amount, entryKey: `top-up:${topUp.id}:paid`, gatewayReference: topUp.gateway_charge_id ?? topUp.gateway_intent_id });
    }
    if (to === 'PAID' && topUp.status === 'REFUNDING') await reverseRefundEntry(tx, topUp);
    const patch: Patch = {
      updated_at: NOW,
      loaded_session_id: sql('coalesce(?, loaded_session_id)', to === 'LOADED' ? (detail.sessionId ?? null) : null),
      failure_code: sql('coalesce(?, failure_code)', detail.failureCode ?? null),
      failure_message: sql('coalesce(?, failure_message)', detail.failureMessage ?? null),
    };
    if (to === 'PAID') patch.paid_at = sql('coalesce(paid_at, now())');
    if (to === 'LOADED') patch.loaded_at = NOW;
    if (to === 'REFUNDED') patch.refunded_at = NOW;
    return transition(tx, topUpMachine, topUp, to, patch, { cause });
  };
  return em.isInTransaction() ? run(em) : em.transactional(run);
}

/** A top-up's clearing item belongs to its card company, in the card's city. */
const cardCompanyItem = (topUp: Pick<TopUpRow, 'id' | 'card_company_id' | 'currency'>) =>
  ({ participant: { kind: 'CARD_COMPANY', id: topUp.card_company_id }, cardCompanyId: topUp.card_company_id, currency: topUp.currency, reference: topUp.id }) as const;

export const refundEntryKey = (topUp: Pick<TopUpRow, 'id'>, attempt: string) => `top-up:${topUp.id}:refund:${attempt}`;

/** A refund the gateway refused or failed: its entry is reversed and the top-up is PAID again, free for another refund or the card. */
async function reverseRefundEntry(em: EntityManager, topUp: TopUpRow): Promise<void> {
  const key = refundEntryKey(topUp, topUp.refund_attempt!);
  const [entry] = await em.execute<{ id: string }[]>(`select entry_id as id from journal_entry_key where entry_key = ?`, [key]);
  if (entry) {
    const failed = { key: `${key}:failed`, description: `refund of top-up ${topUp.id} failed at the gateway`, metadata: { kind: 'TOP_UP_REFUND_FAILED', topUp: topUp.id } };
    // A wallet's value comes back as a top-up's does (debt first): rides may have run up debt since it left.
    if (topUp.wallet_id) await postWalletTopUp(em, (await walletById(em, topUp.wallet_id, true))!, { ...failed, sourceAccountId: (await gatewayClearingAccount(em, topUp.currency)).id, amount: BigInt(topUp.amount) });
    else await reverse(em, entry.id, failed);
    await recordClearingItem(em, { kind: 'TOP_UP_REFUND_FAILED', ...cardCompanyItem(topUp), amount: BigInt(topUp.amount), entryKey: `${key}:failed`, gatewayReference: topUp.gateway_refund_id });
  }
  await em.execute(`update top_up set gateway_refund_id = null, refund_attempt = null where id = ?`, [topUp.id]);
}

/**
 * A PAID top-up (locked by the caller) becomes REFUNDING under a new attempt: the value leaves the
 * pending loads now; a refund the gateway refuses puts it back (reversal).
 */
export async function startRefund(tx: EntityManager, locked: TopUpRow, attempt: string, cause: string, gatewayRefundId: string | null = null, refundKey: string | null = null): Promise<TopUpRow> {
  await tx.execute(`update top_up set refund_attempt = ?, gateway_refund_id = ?, refund_key = ? where id = ?`, [attempt, gatewayRefundId, refundKey, locked.id]);
  const row = await moveTo(tx, locked.id, 'REFUNDING', cause);
  const clearing = await gatewayClearingAccount(tx, locked.currency);
  const entry = { key: refundEntryKey(locked, attempt), description: `refund of top-up ${locked.id} through the gateway`, metadata: { kind: 'TOP_UP_REFUND', topUp: locked.id } };
  if (locked.wallet_id) {
    // Out of the wallet: refused INSUFFICIENT_FUNDS (the ledger's non-negative guard) when rides spent it.
    await postWalletRefund(tx, (await walletById(tx, locked.wallet_id, true))!, { ...entry, destinationAccountId: clearing.id, amount: BigInt(locked.amount) });
  } else {
    const pending = await pendingLoadAccount(tx, locked.card_company_id, locked.currency);
    await post(tx, { ...entry, lines: [debit(pending.id, BigInt(locked.amount)), credit(clearing.id, BigInt(locked.amount))] });
  }
  await recordClearingItem(tx, { kind: 'TOP_UP_REFUND', ...cardCompanyItem(locked), amount: BigInt(locked.amount), entryKey: refundEntryKey(locked, attempt), gatewayReference: gatewayRefundId });
  return row;
}

import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { credit, debit, post, type PostedEntry } from '../ledger/ledger.service.js';
import { cardPurseAccount, pendingLoadAccount } from '../ledger/accounts.js';
import { TopUpError } from './topups.errors.js';
import { moveTo, recordTopUpHistory } from './top-up-moves.js';
import type { TopUpRow } from './top-up-rows.js';

/**
 * Pending loads that did not come through the gateway (a replaced card's balance, a merchant's
 * refund), recorded PAID for the card's next tap (补登); a paid top-up spent on a bill instead; a
 * replaced card's pending loads following the holder.
 */

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
  const client = t.origin === 'TRANSFER' ? BALANCE_TRANSFER_CLIENT : REFUND_CLIENT;
  // One statement (issue 20: a round trip fewer on every refund): the card in use at the end of the
  // replacement chain, locked, its PAID top-up and that top-up's history row. On conflict nothing: a
  // concurrent recording of the same key waits here for the first's commit, then answers its
  // top-up (a unique violation otherwise; the entry's key is booked last).
  // The lock (`for share`, against replaceCard's `for update`) keeps a replacement from committing
  // between this read of the chain and the top-up landing on its card: movePendingLoads would have
  // run before the top-up existed and left it on the REPLACED card. A replacement that committed
  // while this waited leaves `locked` empty (the card's row is checked again after the wait); the
  // next statement, in a newer snapshot, follows the chain to the new card.
  let target: { card_id: string; card_company_id: string; top_up_id: string | null; in_use: boolean } | undefined;
  for (let attempt = 1; ; attempt++) {
    [target] = await tx.execute<{ card_id: string; card_company_id: string; top_up_id: string | null; in_use: boolean }[]>(
      `with recursive chain as (
         select c.id, c.replaced_by, c.card_company_id, c.holder_id from card c where c.id = ?
         union all select n.id, n.replaced_by, n.card_company_id, n.holder_id from card n join chain on n.id = chain.replaced_by
       ),
       target as (
         select chain.id, chain.card_company_id, chain.holder_id, ci.time_zone
           from chain join card_company cc on cc.id = chain.card_company_id join city ci on ci.id = cc.city_id
          where chain.replaced_by is null
       ),
       locked as (
         select c.id from card c where c.id = (select id from target) and c.replaced_by is null for share of c
       ),
       inserted as (
         insert into top_up (id, card_id, card_company_id, origin, holder_id, created_by_client, idempotency_key, request_hash, amount, currency, status, city_day, paid_at)
         select ?, target.id, target.card_company_id, ?, target.holder_id, ?, ?, ?, ?, ?, 'PAID', (now() at time zone target.time_zone)::date, now() from target join locked on locked.id = target.id
         on conflict (created_by_client, idempotency_key) do nothing
         returning id
       ),
       history as (
         insert into top_up_history (top_up_id, from_status, to_status, cause) select id, null, 'PAID', ? from inserted
       )
       select target.id as card_id, target.card_company_id, (select id from inserted) as top_up_id, exists (select 1 from locked) as in_use from target`,
      [t.cardId, randomUUID(), t.origin, client, t.key, t.origin.toLowerCase(), t.amount.toString(), t.currency, t.cause],
    );
    if (!target || target.in_use) break;
    // Replaced again and again while this waited: not a state a card company produces.
    if (attempt === 3) throw new Error(`card ${t.cardId} was replaced while pending load ${t.key} was recorded, three times over`);
  }
  if (!target) throw new Error(`no card ${t.cardId} (or its replacement) to record pending load ${t.key} for`);
  const pending = await pendingLoadAccount(tx, target.card_company_id, t.currency);
  // The ledger entry last: the card company's pending loads is one row that every refund and
  // transfer of its cards locks until its transaction ends (issue 20: held for the fewest statements).
  const entry = () => post(tx, { key: t.key, description: t.description, lines: [debit(t.fromAccountId, t.amount), credit(pending.id, t.amount)], metadata: { ...t.metadata, toCard: target.card_id } });
  if (target.top_up_id) return { topUpId: target.top_up_id, entry: await entry() };
  const [existing] = await tx.execute<{ id: string }[]>(`select id from top_up where created_by_client = ? and idempotency_key = ?`, [client, t.key]);
  return { topUpId: existing!.id, entry: await entry() };
}

/**
 * A PAID top-up (locked by the caller) spent on something else than the card, in the caller's
 * transaction: its value leaves the card company's pending loads for `toAccountId` (e.g. a biller's
 * payable), and the top-up is SPENT. A load that was started on the card (MAC2 issued) cannot be, nor
 * a transit wallet's top-up.
 */
export async function spendTopUp(tx: EntityManager, topUp: TopUpRow, spend: { toAccountId: string; key: string; description: string; metadata: Record<string, unknown>; spentOn: string }): Promise<TopUpRow> {
  if (topUp.status !== 'PAID') throw new TopUpError('NOT_REFUNDABLE', `a ${topUp.status} top-up cannot be spent`, 'fromTopUp');
  // A wallet top-up's value is in the wallet, not the pending loads this entry would take it from.
  if (topUp.wallet_id) throw new TopUpError('NOT_REFUNDABLE', 'a transit wallet top-up is in the wallet: rides spend it', 'fromTopUp');
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
  for (const { id } of moved) await recordTopUpHistory(tx, id, 'PAID', 'PAID', `moved to replacement card ${toCardId}`);
  return moved.length;
}

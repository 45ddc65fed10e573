import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { transitWalletCode, walletDebtCode } from '../ledger/accounts.js';
import { WalletError } from './wallets.errors.js';
import { walletBalances } from './wallet-ledger.js';
import { blockWalletCredentials } from './qr-credentials.js';
import { findWalletFor, openWalletRow, walletOfHolder, type WalletRow } from './wallet-rows.js';

/**
 * Transit wallets (交通钱包, issue 25 item 1): opened by the holder's app with a card company, funded
 * by top-ups through the gateway (topups/top-up-orders.ts, createWalletTopUp), spent by QR-code
 * rides (qr-ride-batches.ts), refundable (refundTopUp with a wallet target). Money only through post().
 */

export { findWalletFor, walletBalances, type WalletRow };

/** Opens the calling holder's wallet with a card company (the one already open, if any). */
export async function openWallet(em: EntityManager, principal: Principal, cardCompanyId: string): Promise<WalletRow> {
  if (principal.kind !== 'CARDHOLDER_APP' || !principal.holderId) throw new WalletError('NOT_FOUND', 'only a cardholder app opens a transit wallet, for its holder', 'cardCompany');
  const wallet = await openWalletRow(em, principal.holderId, cardCompanyId);
  if (!wallet) throw new WalletError('NOT_FOUND', `no card company ${cardCompanyId}`, 'cardCompany');
  return wallet;
}

/** The calling holder's wallet with a card company, if open. */
export async function holderWallet(em: EntityManager, principal: Principal, cardCompanyId: string): Promise<WalletRow | null> {
  if (principal.kind !== 'CARDHOLDER_APP' || !principal.holderId) return null;
  return walletOfHolder(em, principal.holderId, cardCompanyId);
}

export interface WalletEntryRow {
  entry_id: string;
  posted_at: Date;
  /** posted_at to the microsecond, for the cursor (a Date keeps milliseconds). */
  posted_key: string;
  description: string;
  kind: string | null;
  /** Signed change of the wallet's balance (a top-up +, a ride or refund −) and of its debt. */
  balance_change: string;
  debt_change: string;
}

/**
 * A wallet's history, newest first: one row per journal entry that touched its balance or its debt
 * (top-ups, rides, refunds), read from the ledger's postings; keyset on (posted_at, entry id).
 */
export function walletHistory(em: EntityManager, wallet: Pick<WalletRow, 'id' | 'currency'>, opts: { after?: { postedAt: string; id: string }; limit: number }): Promise<WalletEntryRow[]> {
  const codes = [transitWalletCode(wallet.id, wallet.currency), walletDebtCode(wallet.id, wallet.currency)];
  const params: unknown[] = [...codes, ...codes];
  let sql = `select e.id as entry_id, e.posted_at, e.posted_at::text as posted_key, e.description, e.metadata->>'kind' as kind,
                    coalesce(-sum(p.amount) filter (where a.code = ?), 0)::text as balance_change,
                    coalesce(sum(p.amount) filter (where a.code = ?), 0)::text as debt_change
               from posting p join ledger_account a on a.id = p.account_id join journal_entry e on e.id = p.entry_id and e.posted_at = p.posted_at
              where a.code in (?, ?)`;
  if (opts.after) {
    sql += ` and (e.posted_at, e.id) < (?::timestamptz, ?::uuid)`;
    params.push(opts.after.postedAt, opts.after.id);
  }
  sql += ` group by e.id, e.posted_at order by e.posted_at desc, e.id desc limit ?`;
  params.push(opts.limit);
  return em.execute<WalletEntryRow[]>(sql, params);
}

/** The highest debt limit a card company may give a wallet: 100.00, a few days of rides. */
export const MAX_DEBT_LIMIT = 10_000n;

/**
 * Sets how far rides may run a wallet into debt (the card company, scope topups:write, for its own
 * wallets). With the wallet's row locked, as rides and top-ups take it: a ride booked at the same
 * time is judged by the old limit or the new one, never by half of each. A limit at or below what
 * the wallet owes already leaves the debt as it is, refuses its rides until a top-up clears it, and
 * blocks its live credentials.
 */
export async function setWalletDebtLimit(em: EntityManager, principal: Principal, input: { walletId: string; debtLimit: bigint }): Promise<WalletRow> {
  if (input.debtLimit < 0n || input.debtLimit > MAX_DEBT_LIMIT) throw new WalletError('INVALID_INPUT', `a debt limit is 0 to ${MAX_DEBT_LIMIT} minor units`, 'debtLimit');
  return em.transactional(async (tx) => {
    const may = principal.kind === 'ISSUER' && principal.scopes.includes('topups:write');
    const wallet = may ? await findWalletFor(tx, principal, input.walletId, true) : null;
    if (!wallet) throw new WalletError('NOT_FOUND', `no transit wallet ${input.walletId} of your card company`, 'wallet');
    await tx.execute(`update transit_wallet set debt_limit = ? where id = ?`, [input.debtLimit.toString(), wallet.id]);
    // At or past the new limit, every ride is refused: its credentials go on the blocklist now, as when
    // rides reach the limit, so scanners turn the rider away instead of carrying rides nobody pays.
    const { debt } = await walletBalances(tx, wallet);
    if (debt > 0n && debt >= input.debtLimit) await blockWalletCredentials(tx, wallet.id, `its debt ${debt} is at or above the limit set now, ${input.debtLimit}`, new Date());
    return { ...wallet, debt_limit: input.debtLimit.toString() };
  });
}

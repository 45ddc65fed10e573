import type { EntityManager } from '@mikro-orm/postgresql';
import { transitWalletAccount, transitWalletCode, walletDebtAccount, walletDebtCode } from '../ledger/accounts.js';
import { credit, debit, type PostedEntry, post } from '../ledger/ledger.service.js';
import type { WalletRow } from './wallet-rows.js';

/**
 * A wallet's money, all through the one `post()` (docs/ledger.md): its balance (a non-negative
 * liability) and its debt (a non-negative asset: rides the balance did not cover). The caller holds
 * the wallet's row lock (walletById(…, true)), so the debt limit holds under concurrency: the
 * balances read here cannot change before the entry is posted.
 */

export interface WalletBalances {
  balance: bigint;
  debt: bigint;
}

/** What a wallet holds and owes now (0 for accounts not opened yet); reads, opens nothing. */
export async function walletBalances(em: EntityManager, wallet: Pick<WalletRow, 'id' | 'currency'>): Promise<WalletBalances> {
  const codes = [transitWalletCode(wallet.id, wallet.currency), walletDebtCode(wallet.id, wallet.currency)];
  const rows = await em.execute<{ code: string; balance: string }[]>(`select code, balance::text as balance from ledger_account where code in (?, ?)`, codes);
  const of = (code: string) => BigInt(rows.find((r) => r.code === code)?.balance ?? '0');
  return { balance: of(codes[0]!), debt: of(codes[1]!) };
}

/**
 * A paid top-up into the wallet: `source` (the gateway clearing account) → the wallet, less
 * what the holder owes for rides, which the same entry clears (debt first: the next top-up clears it).
 */
export async function postWalletTopUp(tx: EntityManager, wallet: WalletRow, t: { sourceAccountId: string; amount: bigint; key: string; description: string; metadata: Record<string, unknown> }): Promise<PostedEntry> {
  const { debt } = await walletBalances(tx, wallet);
  const clears = debt < t.amount ? debt : t.amount;
  const account = await transitWalletAccount(tx, wallet.id, wallet.currency);
  const lines = [debit(t.sourceAccountId, t.amount)];
  if (t.amount - clears > 0n) lines.push(credit(account.id, t.amount - clears));
  if (clears > 0n) lines.push(credit((await walletDebtAccount(tx, wallet.id, wallet.currency)).id, clears));
  return post(tx, { key: t.key, description: t.description, lines, metadata: { ...t.metadata, debtCleared: clears.toString() } });
}

/** The wallet → `destination` (the gateway clearing account): a refund; refused INSUFFICIENT_FUNDS when the wallet no longer holds it. */
export async function postWalletRefund(tx: EntityManager, wallet: WalletRow, t: { destinationAccountId: string; amount: bigint; key: string; description: string; metadata: Record<string, unknown> }): Promise<PostedEntry> {
  const account = await transitWalletAccount(tx, wallet.id, wallet.currency);
  return post(tx, { key: t.key, description: t.description, lines: [debit(account.id, t.amount), credit(t.destinationAccountId, t.amount)], metadata: t.metadata });
}

export type RideDebit = { entry: PostedEntry; fromWallet: bigint; asDebt: bigint } | { overLimit: { debt: bigint; limit: bigint } };

/**
 * A ride's fare: from the wallet as far as it goes, the rest as debt while the debt stays within
 * the wallet's limit; past it, nothing is posted (the caller records the refusal).
 */
export async function postRideFare(tx: EntityManager, wallet: WalletRow, t: { payableAccountId: string; amount: bigint; key: string; description: string; metadata: Record<string, unknown> }): Promise<RideDebit> {
  const { balance, debt } = await walletBalances(tx, wallet);
  const fromWallet = balance < t.amount ? balance : t.amount;
  const asDebt = t.amount - fromWallet;
  const limit = BigInt(wallet.debt_limit);
  if (debt + asDebt > limit) return { overLimit: { debt, limit } };
  const lines = [];
  if (fromWallet > 0n) lines.push(debit((await transitWalletAccount(tx, wallet.id, wallet.currency)).id, fromWallet));
  if (asDebt > 0n) lines.push(debit((await walletDebtAccount(tx, wallet.id, wallet.currency)).id, asDebt));
  lines.push(credit(t.payableAccountId, t.amount));
  const entry = await post(tx, { key: t.key, description: t.description, lines, metadata: { ...t.metadata, fromWallet: fromWallet.toString(), asDebt: asDebt.toString() } });
  return { entry, fromWallet, asDebt };
}

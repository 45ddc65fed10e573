import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';

/**
 * A transit wallet as stored (交通钱包, issue 25): one per registered holder and card company, in the
 * currency of the card company's city. Its money is in the ledger (wallet-ledger.ts), never here.
 */
export interface WalletRow {
  id: string;
  holder_id: string;
  card_company_id: string;
  city_id: string;
  currency: string;
  time_zone: string;
  debt_limit: string;
  created_at: Date;
}

/** What rides may owe before the wallet's credentials are blocked: 20.00 (minor units), the wallet's until a card company changes it. */
export const DEFAULT_DEBT_LIMIT = 2000n;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const WALLET_COLUMNS = `w.id, w.holder_id, w.card_company_id, cc.city_id, btrim(w.currency) as currency, ci.time_zone, w.debt_limit::text as debt_limit, w.created_at`;
const WALLET_FROM = `transit_wallet w join card_company cc on cc.id = w.card_company_id join city ci on ci.id = cc.city_id`;

/** A wallet by id; `lock` takes its row for the caller's transaction (one wallet's rides and top-ups book one at a time). */
export async function walletById(em: EntityManager, id: string, lock = false): Promise<WalletRow | null> {
  if (!UUID.test(id)) return null;
  const [row] = await em.execute<WalletRow[]>(`select ${WALLET_COLUMNS} from ${WALLET_FROM} where w.id = ?${lock ? ' for update of w' : ''}`, [id]);
  return row ?? null;
}

/**
 * Who sees which wallets, in the query: the holder's app (card:read or card:topup) its holder's, the
 * card company (cards:read or topups:write) its own, the operator (cards:read) all.
 */
function visibility(principal: Principal): { sql: string; params: unknown[] } | null {
  const has = (...scopes: string[]) => scopes.some((s) => principal.scopes.includes(s));
  switch (principal.kind) {
    case 'CARDHOLDER_APP':
      return has('card:read', 'card:topup') && principal.holderId && UUID.test(principal.holderId) ? { sql: 'w.holder_id = ?', params: [principal.holderId] } : null;
    case 'ISSUER':
      return has('cards:read', 'topups:write') && principal.tenantId && UUID.test(principal.tenantId) ? { sql: 'w.card_company_id = ?', params: [principal.tenantId] } : null;
    case 'OPERATOR':
      return has('cards:read') ? { sql: 'true', params: [] } : null;
    default:
      return null;
  }
}

export async function findWalletFor(em: EntityManager, principal: Principal, id: string, lock = false): Promise<WalletRow | null> {
  const where = visibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<WalletRow[]>(`select ${WALLET_COLUMNS} from ${WALLET_FROM} where w.id = ? and (${where.sql})${lock ? ' for update of w' : ''}`, [id, ...where.params]);
  return row ?? null;
}

/** The holder's wallet with a card company, if it was opened. */
export async function walletOfHolder(em: EntityManager, holderId: string, cardCompanyId: string): Promise<WalletRow | null> {
  if (!UUID.test(holderId) || !UUID.test(cardCompanyId)) return null;
  const [row] = await em.execute<WalletRow[]>(`select ${WALLET_COLUMNS} from ${WALLET_FROM} where w.holder_id = ? and w.card_company_id = ?`, [holderId, cardCompanyId]);
  return row ?? null;
}

/** Opens the holder's wallet with a card company, or returns the one already open (one per pair, by the unique index). */
export async function openWalletRow(em: EntityManager, holderId: string, cardCompanyId: string): Promise<WalletRow | null> {
  if (!UUID.test(cardCompanyId)) return null;
  await em.execute(
    `insert into transit_wallet (id, holder_id, card_company_id, currency, debt_limit)
     select ?, ?, cc.id, btrim(ci.currency), ? from card_company cc join city ci on ci.id = cc.city_id where cc.id = ?
     on conflict (holder_id, card_company_id) do nothing`,
    [randomUUID(), holderId, DEFAULT_DEBT_LIMIT.toString(), cardCompanyId],
  );
  return walletOfHolder(em, holderId, cardCompanyId);
}

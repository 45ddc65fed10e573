import type { EntityManager } from '@mikro-orm/postgresql';
import type { Principal } from '../auth/principal.js';
import { toGlobalId } from '../graphql/global-id.js';

/**
 * A top-up as stored, and the reads of it: by id, by the caller's visibility, a card's list, its
 * history. Every other top-up file builds on these.
 */

export type TopUpStatus = 'CREATED' | 'AWAITING_PAYMENT' | 'PAID' | 'LOADED' | 'SPENT' | 'FAILED' | 'CANCELED' | 'REFUNDING' | 'REFUNDED';
export type TopUpOrigin = 'APP' | 'COUNTER' | 'AUTO' | 'TRANSFER' | 'REFUND';

export type LoadClaim = CpuLoadClaim | M1LoadClaim;

export interface CpuLoadClaim {
  /** The card's online counter and balance when the host issued MAC2 (before the card increments). */
  onlineCounter: number;
  oldBalance: number;
  /** What MAC2 bound: the log record a credited card writes carries them. */
  terminal: string;
  date: string;
  time: string;
}

/** An M1 card's claim: the value its write script was bound to, and the value it leaves. */
export interface M1LoadClaim {
  m1: { oldValue: number; newValue: number };
  oldBalance: number;
}

export interface TopUpRow {
  id: string;
  /** The card the value is for (补登), or null for a wallet top-up. */
  card_id: string | null;
  /** The transit wallet the value is for (credited when paid), or null for a card top-up. */
  wallet_id: string | null;
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
  /** Joined: the card's ASN and number, for the session guard and events (null for a wallet top-up). */
  asn: string | null;
  card_number: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOP_UP_COLUMNS = `t.*, t.amount::text as amount, t.city_day::text as city_day, c.asn, c.card_number`;
const TOP_UP_FROM = `top_up t left join card c on c.id = t.card_id`;

export const topUpGlobalId = (id: string) => toGlobalId('TopUp', id);

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

/**
 * A card's top-up the principal may see (the `TopUp` of the API); with `target: 'WALLET'`, a wallet's
 * (the `WalletTopUp`): the holder's app sees its holder's, the card company and operator as for cards.
 */
/** As visibility(), for wallet top-ups: the holder is on the top-up itself (there is no card). */
function walletVisibility(principal: Principal): { sql: string; params: unknown[] } | null {
  if (principal.kind !== 'CARDHOLDER_APP') return visibility(principal);
  return principal.scopes.includes('card:read') && principal.holderId && UUID.test(principal.holderId) ? { sql: 't.holder_id = ?', params: [principal.holderId] } : null;
}

export async function findTopUpFor(em: EntityManager, principal: Principal, id: string, target: 'CARD' | 'WALLET' = 'CARD'): Promise<TopUpRow | null> {
  const where = target === 'CARD' ? visibility(principal) : walletVisibility(principal);
  if (!where || !UUID.test(id)) return null;
  const [row] = await em.execute<TopUpRow[]>(`select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.id = ? and t.${target === 'CARD' ? 'card_id' : 'wallet_id'} is not null and (${where.sql})`, [id, ...where.params]);
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

export async function topUpByKey(em: EntityManager, clientId: string, key: string): Promise<TopUpRow | null> {
  const [row] = await em.execute<TopUpRow[]>(`select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.created_by_client = ? and t.idempotency_key = ?`, [clientId, key]);
  return row ?? null;
}

/** A wallet's top-ups, newest first; keyset on (created_at, id). The wallet's own visibility is the caller's. */
export function listTopUpsOfWallet(em: EntityManager, walletId: string, opts: { after?: { createdAt: string; id: string }; limit: number }): Promise<TopUpRow[]> {
  const params: unknown[] = [walletId];
  let sql = `select ${TOP_UP_COLUMNS} from ${TOP_UP_FROM} where t.wallet_id = ?`;
  if (opts.after) {
    sql += ` and (t.created_at, t.id) < (?::timestamptz, ?::uuid)`;
    params.push(opts.after.createdAt, opts.after.id);
  }
  sql += ` order by t.created_at desc, t.id desc limit ?`;
  params.push(opts.limit);
  return em.execute<TopUpRow[]>(sql, params);
}

export const maskCardNumber = (number: string | null) => (number ? `**** ${number.slice(-4)}` : 'none');

/** What a top-up is for, in words for the gateway and the ledger: a card (masked) or a transit wallet. */
export const targetOf = (topUp: Pick<TopUpRow, 'card_number' | 'wallet_id'>) => (topUp.wallet_id ? `transit wallet ${topUp.wallet_id}` : `card ${maskCardNumber(topUp.card_number)}`);

/**
 * Which pending loads a card company lists: UNRESOLVED, whose write onto the card was started (MAC2
 * issued) and that no reader is writing now, so the card company may have to settle it
 * (resolvePendingLoad); WAITING, paid and not yet started, for the card's next tap (补登).
 */
export type PendingLoadListStatus = 'UNRESOLVED' | 'WAITING';

const PENDING_LOAD_WHERE: Record<PendingLoadListStatus, string> = {
  UNRESOLVED: `t.load_session_id is not null and not exists (select 1 from card_session s where s.id = t.load_session_id and s.state not in ('COMPLETED','FAILED') and s.expires_at > now())`,
  WAITING: `t.load_session_id is null`,
};

/** A listed pending load: the top-up, and when its write was started (null while WAITING). */
export type ListedPendingLoad = TopUpRow & { write_started_at: Date | null };

/**
 * The pending loads of the caller's cards (a card company, cards:read; the operator: every card
 * company's), oldest first: the one waiting longest is the first to look into. Keyset on
 * (created_at, id), the position's row giving the exact timestamp. Null when the caller may not list them.
 */
export async function listPendingLoadsFor(em: EntityManager, principal: Principal, status: PendingLoadListStatus, page: { after?: { createdAt: string; id: string }; limit: number }): Promise<ListedPendingLoad[] | null> {
  if (principal.kind !== 'ISSUER' && principal.kind !== 'OPERATOR') return null;
  const where = visibility(principal);
  if (!where) return null;
  const clauses = [`t.status = 'PAID'`, 't.card_id is not null', PENDING_LOAD_WHERE[status], `(${where.sql})`];
  const params: unknown[] = [...where.params];
  if (page.after) {
    if (!UUID.test(page.after.id) || Number.isNaN(Date.parse(page.after.createdAt))) return [];
    clauses.push('(t.created_at, t.id) > (coalesce((select created_at from top_up where id = ?::uuid), ?::timestamptz), ?::uuid)');
    params.push(page.after.id, page.after.createdAt, page.after.id);
  }
  return em.execute<ListedPendingLoad[]>(
    `select ${TOP_UP_COLUMNS}, (select s.created_at from card_session s where s.id = t.load_session_id) as write_started_at
       from ${TOP_UP_FROM} where ${clauses.join(' and ')} order by t.created_at, t.id limit ?`,
    [...params, page.limit],
  );
}

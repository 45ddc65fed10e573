import type { EntityManager } from '@mikro-orm/postgresql';
import { cardPurseCode } from '../ledger/accounts.js';

/**
 * What a ledger entry that touches a card purse says it is, in `metadata.kind`. Every context that
 * posts to a purse sets one; an entry without one (a manual correction) reads as ADJUSTMENT.
 * BALANCE_TRANSFER is the replacement transfer: one entry, seen from each card as TRANSFER_OUT
 * (the old card) or TRANSFER_IN (the new one).
 */
export const CARD_ENTRY_KINDS = ['COUNTER_LOAD', 'TOP_UP_LOAD', 'PURCHASE', 'PAYMENT', 'BILL_PAYMENT', 'REFUND', 'TRANSIT', 'ADJUSTMENT', 'BALANCE_TRANSFER'] as const;
export type CardEntryKind = (typeof CARD_ENTRY_KINDS)[number];

/** What a card's history shows for one of its purse's postings. */
export const CARD_ACTIVITY_KINDS = ['COUNTER_LOAD', 'TOP_UP_LOAD', 'PURCHASE', 'PAYMENT', 'BILL_PAYMENT', 'REFUND', 'TRANSFER_IN', 'TRANSFER_OUT', 'TRANSIT', 'ADJUSTMENT'] as const;
export type CardActivityKind = (typeof CARD_ACTIVITY_KINDS)[number];

export interface CardActivityRow {
  /** The posting's id: the keyset, newest first. */
  id: string;
  at: Date;
  kind: CardActivityKind;
  /** From the card's view: a load positive, a purchase negative. */
  amount: bigint;
  balanceAfter: bigint;
  currency: string;
  description: string;
  /** What the entry's metadata names as its cause (a card session, a top-up, a transfer), if anything. */
  reference: { type: string; id: string } | null;
}

/** The default history window (DESIGN.md §1: six months of history) and the longest one asked for. */
export const HISTORY_DEFAULT_MONTHS = 6;
export const HISTORY_MAX_MONTHS = 13;

export class HistoryWindowError extends Error {}

/** The same time of day `months` calendar months earlier (UTC), on the month's last day when it is shorter. */
function monthsBefore(at: Date, months: number): Date {
  const d = new Date(at);
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - months);
  const lastDay = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(at.getUTCDate(), lastDay));
  return d;
}

/**
 * The time window a history request reads: [from, to), `to` open-ended (now) when not given so an
 * entry posted by a database clock a little ahead of ours is not hidden. Defaults to the last six
 * months; `from` after `to`, or a window over thirteen months, is refused.
 */
export function historyWindow(args: { from?: Date | null; to?: Date | null }, now: Date): { from: Date; to: Date | null } {
  const end = args.to ?? now;
  const from = args.from ?? monthsBefore(end, HISTORY_DEFAULT_MONTHS);
  if (from > end) throw new HistoryWindowError('`from` is later than `to`');
  if (from < monthsBefore(end, HISTORY_MAX_MONTHS)) throw new HistoryWindowError(`a history window is at most ${HISTORY_MAX_MONTHS} months`);
  return { from, to: args.to ?? null };
}

// Metadata keys that name an entry's cause and the global id type each is: the business object
// first (a top-up is loaded through a card session, and the top-up is what its holder knows).
const REFERENCE_KEYS: [key: string, type: string][] = [
  ['topUp', 'TopUp'],
  ['payment', 'Payment'],
  ['billPayment', 'BillPayment'],
  ['balanceTransfer', 'BalanceTransfer'],
  ['cardSession', 'CardSession'],
];

const KNOWN = CARD_ENTRY_KINDS.filter((k) => k !== 'BALANCE_TRANSFER');

/**
 * The purse postings of a card, newest first, one row per posting. The running balance is a window
 * over ALL the account's postings in posting order (which is the order their balance updates were
 * applied: post() holds the account's row lock until commit), computed before any filter, so a
 * filtered or paged view still shows the true balance after each entry.
 *
 * Reads the ledger's tables read-only: the ledger has no statement query of its own yet.
 */
export async function cardHistory(
  em: EntityManager,
  card: { asn: string; currency: string },
  opts: { from?: Date | null; to?: Date | null; kinds?: readonly CardActivityKind[] | null; afterId?: string | null; onlyId?: string; limit: number },
): Promise<CardActivityRow[]> {
  const where: string[] = [];
  const params: unknown[] = [cardPurseCode(card.asn, card.currency)];
  if (opts.from) {
    where.push('h.posted_at >= ?');
    params.push(opts.from);
  }
  if (opts.to) {
    where.push('h.posted_at < ?');
    params.push(opts.to);
  }
  if (opts.kinds?.length) {
    where.push('h.kind in (?)');
    params.push([...opts.kinds]);
  }
  if (opts.afterId) {
    where.push('h.id < ?');
    params.push(opts.afterId);
  }
  if (opts.onlyId) {
    where.push('h.id = ?');
    params.push(opts.onlyId);
  }
  params.push(opts.limit);
  // A purse is a liability: a credit (negative posting amount) is value on the card.
  const rows = await em.execute<{ id: string; at: string; kind: CardActivityKind; amount: string; balance_after: string; currency: string; description: string; metadata: Record<string, unknown> }[]>(
    `with lines as (
       select p.id, p.amount, p.currency, e.posted_at, e.description, e.metadata,
              -(coalesce(o.balance, 0) + sum(p.amount) over (order by p.id rows between unbounded preceding and current row)) as balance_after
         from posting p join journal_entry e on e.id = p.entry_id and e.posted_at = p.posted_at
         -- what the archived months left: the purse's opening at the first month kept
         left join ledger_opening o on o.account_id = p.account_id and o.month = (select max(month) from ledger_opening)
        where p.account_id = (select a.id from ledger_account a where a.code = ?)
     ), h as (
       select l.*,
              case when l.metadata->>'kind' = 'BALANCE_TRANSFER' then case when l.amount > 0 then 'TRANSFER_OUT' else 'TRANSFER_IN' end
                   when l.metadata->>'kind' in (${KNOWN.map((k) => `'${k}'`).join(', ')}) then l.metadata->>'kind'
                   else 'ADJUSTMENT' end as kind
         from lines l
     )
     select h.id::text as id, to_json(h.posted_at) #>> '{}' as at, h.kind, (-h.amount)::text as amount, h.balance_after::text as balance_after,
            btrim(h.currency) as currency, h.description, h.metadata
       from h
      ${where.length ? `where ${where.join(' and ')}` : ''}
      order by h.id desc
      limit ?`,
    params,
  );
  return rows.map((r) => ({
    id: r.id,
    at: new Date(r.at),
    kind: r.kind,
    amount: BigInt(r.amount),
    balanceAfter: BigInt(r.balance_after),
    currency: r.currency,
    description: r.description,
    reference: referenceOf(r.metadata),
  }));
}

function referenceOf(metadata: Record<string, unknown> | null): CardActivityRow['reference'] {
  for (const [key, type] of REFERENCE_KEYS) {
    const value = metadata?.[key];
    if (typeof value === 'string' && value) return { type, id: value };
  }
  return null;
}

/** The ASN whose purse a posting moved, or null when the posting is not on a card purse. */
export async function purseAsnOfPosting(em: EntityManager, postingId: string): Promise<string | null> {
  if (!/^[0-9]{1,18}$/.test(postingId)) return null;
  const [row] = await em.execute<{ asn: string }[]>(
    `select a.owner_id as asn from posting p join ledger_account a on a.id = p.account_id where p.id = ? and a.owner_kind = 'CARD_PURSE'`,
    [postingId],
  );
  return row?.asn ?? null;
}

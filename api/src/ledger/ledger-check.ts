import type { EntityManager } from '@mikro-orm/postgresql';

export interface LedgerProblem {
  rule: 'ENTRY_UNBALANCED' | 'ENTRY_TOO_FEW_POSTINGS' | 'BALANCE_DIFFERS_FROM_POSTINGS' | 'NON_NEGATIVE_ACCOUNT_BELOW_ZERO';
  subject: string;
  detail: string;
}

/**
 * The ledger's invariants (DESIGN.md §3), checked in set-based SQL over the whole ledger kept:
 * every entry sums to zero per currency and has two or more postings; every stored balance equals
 * its opening at the first month kept (ledger_opening, written when the month before was archived;
 * zero when none was) plus the sum of its postings since; no non-negative account is below zero.
 * Empty means all hold.
 */
export async function checkLedger(em: EntityManager): Promise<LedgerProblem[]> {
  const problems: LedgerProblem[] = [];
  const unbalanced = await em.execute<{ entry_id: string; currency: string; total: string }[]>(
    `select entry_id, currency, sum(amount) as total from posting group by entry_id, currency having sum(amount) <> 0`,
  );
  for (const r of unbalanced) problems.push({ rule: 'ENTRY_UNBALANCED', subject: r.entry_id, detail: `postings in ${r.currency.trim()} sum to ${r.total}` });

  const thin = await em.execute<{ id: string; n: string }[]>(
    `select e.id, count(p.id) as n from journal_entry e left join posting p on p.entry_id = e.id and p.posted_at = e.posted_at group by e.id having count(p.id) < 2`,
  );
  for (const r of thin) problems.push({ rule: 'ENTRY_TOO_FEW_POSTINGS', subject: r.id, detail: `${r.n} posting(s)` });

  const drifted = await em.execute<{ id: string; code: string; balance: string; expected: string }[]>(
    `select a.id, a.code, a.balance,
            case when a.type in ('ASSET', 'EXPENSE') then coalesce(s.total, 0) else -coalesce(s.total, 0) end as expected
       from ledger_account a
       left join (select account_id, sum(total) as total
                    from (select account_id, sum(amount) as total from posting group by account_id
                          union all
                          select account_id, balance from ledger_opening where month = (select max(month) from ledger_opening)) kept
                   group by account_id) s on s.account_id = a.id
      where a.balance <> case when a.type in ('ASSET', 'EXPENSE') then coalesce(s.total, 0) else -coalesce(s.total, 0) end`,
  );
  for (const r of drifted) problems.push({ rule: 'BALANCE_DIFFERS_FROM_POSTINGS', subject: r.id, detail: `${r.code}: balance ${r.balance}, postings say ${r.expected}` });

  const negative = await em.execute<{ id: string; code: string; balance: string }[]>(
    `select id, code, balance from ledger_account where non_negative and balance < 0`,
  );
  for (const r of negative) problems.push({ rule: 'NON_NEGATIVE_ACCOUNT_BELOW_ZERO', subject: r.id, detail: `${r.code}: balance ${r.balance}` });
  return problems;
}

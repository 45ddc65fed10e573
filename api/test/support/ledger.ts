import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * A transfer booked at a past instant, as post() books it (key, entry, postings with their entry's
 * posted_at, balances moved): post() itself takes the database's clock, which a test cannot turn back.
 */
export async function bookAt(em: EntityManager, at: string, key: string, from: string, to: string, amount: bigint): Promise<string> {
  return em.transactional(async (tx) => {
    const id = randomUUID();
    await tx.execute(
      `with k as (insert into journal_entry_key (entry_key, entry_id, posted_at) values (?, ?, ?::timestamptz) returning entry_key, entry_id, posted_at)
       insert into journal_entry (id, entry_key, description, posted_at) select entry_id, entry_key, 'booked at', posted_at from k`,
      [key, id, at],
    );
    const moved: string[] = [];
    for (const [account, amt] of [[from, amount], [to, -amount]] as const) {
      const [a] = await tx.execute<{ type: string }[]>(`select type from ledger_account where id = ?`, [account]);
      const delta = ['ASSET', 'EXPENSE'].includes(a!.type) ? amt : -amt;
      const [row] = await tx.execute<{ balance: string }[]>(`update ledger_account set balance = balance + ? where id = ? returning balance`, [delta.toString(), account]);
      moved.push(row!.balance);
    }
    await tx.execute(
      `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at) values (?, 0, ?, ?, 'CNY', ?, ?::timestamptz), (?, 1, ?, ?, 'CNY', ?, ?::timestamptz)`,
      [id, from, amount.toString(), moved[0], at, id, to, (-amount).toString(), moved[1], at],
    );
    return id;
  });
}

/**
 * What the database itself guarantees about postings, whoever writes them (post(), postMany(), a
 * bench's bulk load, a hand-written statement): every posting belongs to a journal entry that
 * exists, and to an account that exists in the posting's currency; an account that has postings is
 * never deleted nor moved to another id or currency. A refusal is a foreign-key violation (23503)
 * and the whole statement writes nothing. (Issue 23 tried these as one check per statement instead
 * of the foreign keys' check per row; this file is what any such change must keep.)
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { credit, debit, openAccount, post } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';
import { checkLedger } from './ledger-check.js';

let db: TestDatabase;
let em: EntityManager;
let source: string;
let purse: string;
let entry: string;

const sqlStateOf = (err: unknown) => {
  const e = err as { code?: unknown; cause?: { code?: unknown } };
  return typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
};
const refusal = (work: Promise<unknown>) => work.then(() => 'written', sqlStateOf);
const postingCount = async () => Number((await em.execute<{ n: string }[]>(`select count(*) as n from posting`))[0]!.n);

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
  source = (await openAccount(em, { code: 'refs.source', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' })).id;
  purse = (await openAccount(em, { code: 'refs.purse', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: true })).id;
  entry = (await post(em, { key: 'refs.fund', description: 'funding', lines: [debit(source, 500n), credit(purse, 500n)] })).id;
});
afterAll(() => db.close());

const insertPostings = (rows: { entry: string; account: string; currency: string }[]) =>
  em.execute(
    // A posting carries its entry's posted_at (the partition key); an entry that does not exist has none: now().
    `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
     select r.entry_id, r.line_no, r.account_id, 1, r.currency, 1, coalesce(k.posted_at, now())
       from json_to_recordset(?::json) as r(entry_id uuid, line_no int, account_id uuid, currency text) left join journal_entry_key k on k.entry_id = r.entry_id`,
    [JSON.stringify(rows.map((r, i) => ({ entry_id: r.entry, line_no: 100 + i, account_id: r.account, currency: r.currency })))],
  );

describe('the database keeps every posting tied to its entry and its account', () => {
  it.each([
    { what: 'an entry that does not exist', row: () => ({ entry: '00000000-0000-4000-8000-000000000001', account: purse, currency: 'CNY' }) },
    { what: 'an account that does not exist', row: () => ({ entry, account: '00000000-0000-4000-8000-000000000002', currency: 'CNY' }) },
    { what: 'a currency other than its account’s', row: () => ({ entry, account: purse, currency: 'USD' }) },
  ])('a posting to $what is refused (23503), and the statement’s good rows with it', async ({ row }) => {
    const before = await postingCount();
    expect(await refusal(insertPostings([{ entry, account: purse, currency: 'CNY' }, row(), { entry, account: source, currency: 'CNY' }]))).toBe('23503');
    expect(await postingCount()).toBe(before);
  });

  it('postings to entries and accounts that exist are written (the check refuses only what it should)', async () => {
    const before = await postingCount();
    await em.transactional(async (tx) => {
      await tx.execute(
        `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at)
         select v.*, k.posted_at from (values (?::uuid, 10, ?::uuid, 1, 'CNY', 1), (?::uuid, 11, ?::uuid, -1, 'CNY', 1)) v join journal_entry_key k on k.entry_id = v.column1`,
        [entry, purse, entry, source],
      );
      expect(Number((await tx.execute<{ n: string }[]>(`select count(*) as n from posting`))[0]!.n)).toBe(before + 2);
      throw new Error('undo: the lines would unbalance the ledger');
    }).catch((err: Error) => expect(err.message).toMatch(/undo/));
  });

  it('an account that has postings cannot be deleted, nor change its id or currency (23503); one without can', async () => {
    expect(await refusal(em.execute(`delete from ledger_account where id = ?`, [purse]))).toBe('23503');
    expect(await refusal(em.execute(`update ledger_account set currency = 'USD' where id = ?`, [purse]))).toBe('23503');
    expect(await refusal(em.execute(`update ledger_account set id = gen_random_uuid() where id = ?`, [purse]))).toBe('23503');
    await em.execute(`update ledger_account set balance = balance where id = ?`, [purse]);
    const unused = await openAccount(em, { code: 'refs.unused', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    await em.execute(`delete from ledger_account where id = ?`, [unused.id]);
    expect(await checkLedger(em)).toEqual([]);
  });
});

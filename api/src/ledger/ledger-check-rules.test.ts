/**
 * `checkLedger()` (`onecard ledger check`, GraphQL `ledgerProblems`) reports each broken invariant
 * with the entry or account and what is wrong. post() cannot break them, so each test breaks one
 * by hand in this file's own database, as a faulty migration or a manual fix in production could.
 * (Found by mutation testing, docs/testing.md: only the balance rule was ever seen to fire.)
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from './ledger-check.js';
import { credit, debit, openAccount, post } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

async function account(opts: { type?: AccountType; nonNegative?: boolean } = {}) {
  const acc = await openAccount(em, { code: `check.${++n}`, type: opts.type ?? AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: opts.nonNegative });
  return acc;
}

describe('checkLedger() reports', () => {
  it('an entry whose postings do not sum to zero', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: `unbalanced.${++n}`, description: 'x', lines: [debit(a.id, 10n), credit(b.id, 10n)] });
    await em.execute(
      `insert into posting (entry_id, line_no, account_id, amount, currency, balance_after, posted_at) values (?, 2, ?, 1, 'CNY', 11, (select posted_at from journal_entry_key where entry_id = ?))`,
      [entry.id, a.id, entry.id],
    );
    const problems = await checkLedger(em);
    expect(problems).toEqual(
      expect.arrayContaining([
        { rule: 'ENTRY_UNBALANCED', subject: entry.id, detail: 'postings in CNY sum to 1' },
        { rule: 'BALANCE_DIFFERS_FROM_POSTINGS', subject: a.id, detail: `${a.code}: balance 10, postings say 11` },
      ]),
    );
    expect(problems.filter((p) => p.subject === b.id)).toEqual([]);
  });

  it('an entry with fewer than two postings', async () => {
    const id = randomUUID();
    await em.execute(`insert into journal_entry (id, entry_key, description) values (?, ?, 'no lines')`, [id, `thin.${++n}`]);
    expect(await checkLedger(em)).toEqual(expect.arrayContaining([{ rule: 'ENTRY_TOO_FEW_POSTINGS', subject: id, detail: '0 posting(s)' }]));
  });

  it('a non-negative account below zero', async () => {
    const purse = await account({ nonNegative: true });
    const other = await account();
    // Only a database that lost its CHECK constraint can hold this row.
    await em.execute(`alter table ledger_account drop constraint ledger_account_non_negative`);
    await em.execute(`update ledger_account set balance = -5 where id in (?, ?)`, [purse.id, other.id]);
    const negatives = (await checkLedger(em)).filter((p) => p.rule === 'NON_NEGATIVE_ACCOUNT_BELOW_ZERO');
    expect(negatives).toEqual([{ rule: 'NON_NEGATIVE_ACCOUNT_BELOW_ZERO', subject: purse.id, detail: `${purse.code}: balance -5` }]);
  });
});

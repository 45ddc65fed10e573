import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { cardPurseAccount, merchantPayableAccount } from './accounts.js';
import { checkLedger } from './ledger-check.js';
import { balance, credit, debit, openAccount, post, postMany } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

const funding = () => openAccount(db.orm.em.fork(), { code: 'test.remembered.funding.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });

describe('accounts the chart remembers (read once when they exist)', () => {
  it('an account opened in a transaction that rolled back is opened again, and money reaches it', async () => {
    const rolledBack = await db.orm.em
      .fork()
      .transactional(async (tx) => {
        const purse = await cardPurseAccount(tx, '0000aaaa000000000001', 'CNY');
        await post(tx, { key: 'remembered.rolled-back', description: 'a load that fails later', lines: [debit((await funding()).id, 300n), credit(purse.id, 300n)] });
        throw new Error('the load failed after opening the purse');
      })
      .catch((err: Error) => err.message);
    expect(rolledBack).toBe('the load failed after opening the purse');

    const purse = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000001', 'CNY');
    await post(db.orm.em.fork(), { key: 'remembered.after', description: 'the load again', lines: [debit((await funding()).id, 300n), credit(purse.id, 300n)] });
    expect(await balance(db.orm.em.fork(), purse.id)).toBe(300n);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });

  it('an account that exists is the same account on every call, from any EntityManager, and moves as one', async () => {
    const merchantId = '11111111-2222-4333-8444-555555555555';
    const first = await merchantPayableAccount(db.orm.em.fork(), merchantId, 'CNY');
    const again = await merchantPayableAccount(db.orm.em.fork(), merchantId, 'CNY');
    expect(again.id).toBe(first.id);
    const source = await funding();
    for (const key of ['remembered.sale.1', 'remembered.sale.2']) {
      await post(db.orm.em.fork(), { key, description: 'a sale', lines: [debit(source.id, 250n), credit((await merchantPayableAccount(db.orm.em.fork(), merchantId, 'CNY')).id, 250n)] });
    }
    expect(await balance(db.orm.em.fork(), first.id)).toBe(500n);
    const [rows] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*)::text as n from ledger_account where owner_id = ?`, [merchantId]);
    expect(rows!.n).toBe('1');
  });

  it('an account remembered from one database is not used in another the same process opens: each gets its own, and money reaches it', async () => {
    const other = await freshDatabase();
    try {
      const here = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000002', 'CNY');
      const there = await cardPurseAccount(other.orm.em.fork(), '0000aaaa000000000002', 'CNY');
      expect(there.id).not.toBe(here.id);
      const source = await openAccount(other.orm.em.fork(), { code: 'test.remembered.funding.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      await post(other.orm.em.fork(), { key: 'remembered.other-database', description: 'a load in the other database', lines: [debit(source.id, 120n), credit(there.id, 120n)] });
      expect(await balance(other.orm.em.fork(), there.id)).toBe(120n);
      expect(await checkLedger(other.orm.em.fork())).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('a remembered account whose row is gone (a database restored to an earlier point) is refused once, then opened afresh', async () => {
    const purse = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000003', 'CNY');
    await db.orm.em.fork().execute(`delete from ledger_account where id = ?`, [purse.id]);
    const source = await funding();
    const refused = await post(db.orm.em.fork(), { key: 'remembered.restored.1', description: 'a load to the lost purse', lines: [debit(source.id, 80n), credit(purse.id, 80n)] }).catch((err: { code?: string }) => err.code);
    expect(refused).toBe('UNKNOWN_ACCOUNT');
    const reopened = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000003', 'CNY');
    expect(reopened.id).not.toBe(purse.id);
    await post(db.orm.em.fork(), { key: 'remembered.restored.2', description: 'the load again', lines: [debit(source.id, 80n), credit(reopened.id, 80n)] });
    expect(await balance(db.orm.em.fork(), reopened.id)).toBe(80n);
  });

  it('a remembered account whose row is gone is refused once by postMany (the offline uploads and clearing), then opened afresh', async () => {
    const purse = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000004', 'CNY');
    await db.orm.em.fork().execute(`delete from ledger_account where id = ?`, [purse.id]);
    const source = await funding();
    const refused = await postMany(db.orm.em.fork(), [{ key: 'remembered.restored-many.1', description: 'a load to the lost purse', lines: [debit(source.id, 90n), credit(purse.id, 90n)] }]).catch(
      (err: { code?: string }) => err.code,
    );
    expect(refused).toBe('UNKNOWN_ACCOUNT');
    const reopened = await cardPurseAccount(db.orm.em.fork(), '0000aaaa000000000004', 'CNY');
    expect(reopened.id).not.toBe(purse.id);
    await postMany(db.orm.em.fork(), [{ key: 'remembered.restored-many.2', description: 'the load again', lines: [debit(source.id, 90n), credit(reopened.id, 90n)] }]);
    expect(await balance(db.orm.em.fork(), reopened.id)).toBe(90n);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
  });
});

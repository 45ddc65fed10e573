/**
 * An entry key names one movement of money: posting it again with the same lines is a replay (the
 * first entry, nothing moves); with anything else that moves money differently it is refused, and
 * nothing moves either. Each way a request can differ is a row of the table.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from './ledger-check.js';
import { LedgerErrorCode } from './ledger.errors.js';
import { balance, credit, debit, openAccount, post, reverse } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

const account = async (type = AccountType.LIABILITY) => (await openAccount(em, { code: `replay.${++n}`, type, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' })).id;

async function snapshot(ids: string[]) {
  const [{ entries }] = await em.execute<{ entries: number }[]>(`select count(*)::int as entries from journal_entry`);
  return { entries, balances: await Promise.all(ids.map((id) => balance(em, id))) };
}

describe('the same entry key again', () => {
  type Accounts = { cash: string; purse: string; other: string };
  const refused: { name: string; lines: (a: Accounts) => ReturnType<typeof debit>[] }[] = [
    { name: 'a larger amount', lines: (a) => [debit(a.cash, 501n), credit(a.purse, 501n)] },
    { name: 'a smaller amount', lines: (a) => [debit(a.cash, 1n), credit(a.purse, 1n)] },
    { name: 'the same amount into another account', lines: (a) => [debit(a.cash, 500n), credit(a.other, 500n)] },
    { name: 'the same amount from another account', lines: (a) => [debit(a.other, 500n), credit(a.purse, 500n)] },
    { name: 'the direction reversed', lines: (a) => [credit(a.cash, 500n), debit(a.purse, 500n)] },
    { name: 'the money split over a third line', lines: (a) => [debit(a.cash, 500n), credit(a.purse, 300n), credit(a.other, 200n)] },
    { name: 'the same two lines and two more after them', lines: (a) => [debit(a.cash, 500n), credit(a.purse, 500n), debit(a.other, 100n), credit(a.cash, 100n)] },
  ];

  it.each(refused)('with $name is refused (ENTRY_KEY_REUSED) and moves nothing', async ({ lines }) => {
    const a = { cash: await account(AccountType.ASSET), purse: await account(), other: await account() };
    const key = `replay-refused-${++n}`;
    const first = await post(em, { key, description: 'first', lines: [debit(a.cash, 500n), credit(a.purse, 500n)] });
    const before = await snapshot([a.cash, a.purse, a.other]);
    await expect(post(em, { key, description: 'first', lines: lines(a) })).rejects.toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
    expect(await snapshot([a.cash, a.purse, a.other])).toEqual(before);
    // The key still answers the first entry.
    expect(await post(em, { key, description: 'first', lines: [debit(a.cash, 500n), credit(a.purse, 500n)] })).toMatchObject({ id: first.id, replayed: true });
  });

  it('with the same lines (another description) is the first entry, and moves nothing', async () => {
    const a = { cash: await account(AccountType.ASSET), purse: await account() };
    const first = await post(em, { key: 'replay-same', description: 'first', lines: [debit(a.cash, 500n), credit(a.purse, 500n)] });
    const before = await snapshot([a.cash, a.purse]);
    const again = await post(em, { key: 'replay-same', description: 'the client retried', lines: [debit(a.cash, 500n), credit(a.purse, 500n)] });
    expect(again).toMatchObject({ id: first.id, replayed: true, description: 'first' });
    expect(await snapshot([a.cash, a.purse])).toEqual(before);
  });

  it('used by a reversal for an entry posted under it already is refused, and a plain post under a reversal’s key too', async () => {
    const a = { cash: await account(AccountType.ASSET), purse: await account() };
    const original = await post(em, { key: 'replay-original', description: 'load', lines: [debit(a.cash, 500n), credit(a.purse, 500n)] });
    // A plain entry with exactly the reversal's lines takes the key first: the reversal is not a replay of it.
    await post(em, { key: 'replay-reversal', description: 'look-alike', lines: [credit(a.cash, 500n), debit(a.purse, 500n)] });
    const before = await snapshot([a.cash, a.purse]);
    await expect(reverse(em, original.id, { key: 'replay-reversal', description: 'reversal' })).rejects.toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
    expect(await snapshot([a.cash, a.purse])).toEqual(before);

    const reversal = await reverse(em, original.id, { key: 'replay-real-reversal', description: 'reversal' });
    expect(await reverse(em, original.id, { key: 'replay-real-reversal', description: 'reversal' })).toMatchObject({ id: reversal.id, replayed: true });
    const after = await snapshot([a.cash, a.purse]);
    await expect(post(em, { key: 'replay-real-reversal', description: 'look-alike', lines: [credit(a.cash, 500n), debit(a.purse, 500n)] })).rejects.toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
    expect(await snapshot([a.cash, a.purse])).toEqual(after);
    expect(await checkLedger(em)).toEqual([]);
  });
});

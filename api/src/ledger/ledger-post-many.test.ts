/**
 * postMany(): many entries at once (issue 23: offline batches, clearing). Each entry must come out
 * as post() would write it — lines, balances after, the accounts' balances — and a refusal anywhere
 * must leave nothing written: no entry, no line, no balance moved.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { LedgerErrorCode } from './ledger.errors.js';
import { balance, credit, debit, findEntry, openAccount, post, postMany } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';
import { checkLedger } from './ledger-check.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

async function account(opts: { type?: AccountType; nonNegative?: boolean } = {}) {
  const acc = await openAccount(em, { code: `many.${++n}`, type: opts.type ?? AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: opts.nonNegative });
  return acc.id;
}

async function fundedPurse(amount: bigint) {
  const [source, purse] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true })];
  await post(em, { key: `fund.${++n}`, description: 'funding', lines: [debit(source, amount), credit(purse, amount)] });
  return purse;
}

async function entryCount(): Promise<number> {
  const [r] = await em.execute<{ n: string }[]>(`select count(*) as n from journal_entry`);
  return Number(r!.n);
}

describe('postMany()', () => {
  it('writes each entry as post() would: the lines in order, each balance after as if posted one by one, each account moved by its sum', async () => {
    const purse = await fundedPurse(500n);
    const payable = await account();
    const posted = await postMany(em, [
      { key: `many.a.${n}`, description: 'ride 1', lines: [debit(purse, 200n), credit(payable, 200n)] },
      { key: `many.b.${n}`, description: 'ride 2', lines: [debit(purse, 150n), credit(payable, 150n)], metadata: { ride: 2 } },
    ]);
    expect(posted.map((p) => p.key)).toEqual([`many.a.${n}`, `many.b.${n}`]);
    const second = await findEntry(em, posted[1]!.id);
    expect(second!.lines.map((l) => [l.account, l.amount, l.balanceAfter])).toEqual([
      [purse, 150n, 150n],
      [payable, -150n, 350n],
    ]);
    expect(await balance(em, purse)).toBe(150n);
    expect(await balance(em, payable)).toBe(350n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('an entry that would take a non-negative account below zero at its turn refuses the whole call and writes nothing', async () => {
    const purse = await fundedPurse(300n);
    const payable = await account();
    const before = await entryCount();
    await expect(
      postMany(em, [
        { key: `over.a.${n}`, description: 'ride 1', lines: [debit(purse, 200n), credit(payable, 200n)] },
        { key: `over.b.${n}`, description: 'ride 2', lines: [debit(purse, 200n), credit(payable, 200n)] },
      ]),
    ).rejects.toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS });
    expect(await entryCount()).toBe(before);
    expect(await balance(em, purse)).toBe(300n);
    expect(await balance(em, payable)).toBe(0n);
  });

  it('a key posted before, or given twice in the call, refuses the whole call and moves nothing', async () => {
    const purse = await fundedPurse(1000n);
    const payable = await account();
    await post(em, { key: `taken.${n}`, description: 'earlier', lines: [debit(purse, 10n), credit(payable, 10n)] });
    const before = await entryCount();
    for (const keys of [[`fresh.${n}`, `taken.${n}`], [`twice.${n}`, `twice.${n}`]]) {
      await expect(postMany(em, keys.map((key) => ({ key, description: 'ride', lines: [debit(purse, 100n), credit(payable, 100n)] })))).rejects.toMatchObject({
        code: LedgerErrorCode.ENTRY_KEY_REUSED,
      });
    }
    expect(await entryCount()).toBe(before);
    expect(await balance(em, purse)).toBe(990n);
    expect(await checkLedger(em)).toEqual([]);
  });

  it('an unbalanced entry, an unknown account or a zero line refuses the call before anything is written', async () => {
    const purse = await fundedPurse(100n);
    const payable = await account();
    const before = await entryCount();
    const cases: [Parameters<typeof postMany>[1], LedgerErrorCode][] = [
      [[{ key: `u.${n}`, description: 'x', lines: [debit(purse, 10n), credit(payable, 9n)] }], LedgerErrorCode.UNBALANCED],
      [[{ key: `k.${n}`, description: 'x', lines: [debit('00000000-0000-4000-8000-000000000000', 10n), credit(payable, 10n)] }], LedgerErrorCode.UNKNOWN_ACCOUNT],
      [[{ key: `z.${n}`, description: 'x', lines: [debit(purse, 0n), credit(payable, 0n)] }], LedgerErrorCode.INVALID_AMOUNT],
    ];
    for (const [entries, code] of cases) await expect(postMany(em, entries)).rejects.toMatchObject({ code });
    expect(await entryCount()).toBe(before);
    expect(await balance(em, purse)).toBe(100n);
  });
});

import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from './ledger-check.js';
import { LedgerErrorCode } from './ledger.errors.js';
import { balance, balanceAt, credit, debit, openAccount, post, reverse } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db.close());

/** A fresh account; liabilities by default, like a card purse. */
async function account(opts: { type?: AccountType; currency?: string; nonNegative?: boolean } = {}) {
  const acc = await openAccount(em, {
    code: `test.${++n}`,
    type: opts.type ?? AccountType.LIABILITY,
    ownerKind: AccountOwnerKind.OTHER,
    currency: opts.currency ?? 'CNY',
    nonNegative: opts.nonNegative,
  });
  return acc.id;
}

/** Funds a liability account from an asset account (like a top-up from gateway clearing). */
async function fund(target: string, amount: bigint) {
  const source = await account({ type: AccountType.ASSET });
  await post(em, { key: `fund.${++n}`, description: 'fund', lines: [debit(source, amount), credit(target, amount)] });
}

async function rowCounts() {
  const [r] = await em.execute<{ entries: string; postings: string }[]>(
    `select (select count(*) from journal_entry) as entries, (select count(*) from posting) as postings`,
  );
  return { entries: Number(r!.entries), postings: Number(r!.postings) };
}

describe('post()', () => {
  it('moves money between accounts and keeps each balance on its normal side', async () => {
    const gateway = await account({ type: AccountType.ASSET });
    const purse = await account({ nonNegative: true });
    const entry = await post(em, { key: 'topup.1', description: 'top-up', lines: [debit(gateway, 5000n), credit(purse, 5000n)] });
    expect(entry.replayed).toBe(false);
    expect(entry.lines.map((l) => l.balanceAfter)).toEqual([5000n, 5000n]);
    expect(await balance(em, gateway)).toBe(5000n);
    expect(await balance(em, purse)).toBe(5000n);
  });

  it.each([
    ['an unbalanced entry', (a: string, b: string) => [debit(a, 100n), credit(b, 99n)], LedgerErrorCode.UNBALANCED],
    ['a single line', (a: string) => [debit(a, 100n)], LedgerErrorCode.TOO_FEW_LINES],
    ['a zero amount', (a: string, b: string) => [debit(a, 0n), credit(b, 0n)], LedgerErrorCode.INVALID_AMOUNT],
    ['an unknown account', (a: string) => [debit(a, 1n), credit('00000000-0000-4000-8000-000000000000', 1n)], LedgerErrorCode.UNKNOWN_ACCOUNT],
  ] as const)('refuses %s and writes nothing', async (_name, lines, code) => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    const before = await rowCounts();
    await expect(post(em, { key: `bad.${++n}`, description: 'bad', lines: lines(a, b) })).rejects.toMatchObject({ code });
    expect(await rowCounts()).toEqual(before);
  });

  it('refuses mixed currencies', async () => {
    const cny = await account({ type: AccountType.ASSET });
    const hkd = await account({ currency: 'HKD' });
    await expect(post(em, { key: 'mixed', description: 'x', lines: [debit(cny, 10n), credit(hkd, 10n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.MIXED_CURRENCIES,
    });
  });

  it('keeps a non-negative account at zero or above, and leaves no row behind when it refuses', async () => {
    const purse = await account({ nonNegative: true });
    const merchant = await account();
    await fund(purse, 300n);
    const before = await rowCounts();
    await expect(post(em, { key: 'overspend', description: 'x', lines: [debit(purse, 301n), credit(merchant, 301n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.INSUFFICIENT_FUNDS,
      accountId: purse,
    });
    expect(await rowCounts()).toEqual(before);
    expect(await balance(em, purse)).toBe(300n);
    await post(em, { key: 'spend-all', description: 'x', lines: [debit(purse, 300n), credit(merchant, 300n)] });
    expect(await balance(em, purse)).toBe(0n);
  });

  it('a refusal inside a caller transaction rolls back the caller work too', async () => {
    const purse = await account({ nonNegative: true });
    const merchant = await account();
    const before = await rowCounts();
    await expect(
      em.transactional(async (tx) => {
        await tx.execute(`insert into seed_run (step) values ('caller-work')`);
        await post(tx, { key: 'in-tx', description: 'x', lines: [debit(purse, 1n), credit(merchant, 1n)] });
      }),
    ).rejects.toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS });
    expect(await em.execute(`select * from seed_run where step = 'caller-work'`)).toEqual([]);
    expect(await rowCounts()).toEqual(before);
  });

  it('is idempotent by entry key: the same key posts once', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    const first = await post(em, { key: 'once', description: 'x', lines: [debit(a, 70n), credit(b, 70n)] });
    const again = await post(em, { key: 'once', description: 'x', lines: [debit(a, 70n), credit(b, 70n)] });
    expect(again).toMatchObject({ id: first.id, replayed: true });
    expect(await balance(em, b)).toBe(70n);
  });

  it('the same entry key with other lines is refused', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    await post(em, { key: 'reused', description: 'x', lines: [debit(a, 70n), credit(b, 70n)] });
    await expect(post(em, { key: 'reused', description: 'x', lines: [debit(a, 71n), credit(b, 71n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.ENTRY_KEY_REUSED,
    });
  });

  it('concurrent posts of one key move money once', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => post(db.orm.em.fork(), { key: 'race', description: 'x', lines: [debit(a, 5n), credit(b, 5n)] })),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(await balance(em, b)).toBe(5n);
  });

  it('posted entries cannot be changed or deleted in the database', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    const entry = await post(em, { key: 'frozen', description: 'x', lines: [debit(a, 5n), credit(b, 5n)] });
    await expect(em.execute(`update posting set amount = 6 where entry_id = ?`, [entry.id])).rejects.toThrow(/append-only/);
    await expect(em.execute(`delete from journal_entry where id = ?`, [entry.id])).rejects.toThrow(/append-only/);
  });
});

describe('openAccount()', () => {
  it('returns the existing account for the same code and terms, and refuses other terms', async () => {
    const terms = { code: 'open.once', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: true };
    const first = await openAccount(em, terms);
    expect((await openAccount(em, terms)).id).toBe(first.id);
    await expect(openAccount(em, { ...terms, nonNegative: false })).rejects.toMatchObject({ code: LedgerErrorCode.INVALID_ACCOUNT });
    await expect(openAccount(em, { ...terms, code: 'open.bad', currency: 'yuan' })).rejects.toMatchObject({ code: LedgerErrorCode.INVALID_ACCOUNT });
  });
});

describe('reversal', () => {
  it('posts the mirror image once and restores the balances', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    const entry = await post(em, { key: 'to-reverse', description: 'x', lines: [debit(a, 40n), credit(b, 40n)] });
    const reversal = await reverse(em, entry.id, { key: 'reversal', description: 'wrong amount' });
    expect(reversal.reversesId).toBe(entry.id);
    expect(reversal.lines.map((l) => l.amount)).toEqual([-40n, 40n]);
    expect(await balance(em, a)).toBe(0n);
    expect(await balance(em, b)).toBe(0n);
    await expect(reverse(em, entry.id, { key: 'reversal-2', description: 'again' })).rejects.toMatchObject({ code: LedgerErrorCode.ALREADY_REVERSED });
  });

  it('cannot take a non-negative account below zero', async () => {
    const purse = await account({ nonNegative: true });
    const merchant = await account();
    const topUp = await account({ type: AccountType.ASSET });
    const load = await post(em, { key: 'load', description: 'x', lines: [debit(topUp, 100n), credit(purse, 100n)] });
    await post(em, { key: 'spend', description: 'x', lines: [debit(purse, 60n), credit(merchant, 60n)] });
    await expect(reverse(em, load.id, { key: 'undo-load', description: 'x' })).rejects.toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS });
  });
});

describe('balances at a point in time', () => {
  it('reads the balance as it stood before later entries', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    await post(em, { key: 'pit.1', description: 'x', lines: [debit(a, 10n), credit(b, 10n)] });
    const [{ now }] = await em.execute<{ now: Date }[]>(`select clock_timestamp() as now`);
    await post(em, { key: 'pit.2', description: 'x', lines: [debit(a, 25n), credit(b, 25n)] });
    expect(await balanceAt(em, b, new Date(now))).toBe(10n);
    expect(await balanceAt(em, a, new Date(now))).toBe(10n);
    expect(await balanceAt(em, b, new Date())).toBe(35n);
    expect(await balanceAt(em, b, new Date(0))).toBe(0n);
  });
});

describe('checkLedger()', () => {
  it('finds nothing wrong in a ledger written by post()', async () => {
    expect(await checkLedger(em)).toEqual([]);
  });

  it('reports a balance that no longer matches its postings', async () => {
    const a = await account({ type: AccountType.ASSET });
    const b = await account();
    await post(em, { key: 'drift', description: 'x', lines: [debit(a, 10n), credit(b, 10n)] });
    await em.execute(`update ledger_account set balance = balance + 1 where id = ?`, [b]);
    const problems = await checkLedger(em);
    expect(problems).toEqual([expect.objectContaining({ rule: 'BALANCE_DIFFERS_FROM_POSTINGS', subject: b })]);
    await em.execute(`update ledger_account set balance = balance - 1 where id = ?`, [b]);
  });
});

/**
 * The ledger at the edges of what it accepts: the longest key and description, the largest line,
 * an account on two lines of one entry, a replay that differs only in an account, lookups by ids
 * that are not ids. Each case is a refusal code or an amount a caller would see. (Found by mutation
 * testing, docs/testing.md.)
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { LedgerErrorCode } from './ledger.errors.js';
import { balance, balanceAt, credit, debit, findAccount, findEntry, openAccount, post, reverse } from './ledger.service.js';
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
  const acc = await openAccount(em, { code: `edge.${++n}`, type: opts.type ?? AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: opts.nonNegative });
  return acc.id;
}

async function entryCount(): Promise<number> {
  const [r] = await em.execute<{ n: string }[]>(`select count(*) as n from journal_entry`);
  return Number(r!.n);
}

const MAX_LINE = 10n ** 15n;

describe('post() accepts the limits and refuses one past them', () => {
  it('a key of 200 characters posts; of 201, or empty, is refused', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: 'k'.repeat(200), description: 'x', lines: [debit(a, 1n), credit(b, 1n)] });
    expect(entry.key).toHaveLength(200);
    for (const key of ['k'.repeat(201), '']) {
      await expect(post(em, { key, description: 'x', lines: [debit(a, 1n), credit(b, 1n)] })).rejects.toMatchObject({ code: LedgerErrorCode.INVALID_ENTRY_KEY });
    }
  });

  it('a description of 500 characters posts; of 501, or of blanks only, is refused', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    await post(em, { key: `d.${++n}`, description: 'd'.repeat(500), lines: [debit(a, 1n), credit(b, 1n)] });
    for (const description of ['d'.repeat(501), '   ']) {
      await expect(post(em, { key: `d.${++n}`, description, lines: [debit(a, 1n), credit(b, 1n)] })).rejects.toMatchObject({
        code: LedgerErrorCode.INVALID_DESCRIPTION,
      });
    }
  });

  it('a line of 10^15 minor units posts; one more is refused, naming the line', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    await post(em, { key: `max.${++n}`, description: 'x', lines: [debit(a, MAX_LINE), credit(b, MAX_LINE)] });
    expect(await balance(em, b)).toBe(MAX_LINE);
    const before = await entryCount();
    await expect(post(em, { key: `max.${++n}`, description: 'x', lines: [debit(a, MAX_LINE + 1n), credit(b, MAX_LINE + 1n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.INVALID_AMOUNT,
      accountId: a,
    });
    await expect(post(em, { key: `max.${++n}`, description: 'x', lines: [credit(a, MAX_LINE + 1n), debit(b, MAX_LINE + 1n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.INVALID_AMOUNT,
      accountId: a,
    });
    expect(await entryCount()).toBe(before);
  });

  it('a line that would overflow a balance is refused as INVALID_AMOUNT, not as a database error', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    // A balance this close to PostgreSQL's BIGINT limit (9 223 372 036 854 775 807) takes 9 223 posts of the largest line.
    await em.execute(`update ledger_account set balance = 9223372036854775000 where id = ?`, [b]);
    await expect(post(em, { key: `overflow.${++n}`, description: 'x', lines: [debit(a, MAX_LINE), credit(b, MAX_LINE)] })).rejects.toMatchObject({
      code: LedgerErrorCode.INVALID_AMOUNT,
      accountId: b,
    });
    expect(await balance(em, b)).toBe(9_223_372_036_854_775_000n);
  });

  it('an amount that is a JavaScript number, not a bigint, is refused', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const lines = [
      { account: a, amount: 5 as unknown as bigint },
      { account: b, amount: -5 as unknown as bigint },
    ];
    await expect(post(em, { key: `num.${++n}`, description: 'x', lines })).rejects.toMatchObject({ code: LedgerErrorCode.INVALID_AMOUNT });
  });
});

describe('post() with accounts written differently', () => {
  it('an account id in upper case is the same account', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: `upper.${++n}`, description: 'x', lines: [debit(a.toUpperCase(), 30n), credit(b.toUpperCase(), 30n)] });
    expect(entry.lines.map((l) => l.account)).toEqual([a, b]);
    expect(await balance(em, b)).toBe(30n);
  });

  it('an account id that is not a uuid is an unknown account, not a database error', async () => {
    const a = await account({ type: AccountType.ASSET });
    for (const bad of [`x${a}`, `${a}x`]) {
      await expect(post(em, { key: `bad-id.${++n}`, description: 'x', lines: [debit(a, 1n), credit(bad, 1n)] })).rejects.toMatchObject({
        code: LedgerErrorCode.UNKNOWN_ACCOUNT,
        accountId: bad,
      });
    }
  });

  it('an account on two lines of one entry: each line reports the balance right after it, in the order given', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: `twice.${++n}`, description: 'x', lines: [debit(a, 10n), credit(b, 15n), debit(a, 5n)] });
    expect(entry.lines.map((l) => [l.account, l.balanceAfter])).toEqual([
      [a, 10n],
      [b, 15n],
      [a, 15n],
    ]);
    expect(await balance(em, a)).toBe(15n);
  });
});


  it('an account on two lines that would dip below zero between them is refused, though the two sum above zero', async () => {
    const [purse, other] = [await account({ nonNegative: true }), await account({ type: AccountType.ASSET })];
    await post(em, { key: `dip.fund.${++n}`, description: 'x', lines: [debit(other, 50n), credit(purse, 50n)] });
    const before = await entryCount();
    // The purse (a liability) is debited 100 first (50 → -50), then credited 200.
    await expect(
      post(em, { key: `dip.${++n}`, description: 'x', lines: [debit(purse, 100n), credit(other, 100n), credit(purse, 200n), debit(other, 200n)] }),
    ).rejects.toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS, accountId: purse });
    expect(await balance(em, purse)).toBe(50n);
    expect(await entryCount()).toBe(before);
    // In the other order each line keeps the purse at or above zero: posted, each line's balance after it.
    const entry = await post(em, { key: `dip.ok.${++n}`, description: 'x', lines: [credit(purse, 200n), debit(other, 200n), debit(purse, 100n), credit(other, 100n)] });
    expect(entry.lines.map((l) => l.balanceAfter)).toEqual([250n, 250n, 150n, 150n]);
    expect(await balance(em, purse)).toBe(150n);
  });
describe('replays and reversals', () => {
  it('the same key with the same amounts on another account is refused', async () => {
    const [a, b, c] = [await account({ type: AccountType.ASSET }), await account(), await account()];
    await post(em, { key: `replay.${++n}`, description: 'x', lines: [debit(a, 9n), credit(b, 9n)] });
    await expect(post(em, { key: `replay.${n}`, description: 'x', lines: [debit(a, 9n), credit(c, 9n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.ENTRY_KEY_REUSED,
    });
    await expect(post(em, { key: `replay.${n}`, description: 'x', lines: [debit(a, 9n), credit(b, 4n), credit(b, 5n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.ENTRY_KEY_REUSED,
    });
    // The lines posted first, then more: a replay would move nothing and report success.
    await expect(
      post(em, { key: `replay.${n}`, description: 'x', lines: [debit(a, 9n), credit(b, 9n), debit(a, 1n), credit(c, 1n)] }),
    ).rejects.toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
    expect(await balance(em, c)).toBe(0n);
  });

  it('a reversal whose key was used by an ordinary entry of the same lines is refused', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: `orig.${++n}`, description: 'x', lines: [debit(a, 7n), credit(b, 7n)] });
    const key = `mirror.${n}`;
    await post(em, { key, description: 'x', lines: [credit(a, 7n), debit(b, 7n)] });
    await expect(reverse(em, entry.id, { key, description: 'x' })).rejects.toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
  });

  it('reversing an entry that does not exist, or an id that is not an id, is UNKNOWN_ENTRY', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-an-id', 'x00000000-0000-4000-8000-000000000000', '00000000-0000-4000-8000-000000000000x']) {
      await expect(reverse(em, id, { key: `rev.${++n}`, description: 'x' })).rejects.toMatchObject({ code: LedgerErrorCode.UNKNOWN_ENTRY });
    }
  });
});

describe('lookups', () => {
  it('find an entry and an account by id; an id with anything around it finds nothing', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: `find.${++n}`, description: 'found', lines: [debit(a, 3n), credit(b, 3n)] });
    expect((await findEntry(em, entry.id))?.description).toBe('found');
    expect((await findAccount(em, a))?.id).toBe(a);
    for (const id of [`x${entry.id}`, `${entry.id}x`]) expect(await findEntry(em, id)).toBeUndefined();
    for (const id of [`x${a}`, `${a}x`]) expect(await findAccount(em, id)).toBeNull();
  });

  it('the balance of an unknown account is UNKNOWN_ACCOUNT, now and at any instant', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    await expect(balance(em, unknown)).rejects.toMatchObject({ code: LedgerErrorCode.UNKNOWN_ACCOUNT, accountId: unknown });
    await expect(balanceAt(em, unknown, new Date())).rejects.toMatchObject({ code: LedgerErrorCode.UNKNOWN_ACCOUNT, accountId: unknown });
  });
});

describe('openAccount() refuses a currency that is not three capital letters', () => {
  it.each(['CNYX', 'XCNY', 'cny', 'CN'])('%s', async (currency) => {
    await expect(openAccount(em, { code: `cur.${++n}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency })).rejects.toMatchObject({
      code: LedgerErrorCode.INVALID_ACCOUNT,
    });
  });
});

describe('openAccount() refuses a code taken by an account with other terms', () => {
  const base = { type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.MERCHANT_PAYABLE, ownerId: '11111111-1111-4111-8111-111111111111', currency: 'CNY', nonNegative: false };

  it.each([
    ['another type', { type: AccountType.ASSET }],
    ['another owner kind', { ownerKind: AccountOwnerKind.BILLER_PAYABLE }],
    ['another owner', { ownerId: '22222222-2222-4222-8222-222222222222' }],
    ['no owner', { ownerId: null }],
    ['another currency', { currency: 'HKD' }],
    ['non-negative', { nonNegative: true }],
  ])('%s', async (_name, change) => {
    const code = `terms.${++n}`;
    const first = await openAccount(em, { ...base, code });
    await expect(openAccount(em, { ...base, code, ...change })).rejects.toMatchObject({ code: LedgerErrorCode.INVALID_ACCOUNT });
    expect((await openAccount(em, { ...base, code })).id).toBe(first.id);
  });
});

/**
 * What each ledger refusal tells the operator who reads it: postJournalEntry and
 * reverseJournalEntry hand the ledger's message on as the userError's message, and the
 * operator has nothing else to act on (which account, which entry, by how much). A table of
 * refusals, each with its code and its exact message. (Found by mutation testing, docs/testing.md:
 * the tests held the codes, and a message could say nothing without any test noticing.)
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { LedgerErrorCode as Code } from './ledger.errors.js';
import { balance, balanceAt, credit, debit, openAccount, post, reverse } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;
const UNKNOWN = '0d9c1b0e-0000-4000-8000-00000000dead';

beforeAll(async () => {
  db = await freshDatabase();
  em = db.orm.em.fork();
});
afterAll(() => db?.close());

async function account(opts: { type?: AccountType; nonNegative?: boolean; currency?: string } = {}) {
  const acc = await openAccount(em, { code: `msg.${++n}`, type: opts.type ?? AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: opts.currency ?? 'CNY', nonNegative: opts.nonNegative });
  return acc.id;
}

const key = () => `msg-entry.${++n}`;

describe('each refusal says what is wrong, in words the operator can act on', () => {
  it.each<[string, () => Promise<unknown>, Code, string | ((ids: Record<string, string>) => string)]>([
    ['a currency that is not ISO 4217', () => openAccount(em, { code: `msg.${++n}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'cny' }), Code.INVALID_ACCOUNT, '"cny" is not an ISO 4217 currency code'],
    [
      'an account code taken with other terms',
      async () => {
        await openAccount(em, { code: 'msg.taken', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
        return openAccount(em, { code: 'msg.taken', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
      },
      Code.INVALID_ACCOUNT,
      'account code "msg.taken" is taken by an account with other terms',
    ],
    ['an empty entry key', async () => post(em, { key: '', description: 'x', lines: [debit(await account(), 1n), credit(await account(), 1n)] }), Code.INVALID_ENTRY_KEY, 'an entry key is 1 to 200 characters'],
    ['a blank description', async () => post(em, { key: key(), description: ' ', lines: [debit(await account(), 1n), credit(await account(), 1n)] }), Code.INVALID_DESCRIPTION, 'an entry has a description of 1 to 500 characters'],
    ['a single line', async () => post(em, { key: key(), description: 'x', lines: [debit(await account(), 1n)] }), Code.TOO_FEW_LINES, 'an entry has at least two lines'],
    ['a zero line', async () => post(em, { key: key(), description: 'x', lines: [debit(await account(), 0n), credit(await account(), 0n)] }), Code.INVALID_AMOUNT, 'a line amount is a non-zero integer of minor units within ±1000000000000000'],
    ['an unknown account', async () => post(em, { key: key(), description: 'x', lines: [debit(UNKNOWN, 1n), credit(await account(), 1n)] }), Code.UNKNOWN_ACCOUNT, `no ledger account ${UNKNOWN}`],
    [
      'two currencies in one entry',
      async () => post(em, { key: key(), description: 'x', lines: [debit(await account({ type: AccountType.ASSET }), 1n), credit(await account({ currency: 'HKD' }), 1n)] }),
      Code.MIXED_CURRENCIES,
      'an entry is in one currency; got CNY, HKD',
    ],
    ['debits 10 and credits 7', async () => post(em, { key: key(), description: 'x', lines: [debit(await account(), 10n), credit(await account(), 7n)] }), Code.UNBALANCED, 'debits and credits differ by 3 minor units'],
    ['debits 7 and credits 10', async () => post(em, { key: key(), description: 'x', lines: [debit(await account(), 7n), credit(await account(), 10n)] }), Code.UNBALANCED, 'debits and credits differ by -3 minor units'],
    ['a balance of an unknown account', () => balance(em, UNKNOWN), Code.UNKNOWN_ACCOUNT, `no ledger account ${UNKNOWN}`],
    ['a past balance of an unknown account', () => balanceAt(em, UNKNOWN, new Date()), Code.UNKNOWN_ACCOUNT, `no ledger account ${UNKNOWN}`],
    ['the reversal of an unknown entry', () => reverse(em, UNKNOWN, { key: key(), description: 'x' }), Code.UNKNOWN_ENTRY, `no journal entry ${UNKNOWN}`],
  ])('%s', async (_name, attempt, code, message) => {
    const refusal = await attempt().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refusal).toMatchObject({ name: 'LedgerError', code, message });
  });

  it('a second reversal names the entry already reversed', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = await post(em, { key: key(), description: 'x', lines: [debit(a, 5n), credit(b, 5n)] });
    await reverse(em, entry.id, { key: key(), description: 'undo' });
    await expect(reverse(em, entry.id, { key: key(), description: 'undo again' })).rejects.toMatchObject({ code: Code.ALREADY_REVERSED, message: `entry ${entry.id} is already reversed` });
  });

  it('a key posted before with other lines names the key', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const k = key();
    await post(em, { key: k, description: 'x', lines: [debit(a, 5n), credit(b, 5n)] });
    await expect(post(em, { key: k, description: 'x', lines: [debit(a, 6n), credit(b, 6n)] })).rejects.toMatchObject({ code: Code.ENTRY_KEY_REUSED, message: `entry key "${k}" was posted before with other lines` });
  });

  it('an account that may not go negative is named, with the account the refusal is about', async () => {
    const purse = await account({ nonNegative: true });
    const other = await account({ type: AccountType.ASSET });
    await expect(post(em, { key: key(), description: 'x', lines: [debit(purse, 1n), credit(other, 1n)] })).rejects.toMatchObject({
      code: Code.INSUFFICIENT_FUNDS,
      message: `account ${purse} may not go below zero`,
      accountId: purse,
    });
  });

  it('a balance that would overflow names the account', async () => {
    const [a, b] = [await account({ type: AccountType.ASSET }), await account()];
    const max = 10n ** 15n;
    // Reaching BIGINT's limit by posting takes 9 223 entries of the largest line: start the balance near it.
    await em.execute(`update ledger_account set balance = 9223372036854775000 where id = ?`, [b]);
    await expect(post(em, { key: key(), description: 'x', lines: [debit(a, max), credit(b, max)] })).rejects.toMatchObject({
      code: Code.INVALID_AMOUNT,
      message: `the balance of account ${b} would overflow`,
      accountId: b,
    });
  });
});

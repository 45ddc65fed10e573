import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import { checkLedger } from './ledger-check.js';
import { LedgerError, LedgerErrorCode } from './ledger.errors.js';
import { credit, debit, openAccount, post } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

const CLIENTS = 32;
const TRANSFERS = 2_000;
const ACCOUNTS = 20;
const GUARDED = 8;

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase({ poolMax: CLIENTS + 4 });
});
afterAll(() => db.close());

/** A deterministic generator, so a failure can be replayed with the same seed. */
function random(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
}

it(`${TRANSFERS} random transfers from ${CLIENTS} concurrent clients keep every invariant`, async () => {
  const em = db.orm.em.fork();
  const source = await openAccount(em, { code: 'source', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const accounts: { id: string; guarded: boolean; expected: bigint }[] = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    const guarded = i < GUARDED;
    const acc = await openAccount(em, { code: `acc.${i}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: guarded });
    // Guarded accounts start low so that many transfers out of them must be refused.
    const opening = guarded ? BigInt(100 * i) : 20_000n;
    if (opening > 0n) await post(em, { key: `open.${i}`, description: 'opening', lines: [debit(source.id, opening), credit(acc.id, opening)] });
    accounts.push({ id: acc.id, guarded, expected: opening });
  }
  const seed = Date.now() % 100_000;
  const rnd = random(seed);
  const plan = Array.from({ length: TRANSFERS }, (_, n) => {
    const from = Math.floor(rnd() * ACCOUNTS);
    const to = (from + 1 + Math.floor(rnd() * (ACCOUNTS - 1))) % ACCOUNTS;
    return { key: `t.${n}`, from, to, amount: BigInt(1 + Math.floor(rnd() * 1_500)) };
  });

  const accepted: typeof plan = [];
  const refused: typeof plan = [];
  let next = 0;
  const client = async () => {
    const fork = db.orm.em.fork();
    while (next < plan.length) {
      const t = plan[next++]!;
      try {
        await post(fork, { key: t.key, description: 'transfer', lines: [debit(accounts[t.from]!.id, t.amount), credit(accounts[t.to]!.id, t.amount)] });
        accepted.push(t);
      } catch (err) {
        if (!(err instanceof LedgerError) || err.code !== LedgerErrorCode.INSUFFICIENT_FUNDS) throw err;
        expect(accounts[t.from]!.guarded, `seed ${seed}: only guarded accounts refuse`).toBe(true);
        refused.push(t);
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, client));

  expect(accepted.length + refused.length).toBe(TRANSFERS);
  expect(refused.length, 'the guard was exercised').toBeGreaterThan(0);
  expect(await checkLedger(em)).toEqual([]);

  // Every balance is what the accepted transfers say, and no guarded account went below zero.
  for (const t of accepted) {
    accounts[t.from]!.expected -= t.amount;
    accounts[t.to]!.expected += t.amount;
  }
  const rows = await em.execute<{ id: string; balance: string; non_negative: boolean }[]>(`select id, balance, non_negative from ledger_account where code like 'acc.%'`);
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const acc of accounts) {
    expect(BigInt(byId.get(acc.id)!.balance), `seed ${seed}`).toBe(acc.expected);
    if (acc.guarded) expect(acc.expected >= 0n).toBe(true);
  }

  // A refused transfer left no row behind: no entry under its key, no posting of it.
  const keys = await em.execute<{ entry_key: string }[]>(`select entry_key from journal_entry where entry_key like 't.%'`);
  expect(keys.length).toBe(accepted.length);
  const written = new Set(keys.map((k) => k.entry_key));
  expect(refused.filter((t) => written.has(t.key))).toEqual([]);
  const [{ postings }] = await em.execute<{ postings: string }[]>(`select count(*) as postings from posting p join journal_entry e on e.id = p.entry_id where e.entry_key like 't.%'`);
  expect(Number(postings)).toBe(2 * accepted.length);
});

/**
 * Review of post() in one statement (session 22, issue 20, commit 40db76f): the key row, the entry,
 * the accounts locked in id order, each line's balance after it, the accounts moved and the
 * postings, all in one statement guarded by an `ok` computed from the locked balances. What a
 * cardholder or an operator would notice if it went wrong: a balance moved from a stale value (money
 * made or lost under concurrency), an entry half-written after a refusal, a refusal naming the wrong
 * account, a replay or reversal counted twice, a deadlock between two payments.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerErrorCode } from '../src/ledger/ledger.errors.js';
import { balance, credit, debit, openAccount, openAccountRef, post, postMany, reverse, type PostingLine } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { freshDatabase, type TestDatabase } from './support/database.js';

let db: TestDatabase;
let em: EntityManager;
let n = 0;

beforeAll(async () => {
  db = await freshDatabase({ poolMax: 12 });
  em = db.orm.em.fork();
});
afterAll(() => db.close());

async function account(opts: { type?: AccountType; nonNegative?: boolean } = {}): Promise<string> {
  const acc = await openAccount(em, { code: `review.${++n}`, type: opts.type ?? AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY', nonNegative: opts.nonNegative });
  return acc.id;
}

const count = async (sql: string, params: unknown[] = []) => Number((await em.execute<{ n: string }[]>(`select count(*) as n from ${sql}`, params))[0]!.n);

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** Until some session of this database waits on a lock (the second writer has started its statement and blocks). */
async function someoneWaitsOnALock(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [row] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`);
    if (Number(row!.n) > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no session ever waited on a lock');
}

/** Runs `first` in a transaction that stays open until `second` (another transaction) is blocked behind it; then commits it (or rolls it back). */
async function whileHeld<T>(first: (tx: EntityManager) => Promise<unknown>, second: () => Promise<T>, end: 'commit' | 'rollback' = 'commit'): Promise<T | Error> {
  const held = gate();
  const release = gate();
  const holder = db.orm.em
    .fork()
    .transactional(async (tx) => {
      await first(tx);
      held.open();
      await release.opened;
      if (end === 'rollback') throw new Error('holder rolls back');
    })
    .catch((e: unknown) => {
      if (end === 'commit') throw e;
    });
  await held.opened;
  const blocked = second().then(
    (v) => v,
    (e: unknown) => e as Error,
  );
  await someoneWaitsOnALock();
  release.open();
  await holder;
  return blocked;
}

describe('a balance is moved from its latest committed value', () => {
  it('a post() blocked behind another post() on the same purse moves it from the balance that one committed', async () => {
    const [cash, purse, shop] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true }), await account()];
    await post(em, { key: `epq.fund.${++n}`, description: 'load', lines: [debit(cash, 100n), credit(purse, 100n)] });
    const second = await whileHeld(
      (tx) => post(tx, { key: `epq.a.${++n}`, description: 'buy', lines: [debit(purse, 30n), credit(shop, 30n)] }),
      () => post(db.orm.em.fork(), { key: `epq.b.${++n}`, description: 'buy', lines: [debit(purse, 50n), credit(shop, 50n)] }),
    );
    expect(second).not.toBeInstanceOf(Error);
    expect((second as Awaited<ReturnType<typeof post>>).lines.map((l) => l.balanceAfter)).toEqual([20n, 80n]);
    expect(await balance(em, purse)).toBe(20n);
    expect(await balance(em, shop)).toBe(80n);
  });

  it('a post() that the other one leaves short is refused, naming the purse, though the purse covered it when its statement began', async () => {
    const [cash, purse, shop] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true }), await account()];
    await post(em, { key: `epq.fund.${++n}`, description: 'load', lines: [debit(cash, 60n), credit(purse, 60n)] });
    const key = `epq.short.${++n}`;
    const second = await whileHeld(
      (tx) => post(tx, { key: `epq.a.${++n}`, description: 'buy', lines: [debit(purse, 30n), credit(shop, 30n)] }),
      () => post(db.orm.em.fork(), { key, description: 'buy', lines: [debit(purse, 50n), credit(shop, 50n)] }),
    );
    expect(second).toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS, accountId: purse });
    expect(await balance(em, purse)).toBe(30n);
    expect(await count(`journal_entry_key where entry_key = ?`, [key])).toBe(0);
  });

  it('a post() blocked behind a postMany() on the same purse moves it from what postMany() committed', async () => {
    const [cash, purse, shop] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true }), await account()];
    await post(em, { key: `epq.fund.${++n}`, description: 'load', lines: [debit(cash, 100n), credit(purse, 100n)] });
    const second = await whileHeld(
      (tx) =>
        postMany(tx, [
          { key: `epq.many.${++n}`, description: 'buy', lines: [debit(purse, 10n), credit(shop, 10n)] },
          { key: `epq.many.${++n}`, description: 'buy', lines: [debit(purse, 15n), credit(shop, 15n)] },
        ]),
      () => post(db.orm.em.fork(), { key: `epq.b.${++n}`, description: 'buy', lines: [debit(purse, 70n), credit(shop, 70n)] }),
    );
    expect(second).not.toBeInstanceOf(Error);
    expect(await balance(em, purse)).toBe(5n);
    // And a postMany() behind a post(): the same.
    const third = await whileHeld(
      (tx) => post(tx, { key: `epq.c.${++n}`, description: 'buy', lines: [debit(purse, 5n), credit(shop, 5n)] }),
      () => postMany(db.orm.em.fork(), [{ key: `epq.many.${++n}`, description: 'buy', lines: [debit(purse, 1n), credit(shop, 1n)] }]),
    );
    expect(third).toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS, accountId: purse });
    expect(await balance(em, purse)).toBe(0n);
    expect(await balance(em, shop)).toBe(100n);
  });
  it('a clearing entry on many accounts blocked behind payments on two of them moves every account from its latest balance', async () => {
    const settlement = await account({ type: AccountType.ASSET });
    const [cash, shop] = [await account({ type: AccountType.ASSET }), await account()];
    const merchants = await Promise.all(Array.from({ length: 12 }, () => account({ nonNegative: true })));
    for (const m of merchants) await post(em, { key: `mepq.fund.${++n}`, description: 'x', lines: [debit(cash, 100n), credit(m, 100n)] });
    const lines: PostingLine[] = [];
    for (let i = 0; i < 240; i++) lines.push(credit(merchants[i % 12]!, 1n));
    lines.push(debit(settlement, 240n));
    const [m3, m9] = [merchants[3]!, merchants[9]!];
    const clearing = await whileHeld(
      async (tx) => {
        await post(tx, { key: `mepq.a.${++n}`, description: 'buy', lines: [debit(m3, 60n), credit(shop, 60n)] });
        await post(tx, { key: `mepq.b.${++n}`, description: 'buy', lines: [debit(m9, 100n), credit(shop, 100n)] });
      },
      () => post(db.orm.em.fork(), { key: `mepq.clear.${++n}`, description: 'clearing', lines }),
    );
    expect(clearing).not.toBeInstanceOf(Error);
    expect(await balance(em, m3)).toBe(40n + 20n);
    expect(await balance(em, m9)).toBe(0n + 20n);
    expect(await balance(em, merchants[0]!)).toBe(120n);
    // The last line on m9 (line 237) is its balance after all 20 of its lines, from the 0 the payment left.
    expect((clearing as Awaited<ReturnType<typeof post>>).lines[237]!.balanceAfter).toBe(20n);
  });
});

describe('concurrent posts of the same key, and reversals', () => {
  it('the same key posted while the first is still open: the second waits and is a replay of it, and the money moves once', async () => {
    const [cash, purse] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = { key: `same.${++n}`, description: 'load', lines: [debit(cash, 40n), credit(purse, 40n)] };
    let firstId = '';
    const second = await whileHeld(
      async (tx) => (firstId = (await post(tx, entry)).id),
      () => post(db.orm.em.fork(), entry),
    );
    expect(second).toMatchObject({ replayed: true, id: firstId });
    expect(await balance(em, purse)).toBe(40n);
    expect(await count(`posting where account_id = ?`, [purse])).toBe(1);
  });

  it('the same key posted while the first is open and then rolls back: the second posts it, once', async () => {
    const [cash, purse] = [await account({ type: AccountType.ASSET }), await account()];
    const entry = { key: `same.${++n}`, description: 'load', lines: [debit(cash, 40n), credit(purse, 40n)] };
    const second = await whileHeld(
      (tx) => post(tx, entry),
      () => post(db.orm.em.fork(), entry),
      'rollback',
    );
    expect(second).toMatchObject({ replayed: false });
    expect(await balance(em, purse)).toBe(40n);
    expect(await count(`posting where account_id = ?`, [purse])).toBe(1);
  });

  it('the same key with other lines while the first is open: refused once the first commits, nothing moved twice', async () => {
    const [cash, purse] = [await account({ type: AccountType.ASSET }), await account()];
    const key = `same.${++n}`;
    const second = await whileHeld(
      (tx) => post(tx, { key, description: 'load', lines: [debit(cash, 40n), credit(purse, 40n)] }),
      () => post(db.orm.em.fork(), { key, description: 'load', lines: [debit(cash, 41n), credit(purse, 41n)] }),
    );
    expect(second).toMatchObject({ code: LedgerErrorCode.ENTRY_KEY_REUSED });
    expect(await balance(em, purse)).toBe(40n);
  });

  it('two reversals of one entry at once: the second is ALREADY_REVERSED, and the money comes back once', async () => {
    const [cash, purse] = [await account({ type: AccountType.ASSET }), await account()];
    const original = await post(em, { key: `rev.${++n}`, description: 'load', lines: [debit(cash, 25n), credit(purse, 25n)] });
    const second = await whileHeld(
      (tx) => reverse(tx, original.id, { key: `rev.a.${++n}`, description: 'undo' }),
      () => reverse(db.orm.em.fork(), original.id, { key: `rev.b.${++n}`, description: 'undo' }),
    );
    expect(second).toMatchObject({ code: LedgerErrorCode.ALREADY_REVERSED });
    expect(await balance(em, purse)).toBe(0n);
    expect(await balance(em, cash)).toBe(0n);
  });

  it('a reversal of a reversal puts the money back as the original had it, and is itself reversed at most once', async () => {
    const [cash, purse] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true })];
    const original = await post(em, { key: `rr.${++n}`, description: 'load', lines: [debit(cash, 25n), credit(purse, 25n)] });
    const undo = await reverse(em, original.id, { key: `rr.u.${++n}`, description: 'undo' });
    const redo = await reverse(em, undo.id, { key: `rr.r.${++n}`, description: 'redo' });
    expect(redo.lines.map((l) => l.balanceAfter)).toEqual([25n, 25n]);
    expect(await balance(em, purse)).toBe(25n);
    await expect(reverse(em, undo.id, { key: `rr.r2.${++n}`, description: 'redo again' })).rejects.toMatchObject({ code: LedgerErrorCode.ALREADY_REVERSED });
    expect(await balance(em, purse)).toBe(25n);
  });
});

describe('a refusal leaves nothing written', () => {
  it('a caller that catches INSUFFICIENT_FUNDS and commits its transaction commits nothing of it: the key is free afterwards', async () => {
    const [cash, purse, shop] = [await account({ type: AccountType.ASSET }), await account({ nonNegative: true }), await account()];
    await post(em, { key: `ref.fund.${++n}`, description: 'load', lines: [debit(cash, 10n), credit(purse, 10n)] });
    const key = `ref.${++n}`;
    let refusal: unknown;
    await db.orm.em.fork().transactional(async (tx) => {
      refusal = await post(tx, { key, description: 'buy', lines: [debit(purse, 11n), credit(shop, 11n)] }).catch((e: unknown) => e);
    });
    expect(refusal).toMatchObject({ code: LedgerErrorCode.INSUFFICIENT_FUNDS, accountId: purse });
    expect(await count(`journal_entry_key where entry_key = ?`, [key])).toBe(0);
    expect(await count(`journal_entry where entry_key = ?`, [key])).toBe(0);
    expect(await balance(em, purse)).toBe(10n);
    // The key was not taken: posted now, for real.
    const posted = await post(em, { key, description: 'buy', lines: [debit(purse, 10n), credit(shop, 10n)] });
    expect(posted.replayed).toBe(false);
    expect(await balance(em, purse)).toBe(0n);
  });

  it('an overflow names the account that overflows, and leaves nothing written', async () => {
    const [big, third] = [await account({ type: AccountType.ASSET }), await account()];
    // Set up near the top of bigint (a test database only): no entry could get there in a test's time.
    await em.execute(`update ledger_account set balance = 9223372036854775000 where id = ?`, [big]);
    const key = `ovf.${++n}`;
    // `third` comes first or last in id order; `big` is the one that overflows (a debit-normal account debited).
    await expect(post(em, { key, description: 'x', lines: [credit(third, 1000n), debit(big, 1000n)] })).rejects.toMatchObject({
      code: LedgerErrorCode.INVALID_AMOUNT,
      accountId: big,
    });
    expect(await count(`journal_entry_key where entry_key = ?`, [key])).toBe(0);
    expect(await balance(em, big)).toBe(9223372036854775000n);
    // Exactly to the top is within it.
    const top = await post(em, { key: `ovf.top.${++n}`, description: 'x', lines: [credit(third, 807n), debit(big, 807n)] });
    expect(top.lines[1]!.balanceAfter).toBe(2n ** 63n - 1n);
  });

  it('a remembered account whose row is gone is UNKNOWN_ACCOUNT, the transaction aborted, the key free, and the account not remembered', async () => {
    const code = `gone.${++n}`;
    const gone = await openAccountRef(em, { code, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    // Remembered once seen committed: read again through a fresh fork.
    await openAccountRef(db.orm.em.fork(), { code, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const cash = await account({ type: AccountType.ASSET });
    await em.execute(`delete from ledger_account where id = ?`, [gone.id]);
    const key = `gone.${++n}`;
    let refusal: unknown;
    let afterwards: unknown;
    await db.orm.em.fork().transactional(async (tx) => {
      refusal = await post(tx, { key, description: 'x', lines: [debit(cash, 5n), credit(gone.id, 5n)] }).catch((e: unknown) => e);
      afterwards = await tx.execute(`select 1`).catch((e: unknown) => e);
    });
    expect(refusal).toMatchObject({ code: LedgerErrorCode.UNKNOWN_ACCOUNT, accountId: gone.id });
    expect(afterwards).toMatchObject({ code: '25P02' });
    expect(await count(`journal_entry_key where entry_key = ?`, [key])).toBe(0);
    expect(await balance(em, cash)).toBe(0n);
    // Opened again under its code (a new row, a new id): posts.
    const again = await openAccountRef(db.orm.em.fork(), { code, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    expect(again.id).not.toBe(gone.id);
    await post(db.orm.em.fork(), { key, description: 'x', lines: [debit(cash, 5n), credit(again.id, 5n)] });
    expect(await balance(em, again.id)).toBe(5n);
  });
});

describe('entries of many lines, and many entries at once', () => {
  it('a clearing entry of 6,000 lines on 40 accounts, each on many lines: every line its balance after it, every account moved once by its sum', async () => {
    const settlement = await account({ type: AccountType.ASSET });
    const merchants = await Promise.all(Array.from({ length: 40 }, () => account({ nonNegative: true })));
    const lines: PostingLine[] = [];
    let total = 0n;
    for (let i = 0; i < 5999; i++) {
      const amount = BigInt((i % 97) + 1);
      lines.push(credit(merchants[i % 40]!, amount));
      total += amount;
    }
    lines.push(debit(settlement, total));
    const entry = await post(em, { key: `clear.${++n}`, description: 'clearing', lines });
    const running = new Map<string, bigint>();
    const expected = lines.map((l) => {
      const after = (running.get(l.account) ?? 0n) + (l.account === settlement ? l.amount : -l.amount);
      running.set(l.account, after);
      return after;
    });
    expect(entry.lines.map((l) => l.balanceAfter)).toEqual(expected);
    for (const m of merchants.slice(0, 3)) expect(await balance(em, m)).toBe(running.get(m));
    expect(await count(`posting where entry_id = ?`, [entry.id])).toBe(6000);
    // As read back (a replay): the same lines and balances.
    const replay = await post(em, { key: entry.key, description: 'clearing', lines });
    expect(replay.replayed).toBe(true);
    expect(replay.lines.map((l) => l.balanceAfter)).toEqual(expected);
  });

  it('posts on the same accounts in opposite line orders, many at once, never deadlock and all land', async () => {
    const [a, b, c] = [await account({ type: AccountType.ASSET }), await account(), await account()];
    const orders: PostingLine[][] = [
      [debit(a, 1n), credit(b, 1n), credit(c, 1n), debit(a, 1n)],
      [credit(c, 1n), debit(a, 1n), debit(a, 1n), credit(b, 1n)],
      [credit(b, 1n), credit(c, 1n), debit(a, 2n)],
    ];
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const fork = db.orm.em.fork();
        return fork
          .transactional(async (tx) => post(tx, { key: `dl.${i}.${randomUUID()}`, description: 'x', lines: orders[i % 3]! }))
          .then(
            () => 'ok',
            (e: unknown) => String((e as { code?: string }).code ?? e),
          );
      }),
    );
    expect(results.filter((r) => r !== 'ok')).toEqual([]);
    expect(await balance(em, a)).toBe(60n);
    expect(await balance(em, b)).toBe(30n);
    expect(await balance(em, c)).toBe(30n);
  });
});

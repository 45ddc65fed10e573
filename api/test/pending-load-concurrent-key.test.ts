/**
 * Found by review (issue 20, online half), seen failing first: recordPendingLoad (a merchant's refund, a replaced card's balance,
 * a proved purchase returned to the card) is idempotent by its key. Commit d229347 moved its ledger
 * entry after the top-up insert; the entry's unique key used to be what a concurrent duplicate
 * waited on before it looked for the top-up. Two transactions recording the same key at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCard } from '../src/cards/cards.service.js';
import { pendingLoadAccount } from '../src/ledger/accounts.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { recordPendingLoad } from '../src/topups/pending-load-records.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testCardNumber } from './support/card-sessions.js';

let db: TestDatabase;
let cardId: string;
let fromAccountId: string;
beforeAll(async () => {
  db = await freshDatabase();
  const em = db.orm.em.fork();
  const { cardCompany } = await createCity(em, { code: 'RVE', name: 'Rev E', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Rev E Card' });
  cardId = (await issueCard(em, cardCompany.id, { cardNumber: testCardNumber('623177911111'), asn: 'A1B2C3D4E5F60718293A', cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' })).id;
  // The card company's pending loads exists already (it does after its first load or refund).
  await pendingLoadAccount(em, cardCompany.id, 'CNY');
  fromAccountId = (await openAccount(em, { code: 'rev-e-source', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.MERCHANT_PAYABLE, currency: 'CNY' })).id;
});
afterAll(async () => {
  await db?.close();
});

describe('the same pending load recorded twice at once', () => {
  it('the second waits for the first and answers the same top-up (one top-up, one entry), not a unique violation', async () => {
    const load = { origin: 'REFUND' as const, cardId, key: 'rev-e-key', amount: 100n, currency: 'CNY', fromAccountId, description: 'rev e', metadata: {}, cause: 'rev e' };
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let recorded!: () => void;
    const firstRecorded = new Promise<void>((r) => (recorded = r));
    const first = db.orm.em.fork().transactional(async (tx) => {
      const r = await recordPendingLoad(tx, load);
      recorded();
      await held;
      return r.topUpId;
    });
    await firstRecorded;
    const second = db.orm.em.fork().transactional(async (tx) => (await recordPendingLoad(tx, load)).topUpId).then(
      (id) => ({ id }),
      (err: unknown) => ({ err: String(err) }),
    );
    // Until the second waits on the first's uncommitted rows (at most 5 s).
    for (let i = 0; i < 100; i++) {
      const [row] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`);
      if (Number(row!.n) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    release();
    const firstId = await first;
    expect(await second).toEqual({ id: firstId });
    const [n] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from top_up where idempotency_key = 'rev-e-key'`);
    expect(Number(n!.n)).toBe(1);
  });
});

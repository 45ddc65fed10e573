/**
 * Found by review of s21-p2 (recordPendingLoad in one statement). The race is older than the
 * branch (the old three-statement version had it too); the branch rewrote exactly this statement.
 *
 * recordPendingLoad follows the card's replacement chain without locking the card it ends at.
 * replaceCard locks the old card, marks it REPLACED and moves its PAID pending loads to the new
 * card (movePendingLoads). A refund (or a proved purchase returned) recorded while a replacement of
 * the same card is in flight reads the chain in a snapshot where the card is not replaced yet,
 * waits on the replacement's row lock only in the foreign-key check of its insert, and then
 * commits its PAID top-up on the old, REPLACED (blacklisted) card: movePendingLoads ran before it
 * existed, the balance transfer moves the purse only, and a REFUND top-up cannot be spent or
 * refunded through the gateway. The value sits in the card company's pending loads for a card
 * that will never take it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCard, replaceCard } from '../src/cards/cards.service.js';
import { pendingLoadAccount } from '../src/ledger/accounts.js';
import { openAccount } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { recordPendingLoad } from '../src/topups/pending-load-records.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { testCardNumber } from './support/card-sessions.js';

let db: TestDatabase;
let cardCompanyId: string;
let cardId: string;
let fromAccountId: string;
beforeAll(async () => {
  db = await freshDatabase();
  const em = db.orm.em.fork();
  const { cardCompany } = await createCity(em, { code: 'RVR', name: 'Rev R', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Rev R Card' });
  cardCompanyId = cardCompany.id;
  cardId = (await issueCard(em, cardCompany.id, { cardNumber: testCardNumber('623177922222'), asn: 'B1B2C3D4E5F60718293A', cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' })).id;
  await pendingLoadAccount(em, cardCompany.id, 'CNY');
  fromAccountId = (await openAccount(em, { code: 'rev-r-source', type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.MERCHANT_PAYABLE, currency: 'CNY' })).id;
});
afterAll(async () => {
  await db?.close();
});

describe('a pending load recorded while the card is being replaced', () => {
  it('ends on the new card (the value follows the holder), not on the REPLACED one', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let replacedTo!: (id: string) => void;
    const newCard = new Promise<string>((r) => (replacedTo = r));
    // The card company replaces the card; its transaction is still open (the rest of its work, the commit).
    const replacement = db.orm.em.fork().transactional(async (tx) => {
      const { card } = await replaceCard(tx, cardCompanyId, cardId, {
        newCard: { cardNumber: testCardNumber('623177922222'), asn: 'B1B2C3D4E5F60718293B', cardType: 'CPU', keyVersion: 1, issuedOn: '2026-02-01', expiresOn: '2031-02-01' },
        by: 'review',
        transferDelaySeconds: 3600,
      });
      replacedTo(card.id);
      await held;
    });
    const newCardId = await newCard;
    // A merchant's refund to the card, at that moment.
    const load = { origin: 'REFUND' as const, cardId, key: 'rev-r-key', amount: 100n, currency: 'CNY', fromAccountId, description: 'rev r', metadata: {}, cause: 'rev r' };
    const refund = db.orm.em.fork().transactional(async (tx) => (await recordPendingLoad(tx, load)).topUpId);
    // Until the refund waits on the replacement (at most 5 s), then the replacement commits.
    for (let i = 0; i < 100; i++) {
      const [row] = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()`);
      if (Number(row!.n) > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    release();
    await replacement;
    const topUpId = await refund;

    const [row] = await db.orm.em.fork().execute<{ card_id: string; status: string; card_status: string }[]>(
      `select t.card_id, t.status, c.status as card_status from top_up t join card c on c.id = t.card_id where t.id = ?`,
      [topUpId],
    );
    // On the branch: { card_id: <old card>, status: 'PAID', card_status: 'REPLACED' }.
    expect(row).toEqual({ card_id: newCardId, status: 'PAID', card_status: 'ACTIVE' });
  });
});

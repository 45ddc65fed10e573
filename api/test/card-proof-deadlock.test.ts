/**
 * Review of fd7aa90 (a message ended by a deadlock is run again): a deadlock that ends the booking
 * of a purchase the card proved (GET TRANSACTION PROVE) is not run again. bookProven runs in a
 * savepoint (transaction-proofs.ts settleFromProof), whose catch takes any error for "the purpose
 * cannot take it": the 40P01 is written into the audit as `unbooked`, the session goes on, and its
 * own purchase moves the card's offline counter past the lost one, which no later session asks
 * about again. The card paid twice, the merchant and the purse shadow saw one payment.
 * Real HTTP on the world's API process, the SDK's virtual card. The other transaction's cycle
 * (the purse, then the proving session's row) is made by hand, as in card-purchase-lock-order.test.ts.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import {
  apiClient,
  auditOf,
  balanceOnCard,
  expireSession,
  issueCard,
  lastMessageLost,
  newReader,
  purseBalance,
  sessionsOf,
  sessionUuid,
  type TestReader,
  useCardSessionWorld,
  waitForBlocked,
  holdAccountThen,
} from './support/card-sessions.js';

const world = useCardSessionWorld();

let lockOrm: Orm;
let shop: TestReader;
let desk: TestReader;
let merchant: OneCardClient;
let issuer: OneCardClient;

beforeAll(async () => {
  lockOrm = await openOrm(world.db.url);
  const m = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Proof Deadlock Shop' });
  shop = await newReader(world, 'PROOF-TILL', world.gz, { kind: 'MERCHANT', id: m.id });
  desk = await newReader(world, 'PROOF-COUNTER', world.gz);
  merchant = await apiClient(world, 'MERCHANT', m.id, ['payments:write']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
});
afterAll(async () => {
  await lockOrm?.close(true);
});

const till = () => sessionsOf(merchant, () => shop);
const counter = () => sessionsOf(issuer, () => desk);

it('a deadlock that ends the booking of a proved purchase: the message is run again and the lost purchase is booked, not passed over for good', async () => {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  expect((await counter().agent(c).run(await counter().open('LOAD', 1_000))).state).toBe('COMPLETED');
  const purse = `card.${c.asn}.purse.CNY`;

  // A purchase of 200 whose last answer was lost after the card debited.
  const lost = await till().open('PURCHASE', 200);
  await sessionsOf(lastMessageLost(world, 16)['the app dies after the card answered']!(merchant), () => shop).agent(c, shop).run(lost).catch(() => undefined);
  await expireSession(world, lost.id);
  expect(await balanceOnCard(c)).toBe(800);

  // The next purchase proves it first. Meanwhile another transaction holds the purse and then wants
  // the proving session's row (which the message holds): a cycle PostgreSQL ends, and the message,
  // which waited first, is the one ended (40P01), inside bookProven's savepoint.
  const next = await till().open('PURCHASE', 300);
  const other = holdAccountThen(lockOrm, purse, (tx) => tx.execute(`select id from card_session where id = ? for update`, [sessionUuid(next.id)]));
  await other.held;
  const paying = till().agent(c).run(next);
  try {
    await waitForBlocked(lockOrm, 'ledger_account');
  } finally {
    other.goOn();
    await other.done;
  }
  const finished = await paying;
  expect(other.failure, 'the other transaction failed').toBeUndefined();
  expect(finished.state).toBe('COMPLETED');
  expect(await balanceOnCard(c)).toBe(500);

  // Another tap: whatever the proof round left open is asked about again here.
  expect((await counter().agent(c).run(await counter().open('BALANCE'))).state).toBe('COMPLETED');
  const lostAudit = await world.db.orm.em.fork().execute<{ outcome: string; detail: Record<string, unknown> }[]>(
    `select outcome, detail from card_session_audit where session_id = ? and step = 'proved' order by id`,
    [sessionUuid(lost.id)],
  );
  // On main the purse shadow keeps 700 while the card holds 500, for good, and the lost session's
  // audit says [{ outcome: 'REFUSED', detail: { unbooked: 'deadlock detected …' } }].
  expect(await purseBalance(world, c.asn), 'the purse shadow against the card’s 500').toBe(500n);
  expect(lostAudit.map((a) => ({ outcome: a.outcome, unbooked: a.detail.unbooked }))).toEqual([{ outcome: 'ACCEPTED', unbooked: undefined }]);
  expect((await auditOf(world, lost.id)).at(-1)).toMatchObject({ step: 'proved', outcome: 'ACCEPTED' });
});

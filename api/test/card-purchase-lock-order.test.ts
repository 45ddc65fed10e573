/**
 * An online purchase and an offline upload of the same card must take their locks in one order.
 * An offline upload (settlement/offline-booking.ts) locks the card's purse (and the payables), then
 * moves the card's counter on. The purchase's last message used to move the counter first and then
 * debit the purse: with both running for one card (a gate's rides of this morning uploaded while the
 * holder pays at a shop) each held what the other wanted, and PostgreSQL ended one of them with a
 * deadlock error. Real HTTP on the world's API process, the SDK's virtual card.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneCardClient, ReaderAgent, type VirtualCpuCard, VirtualCardTransport } from '../../sdk-js/src/index.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, issueCard, newReader, purseBalance, separateKeysOf, sessionsOf, type TestReader, holdAccountThen, useCardSessionWorld, waitForBlocked } from './support/card-sessions.js';

const world = useCardSessionWorld();
type Requester = Pick<OneCardClient, 'request'>;

let lockOrm: Orm;
let till: TestReader;
let merchant: Requester;
let issuer: Requester;
let counterReader: TestReader;

beforeAll(async () => {
  lockOrm = await openOrm(world.db.url);
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Lock Order Shop' });
  till = await newReader(world, 'LOCK-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  counterReader = await newReader(world, 'LOCK-COUNTER', world.gz);
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write', 'payments:read']);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
});
afterAll(async () => {
  await lockOrm?.close(true);
});

async function loadedCard(loaded: number): Promise<VirtualCpuCard> {
  const c = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const counter = sessionsOf(issuer, () => counterReader);
  expect((await counter.agent(c).run(await counter.open('LOAD', loaded))).state).toBe('COMPLETED');
  return c;
}

/** A purchase on the till run by the SDK's reader agent, whose last message (seq 2) is sent only when `beforeLastMessage` resolves. */
async function purchaseWithHeldLastMessage(c: VirtualCpuCard, amount: number, beforeLastMessage: () => Promise<void>, madePayment?: (uuid: string) => void) {
  const key = randomUUID();
  const made = await merchant.request<{ createPayment: { payment: { id: string } } }>(
    `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`,
    { input: { amount, currency: 'CNY', orderReference: key, idempotencyKey: key } },
  );
  const opened = await merchant.request<{ openCardSession: { session: { id: string; challenge: string } } }>(
    `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`,
    { input: { reader: till.id, operation: 'PURCHASE', payment: made.createPayment.payment.id } },
  );
  madePayment?.(fromGlobalId(made.createPayment.payment.id, 'Payment').id);
  const { send } = sessionsOf(merchant, () => till);
  const agent = new ReaderAgent({
    deviceKey: till.deviceKeyPem,
    nationalCertificatePem: till.nationalPem,
    cityCertificatePem: till.cityPem,
    trustedCertificatesPem: till.trustedCertificatesPem,
    ...separateKeysOf(till),
    transport: new VirtualCardTransport(c),
    send: async (message) => {
      if (message.seq === 2) await beforeLastMessage();
      return send(message);
    },
  });
  return agent.run(opened.openCardSession.session);
}

it('an upload holding the card’s purse while the purchase’s last message runs: both finish, the upload moves the counter on without a deadlock, the purchase is booked once', async () => {
  const c = await loadedCard(5_000);
  const purse = `card.${c.asn}.purse.CNY`;

  // The upload's order (offline-booking.ts): the purse locked first, the counter moved on after.
  const upload = holdAccountThen(lockOrm, purse, (tx) =>
    tx.execute(
      `insert into card_counter (asn, offline_counter) values (?, 0) on conflict (asn) do update set offline_counter = greatest(card_counter.offline_counter, excluded.offline_counter), updated_at = now()`,
      [c.asn],
    ),
  );
  let lastMessageSent!: () => void;
  const sentLast = new Promise<void>((r) => (lastMessageSent = r));
  const purchase = purchaseWithHeldLastMessage(c, 1_200, async () => {
    await upload.held;
    lastMessageSent();
  });
  await sentLast;
  try {
    // The purchase waits for the purse the upload holds…
    await waitForBlocked(lockOrm, 'ledger_account');
  } finally {
    // …and the upload goes on to the counter.
    upload.goOn();
    await upload.done;
  }
  const finished = await purchase;
  // On the branch: the purchase held the counter while it waited for the purse; one of the two was
  // ended by PostgreSQL's deadlock detection (40P01).
  expect(upload.failure, 'the upload failed').toBeUndefined();
  expect(finished.state).toBe('COMPLETED');
  expect(await purseBalance(world, c.asn)).toBe(3_800n);
  const [counter] = await world.db.orm.em.fork().execute<{ offline_counter: number }[]>(`select offline_counter from card_counter where asn = ?`, [c.asn]);
  expect(counter!.offline_counter).toBe(1);
});

it('a deadlock PostgreSQL breaks by ending the purchase’s last message: the message is run again and the purchase completes, never an internal error', async () => {
  const c = await loadedCard(5_000);
  const purse = `card.${c.asn}.purse.CNY`;
  let paymentId!: string;
  // Another transaction that holds the purse and then wants the payment, which the message holds:
  // a cycle only PostgreSQL can end. The message waited first, so it is the one ended (40P01).
  const other = holdAccountThen(lockOrm, purse, (tx) => tx.execute(`select id from payment where id = ? for update`, [paymentId]));
  let lastMessageSent!: () => void;
  const sentLast = new Promise<void>((r) => (lastMessageSent = r));
  const purchase = purchaseWithHeldLastMessage(c, 700, async () => {
    await other.held;
    lastMessageSent();
  }, (id) => (paymentId = id));
  await sentLast;
  try {
    await waitForBlocked(lockOrm, 'ledger_account');
  } finally {
    other.goOn();
    await other.done;
  }
  // On the branch: the message's transaction, ended by the deadlock, answered INTERNAL_SERVER_ERROR
  // after the card had debited, and the payment stayed PROCESSING.
  const finished = await purchase;
  expect(other.failure, 'the other transaction failed').toBeUndefined();
  expect(finished.state).toBe('COMPLETED');
  expect(await purseBalance(world, c.asn)).toBe(4_300n);
  const entries = await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from journal_entry where entry_key like ?`, [`payment:${paymentId}%`]);
  expect(entries[0]!.n).toBe('1');
});

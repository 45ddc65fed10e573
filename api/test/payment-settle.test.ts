/**
 * A payment paid by the card (payment-card-step.ts `settle`) is recorded for everyone who acts on
 * it next: the merchant's ledger entry (what its payment shows), the clearing item settlement pays
 * the merchant from, the payment's card, and its payment.succeeded event; a payment of a merchant
 * suspended since the session opened is refused before the card pays. Written for the mutation run
 * of payment-card-step.ts (docs/testing.md, payments). Over real HTTP with virtual cards.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { fromGlobalId, toGlobalId } from '../src/graphql/global-id.js';
import { auditOf, balanceOnCard, createPaymentAs, issueCard, OPEN, paymentParties, purseBalance, sessionsOf, sessionUuid, type TestReader, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import type { bearerClient } from './support/oauth.js';

const world = useCardSessionWorld();

let merchantId: string;
let merchant: OneCardClient;
let issuer: OneCardClient;
let counter: TestReader;
let app: ReturnType<typeof bearerClient>;
let home: TestReader;
let holderId: string;

// Parties only: no payment in a hook (docs/testing.md: code run in a hook is tried against every test).
beforeAll(async () => {
  ({ merchantId, merchant, issuer, counter, holderId, app, home } = await paymentParties(world, { tag: 'settle', merchantName: 'Settle Bakery' }));
});

type Errors = { code: string; field: string[] | null; message: string }[];

let orders = 0;
async function newPayment(amount: number): Promise<{ id: string; order: string }> {
  const order = `settle-order-${++orders}`;
  return { id: await createPaymentAs(merchant, amount, order), order };
}

async function loadedCard(balance: number, registered = true) {
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys });
  const row = registered ? await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623166000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId }) : null;
  const atCounter = sessionsOf(issuer, () => counter);
  expect((await atCounter.agent(chip).run(await atCounter.open('LOAD', balance))).state).toBe('COMPLETED');
  return { chip, id: row && toGlobalId('Card', row.id) };
}

async function openPay(payment: string) {
  const opened = await app.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: Errors } }>(OPEN, { input: { reader: home.id, operation: 'PURCHASE', payment } });
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session;
}

const VIEW = `status card ledgerEntries { key description kind amount { amount currency } }`;
type View = { status: string; card: string | null; ledgerEntries: { key: string; description: string; kind: string; amount: { amount: number; currency: string } }[] };
const view = async (id: string) => (await merchant.request<{ payment: View }>(`query($id: ID!) { payment(id: $id) { ${VIEW} } }`, { id })).payment;

describe('a payment paid by the card', () => {
  it('shows the merchant its ledger entry (the order and the merchant named) and the card; settlement’s clearing item, the payment’s card and session, and one payment.succeeded event are recorded', async () => {
    const card = await loadedCard(1_000);
    const payment = await newPayment(420);
    const uuid = fromGlobalId(payment.id, 'Payment').id;
    const session = await openPay(payment.id);
    expect((await sessionsOf(app, () => home).agent(card.chip, home).run(session)).state).toBe('COMPLETED');

    expect(await view(payment.id)).toEqual({
      status: 'SUCCEEDED',
      card: card.id,
      ledgerEntries: [{ key: `payment:${uuid}`, description: `card payment of order ${payment.order} to merchant Settle Bakery`, kind: 'PAYMENT', amount: { amount: 420, currency: 'CNY' } }],
    });
    expect(await balanceOnCard(card.chip)).toBe(580);
    expect(await purseBalance(world, card.chip.asn)).toBe(580n);

    const em = world.db.orm.em.fork();
    // What settlement pays the merchant from (and charges the card company's float for).
    const items = await em.execute(`select kind, participant_kind, participant_id, card_company_id, amount::int as amount, currency, reference from clearing_item where entry_key = ?`, [`payment:${uuid}`]);
    expect(items).toEqual([{ kind: 'PAYMENT', participant_kind: 'MERCHANT', participant_id: merchantId, card_company_id: world.gz.cardCompanyId, amount: 420, currency: 'CNY', reference: uuid }]);
    // The entry says which payment, merchant and session, and keeps the card's TAC (the proof a dispute is settled by).
    const [entry] = await em.execute<{ metadata: Record<string, unknown> }[]>(`select metadata from journal_entry where entry_key = ?`, [`payment:${uuid}`]);
    expect(entry!.metadata).toEqual({ kind: 'PAYMENT', payment: uuid, merchant: merchantId, cardSession: sessionUuid(session.id), proof: expect.any(String), tac: expect.stringMatching(/^[0-9A-F]{8}$/i) });
    // The card that paid, by its ASN too (the only link to a card the registry does not know), and the session.
    const [row] = await em.execute<{ card_asn: string; card_session_id: string }[]>(`select card_asn, card_session_id from payment where id = ?`, [uuid]);
    expect(row).toEqual({ card_asn: card.chip.asn, card_session_id: sessionUuid(session.id) });
    const events = await em.execute<{ type: string }[]>(`select type from event_outbox where subject_id = ? and type like 'payment.%' order by id`, [payment.id]);
    expect(events.map((e) => e.type)).toEqual(['payment.succeeded']);
  });

  it('by a card the registry does not know: the payment names no card, but keeps the card’s ASN', async () => {
    const card = await loadedCard(1_000, false);
    const payment = await newPayment(150);
    const uuid = fromGlobalId(payment.id, 'Payment').id;
    expect((await sessionsOf(app, () => home).agent(card.chip, home).run(await openPay(payment.id))).state).toBe('COMPLETED');
    expect((await view(payment.id)).card).toBeNull();
    const [row] = await world.db.orm.em.fork().execute<{ card_asn: string }[]>(`select card_asn from payment where id = ?`, [uuid]);
    expect(row!.card_asn).toBe(card.chip.asn);
  });
});

describe('a merchant suspended after the payment’s session opened', () => {
  it('the payment is refused before the card pays: nothing taken from the card or its purse, the payment still waits, nothing recorded', async () => {
    const card = await loadedCard(1_000);
    const payment = await newPayment(300);
    const session = await openPay(payment.id);
    const em = world.db.orm.em.fork();
    await em.execute(`update merchant set status = 'SUSPENDED' where id = ?`, [merchantId]);
    try {
      expect(await sessionsOf(app, () => home).agent(card.chip, home).run(session)).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    } finally {
      await em.execute(`update merchant set status = 'ACTIVE' where id = ?`, [merchantId]);
    }
    expect(await balanceOnCard(card.chip)).toBe(1_000);
    expect(await purseBalance(world, card.chip.asn)).toBe(1_000n);
    expect(await view(payment.id)).toEqual({ status: 'REQUIRES_CARD', card: null, ledgerEntries: [] });
    expect((await auditOf(world, session.id)).at(-1)).toMatchObject({ refusal: 'PURPOSE_REFUSED' });
  });
});

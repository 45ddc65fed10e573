/**
 * What a card-session message reads must be what is true once it holds its locks (issue 20 item 1
 * folded reads into the lock statements; a review found a suspension committed during the wait
 * missed), and a retired host key must not sign again. Found by review, each seen failing first.
 * Real HTTP on the world's API process, the SDK's reader agent, virtual cards.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { openOrm, type Orm } from '../src/db/orm.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { revokeCertificate } from '../src/pki/pki.service.js';
import { changeReaderStatus } from '../src/readers/readers.service.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { apiClient, expectRefused, issueCard, newReader, purseBalance, sessionsOf, sessionUuid, type TestReader, useCardSessionWorld, waitForBlocked } from './support/card-sessions.js';

const world = useCardSessionWorld();
type Requester = Pick<OneCardClient, 'request'>;

let lockOrm: Orm;
let merchantId: string;
let till: TestReader;
let merchant: Requester;
let issuer: Requester;
let counterReader: TestReader;

beforeAll(async () => {
  lockOrm = await openOrm(world.db.url);
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: 'Review Shop' });
  merchantId = shop.id;
  till = await newReader(world, 'REV-TILL', world.gz, { kind: 'MERCHANT', id: shop.id });
  counterReader = await newReader(world, 'REV-COUNTER', world.gz);
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

async function createPayment(amount: number): Promise<string> {
  const key = randomUUID();
  const made = await merchant.request<{ createPayment: { payment: { id: string } } }>(
    `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code message } } }`,
    { input: { amount, currency: 'CNY', orderReference: key, idempotencyKey: key } },
  );
  return made.createPayment.payment.id;
}

async function openPayment(payment: string, on: TestReader = till) {
  const opened = await merchant.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: unknown[] } }>(
    `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`,
    { input: { reader: on.id, operation: 'PURCHASE', payment } },
  );
  expect(opened.openCardSession.userErrors).toEqual([]);
  return opened.openCardSession.session!;
}

async function paymentStatus(payment: string): Promise<string> {
  const data = await merchant.request<{ node: { status: string } }>(`query($id: ID!) { node(id: $id) { ... on Payment { status } } }`, { id: payment });
  return data.node.status;
}

/** A payment session driven by hand: its hello, then message 1 (the debit guard runs there). */
async function manualPayment(c: VirtualCpuCard, payment: string, on: TestReader = till) {
  const sessions = sessionsOf(merchant, () => on);
  const session = await openPayment(payment, on);
  const agent = sessions.agent(c, on);
  const { VirtualCardTransport } = await import('../../sdk-js/src/index.js');
  const transport = new VirtualCardTransport(c);
  const send = (seq: number, body: unknown) => {
    const text = JSON.stringify(body);
    return sessions.send({ session: session.id, seq, body: text, signature: agent.sign(session.id, seq, text) });
  };
  const hello = () => send(0, { challenge: session.challenge, nationalCertificate: on.nationalPem, cityCertificate: on.cityPem, encryptionCertificate: on.encryptionPem });
  const answer = async (reply: { commands: { apdu?: string | null }[] }) => {
    const responses: string[] = [];
    for (const cmd of reply.commands) responses.push(Buffer.from(await transport.transmit(Buffer.from(cmd.apdu!, 'hex'))).toString('hex'));
    return responses;
  };
  return { session, send, hello, answer };
}

/**
 * Holds a row lock (select … for update) in a transaction of its own until release(); resolves
 * `held` once the lock is taken.
 */
function holdLock(sqlText: string, params: unknown[]) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let held!: () => void;
  const heldP = new Promise<void>((r) => (held = r));
  const done = lockOrm.em.fork().transactional(async (tx) => {
    await tx.execute(sqlText, params);
    held();
    await released;
  });
  return { held: heldP, release, done };
}

describe('what a message reads after waiting for a lock, and a retired host key', () => {
  it('a retired host key (its host_signing_key row deleted, its certificate revoked, as readers.md "Host key rotation" describes) is no longer used to sign host messages', async () => {
    // Warm the process: one whole payment on the till (the city's host key read back and remembered).
    const warm = await loadedCard(2_000);
    const p0 = await createPayment(100);
    expect((await sessionsOf(merchant, () => till).agent(warm, till).run(await openPayment(p0))).state).toBe('COMPLETED');
    const em = world.db.orm.em.fork();
    const [ca] = await em.execute<{ id: string }[]>(`select id from certificate_authority where kind = 'CITY' and city_id = ?`, [world.gz.cityId]);
    const [old] = await em.execute<{ certificate_serial: string; certificate_pem: string }[]>(`select certificate_serial, certificate_pem from host_signing_key where ca_id = ?`, [ca!.id]);
    expect(old).toBeDefined();
    // Retire it (the key is thought compromised): revoke its certificate, drop the row; the next message makes a new one.
    await revokeCertificate(em, old!.certificate_serial, 1);
    await em.execute(`delete from host_signing_key where ca_id = ?`, [ca!.id]);

    const c = await loadedCard(2_000);
    const payment = await createPayment(200);
    const s = await manualPayment(c, payment);
    const hello = await s.hello();
    expect(hello.userErrors).toEqual([]);
    const [now] = await em.execute<{ certificate_serial: string; certificate_pem: string }[]>(`select certificate_serial, certificate_pem from host_signing_key where ca_id = ?`, [ca!.id]);
    // On the branch: no new row is ever made, and the hello is signed with the retired key's chain.
    expect(now, 'a new host key on record for the city').toBeDefined();
    const leaf = (hello as unknown as { hostMessage: { certificateChain: string[] } }).hostMessage.certificateChain[0]!;
    expect(leaf.replace(/\s/g, '')).not.toBe(old!.certificate_pem.replace(/\s/g, ''));
  });

  it('the merchant suspended while message 1 waits for the payment’s row lock: the debit guard refuses (it must not read the merchant from before the wait)', async () => {
    const c = await loadedCard(3_000);
    const payment = await createPayment(400);
    const paymentId = fromGlobalId(payment, 'Payment').id;
    const s = await manualPayment(c, payment);
    const hello = await s.hello();
    expect(hello.session?.state).toBe('AUTHENTICATED');
    const responses = await s.answer(hello);
    // Someone else holds the payment (another reader's guard, a cancel, the expiry sweep) for a moment.
    const lock = holdLock(`select id from payment where id = ? for update`, [paymentId]);
    await lock.held;
    const message1 = s.send(1, { responses });
    try {
      await waitForBlocked(lockOrm, 'for update of p');
      // Meanwhile the operator suspends the merchant (committed before message 1 goes on).
      await world.db.orm.em.fork().execute(`update merchant set status = 'SUSPENDED' where id = ?`, [merchantId]);
    } finally {
      lock.release();
      await lock.done;
    }
    try {
      const reply = await message1;
      // On the branch: accepted, the card is sent DEBIT FOR PURCHASE's initialize for a suspended merchant.
      expect({ state: reply.session?.state, userErrors: reply.userErrors }).toMatchObject({ state: 'FAILED' });
      await expectRefused(world, reply, 'PURPOSE_REFUSED', s.session.id);
      expect(reply.userErrors[0]!.message).toMatch(/does not take payments/);
      expect(await paymentStatus(payment)).toBe('REQUIRES_CARD');
      expect(await purseBalance(world, c.asn)).toBe(3_000n);
    } finally {
      await world.db.orm.em.fork().execute(`update merchant set status = 'ACTIVE' where id = ?`, [merchantId]);
    }
  });

  it('the reader suspended while its hello waits for the session’s row lock: the hello is refused READER_NOT_ACTIVE (the reader must not be read from before the wait)', async () => {
    const reader = await newReader(world, `REV-TILL-${randomUUID().slice(0, 8)}`, world.gz, { kind: 'MERCHANT', id: merchantId });
    const c = await loadedCard(3_000);
    const payment = await createPayment(300);
    const s = await manualPayment(c, payment, reader);
    const lock = holdLock(`select id from card_session where id = ? for update`, [sessionUuid(s.session.id)]);
    await lock.held;
    const hello = s.hello();
    try {
      await waitForBlocked(lockOrm, 'card_session%for update');
      await world.db.orm.em.fork().transactional((tx) => changeReaderStatus(tx, fromGlobalId(reader.id, 'Reader').id, 'SUSPENDED'));
    } finally {
      lock.release();
      await lock.done;
    }
    await expectRefused(world, await hello, 'READER_NOT_ACTIVE', s.session.id);
  });
});

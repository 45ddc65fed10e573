/**
 * Issue 18, problem 9: the gateway's payment-intent `client_secret` (what lets an app confirm the
 * payment) was stored in clear in `top_up`. Now it is sealed with the key-encryption key, like
 * every other secret the database holds; the app still gets it while the top-up awaits payment.
 * The migration seals the rows it finds in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { SCRUB_STORED_CLIENT_SECRETS } from '../src/db/migrations/Migration20261206000040_scrub_stored_client_secrets.js';
import { sealClearClientSecrets } from '../src/db/migrations/Migration20261206000002_seal_gateway_client_secrets.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
import { seal } from '../src/secrets/kek.js';
import { clientSecretContext } from '../src/topups/client-secret.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { cardholderApp, issueCard, testCardNumber, useCardSessionWorld } from './support/card-sessions.js';
import { TEST_KEK } from './support/server.js';

const SECRET = 'sk_test_client_secret';
const WEBHOOK_SECRET = 'whsec_client_secret_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });
afterAll(async () => {
  await sandbox?.close();
});

const CREATE = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status clientSecret paymentUrl } userErrors { code message } } }`;
const GET = `query($id: ID!) { topUp(id: $id) { status clientSecret } }`;
type TopUp = { id: string; status: string; clientSecret: string | null; paymentUrl: string | null };

async function awaitingTopUp() {
  const { id: holderId, app } = await cardholderApp(world, `holder${Math.floor(Math.random() * 1e9)}`);
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 0 });
  const card = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623100000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const input = { card: Buffer.from(`Card:${card.id}`).toString('base64url'), amount: 1_000, idempotencyKey: `k-${Math.random()}` };
  const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(CREATE, { input });
  expect(made.createTopUp.userErrors).toEqual([]);
  const topUp = made.createTopUp.topUp;
  return { app, input, topUp, uuid: fromGlobalId(topUp.id, 'TopUp').id };
}

/** Every value of the top-up's row, as text: what a copy of the database would show. */
async function rowText(uuid: string): Promise<string> {
  const [row] = await world.db.orm.em.fork().execute(`select * from top_up where id = ?`, [uuid]);
  return JSON.stringify(row);
}

describe('the gateway client secret at rest', () => {
  it('is not in the database in clear, and the app still gets it while the top-up awaits payment', async () => {
    const { topUp, uuid } = await awaitingTopUp();
    expect(topUp.status).toBe('AWAITING_PAYMENT');
    expect(topUp.clientSecret).toMatch(/^pi_.+_secret_/);
    expect(await rowText(uuid)).not.toContain(topUp.clientSecret);
  });

  it('is not in the stored answer of createTopUp either, and a replay after payment does not hand it out', async () => {
    sandbox.setWebhookUrl(`${world.server.url}/webhooks/gateway`);
    const { app, input, topUp, uuid } = await awaitingTopUp();
    expect(topUp.clientSecret).toMatch(/^pi_.+_secret_/);
    const records = await world.db.orm.em.fork().execute(`select * from idempotency_record where operation = 'createTopUp' and key = ?`, [input.idempotencyKey]);
    expect(records).toHaveLength(1);
    expect(JSON.stringify(records)).not.toContain(topUp.clientSecret);

    // A replay while the top-up awaits payment still carries it (read from the row, not the record).
    const replay = () => app.request<{ createTopUp: { topUp: TopUp } }>(CREATE, { input });
    expect((await replay()).createTopUp.topUp.clientSecret).toBe(topUp.clientSecret);

    const paid = await fetch(topUp.paymentUrl!, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payment_method=pm_card_visa' });
    expect(paid.status).toBe(200);
    for (let i = 0; i < 100 && (await app.request<{ topUp: TopUp }>(GET, { id: topUp.id })).topUp.status !== 'PAID'; i++) await new Promise((r) => setTimeout(r, 50));
    expect((await app.request<{ topUp: TopUp }>(GET, { id: topUp.id })).topUp).toMatchObject({ status: 'PAID', clientSecret: null });
    expect((await replay()).createTopUp.topUp.clientSecret).toBeNull();
    expect(await rowText(uuid)).not.toContain(topUp.clientSecret);
  });

  it('the migration takes the secret out of answers an older version stored', async () => {
    const { app, input, topUp } = await awaitingTopUp();
    const em = world.db.orm.em.fork();
    // As an older version stored it: the secret inside the stored top-up.
    await em.execute(`update idempotency_record set response = jsonb_set(response, '{topUp,clientSecret}', to_jsonb(?::text)) where key = ?`, [topUp.clientSecret, input.idempotencyKey]);
    expect(JSON.stringify(await em.execute(`select response from idempotency_record where key = ?`, [input.idempotencyKey]))).toContain(topUp.clientSecret);
    await em.execute(SCRUB_STORED_CLIENT_SECRETS);
    const [record] = await em.execute<{ response: { topUp: Record<string, unknown> } }[]>(`select response from idempotency_record where key = ?`, [input.idempotencyKey]);
    expect(JSON.stringify(record)).not.toContain(topUp.clientSecret);
    expect(record!.response.topUp).toMatchObject({ status: 'AWAITING_PAYMENT', amount: { amount: { $bigint: '1000' } } });
    // The replay still answers, with the secret read from the row.
    expect((await app.request<{ createTopUp: { topUp: TopUp } }>(CREATE, { input })).createTopUp.topUp.clientSecret).toBe(topUp.clientSecret);
  });

  it('a secret that cannot be opened (sealed under another key) answers null, not INTERNAL_SERVER_ERROR', async () => {
    const { app, topUp, uuid } = await awaitingTopUp();
    const otherKey = Buffer.alloc(32, 7);
    await world.db.orm.em.fork().execute(`update top_up set client_secret_sealed = ? where id = ?`, [seal(otherKey, clientSecretContext(uuid), Buffer.from('pi_x_secret_y')), uuid]);
    const read = await app.request<{ topUp: TopUp }>(GET, { id: topUp.id });
    expect(read.topUp).toMatchObject({ status: 'AWAITING_PAYMENT', clientSecret: null });
  });

  it('the migration seals secrets an older version stored in clear', async () => {
    const { app, topUp, uuid } = await awaitingTopUp();
    const em = world.db.orm.em.fork();
    // As an older version left it: the secret in a clear column, nothing sealed.
    await em.execute(`alter table top_up add column client_secret text`);
    await em.execute(`update top_up set client_secret = ?, client_secret_sealed = null where id = ?`, [topUp.clientSecret, uuid]);
    await sealClearClientSecrets((sql, params) => em.execute(sql, params), async () => Buffer.from(TEST_KEK, 'base64url'));
    await em.execute(`alter table top_up drop column client_secret`);

    expect(await rowText(uuid)).not.toContain(topUp.clientSecret);
    expect((await app.request<{ topUp: { clientSecret: string } }>(GET, { id: topUp.id })).topUp.clientSecret).toBe(topUp.clientSecret);
  });
});

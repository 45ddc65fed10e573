/**
 * Issue 18, problem 9: the gateway's payment-intent `client_secret` (what lets an app confirm the
 * payment) was stored in clear in `top_up`. Now it is sealed with the key-encryption key, like
 * every other secret the database holds; the app still gets it while the top-up awaits payment.
 * The migration seals the rows it finds in clear.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueCard as registerCard } from '../src/cards/cards.service.js';
import { sealClearClientSecrets } from '../src/db/migrations/Migration20261206000002_seal_gateway_client_secrets.js';
import { fromGlobalId } from '../src/graphql/global-id.js';
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

const CREATE = `mutation($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status clientSecret } userErrors { code message } } }`;
const GET = `query($id: ID!) { topUp(id: $id) { status clientSecret } }`;
type TopUp = { id: string; status: string; clientSecret: string | null };

async function awaitingTopUp() {
  const { id: holderId, app } = await cardholderApp(world, `holder${Math.floor(Math.random() * 1e9)}`);
  const chip = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 0 });
  const card = await registerCard(world.db.orm.em.fork(), world.gz.cardCompanyId, { cardNumber: testCardNumber('623100000000'), asn: chip.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01', holderId });
  const made = await app.request<{ createTopUp: { topUp: TopUp; userErrors: unknown[] } }>(CREATE, { input: { card: Buffer.from(`Card:${card.id}`).toString('base64url'), amount: 1_000, idempotencyKey: `k-${Math.random()}` } });
  expect(made.createTopUp.userErrors).toEqual([]);
  const topUp = made.createTopUp.topUp;
  return { app, topUp, uuid: fromGlobalId(topUp.id, 'TopUp').id };
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

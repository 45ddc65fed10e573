/**
 * Transit wallets (issue 25 item 1) over real HTTP: the holder's app opens a wallet with the card
 * company, tops it up through the sandbox gateway (a real server sending signed webhooks), reads its
 * balance and history, and refunds a top-up; the ledger stays balanced throughout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { type SandboxGateway, startSandboxGateway } from '../src/topups/gateway/sandbox-gateway.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { cardholderApp, useCardSessionWorld } from './support/card-sessions.js';

const SECRET = 'sk_test_wallets';
const WEBHOOK_SECRET = 'whsec_wallets_0123456789';
let sandbox: SandboxGateway;
beforeAll(async () => {
  sandbox = await startSandboxGateway({ secretKey: SECRET, webhookSecret: WEBHOOK_SECRET, webhookRetryDelaysMs: [50, 100] });
});
const world = useCardSessionWorld({ env: () => ({ GATEWAY_URL: sandbox.url, GATEWAY_SECRET_KEY: SECRET, GATEWAY_WEBHOOK_SECRET: WEBHOOK_SECRET }) });
afterAll(async () => {
  await sandbox?.close();
});

type App = Awaited<ReturnType<typeof cardholderApp>>['app'];
type UserErrors = { code: string; field: string[]; message: string }[];
type WalletTopUp = { id: string; status: string; amount: { amount: number }; history: { to: string }[] };
type Wallet = { id: string; balance: { amount: number; currency: string }; debt: { amount: number }; history: { edges: { node: { kind: string; balanceChange: { amount: number } } }[] } };

const WALLET = `id balance { amount currency } debt { amount } history { edges { node { kind balanceChange { amount } } } }`;
const OPEN = `mutation($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { ${WALLET} } userErrors { code field message } } }`;
const TOP_UP = `mutation($input: CreateWalletTopUpInput!) { createWalletTopUp(input: $input) { topUp { id status amount { amount } history { to } } userErrors { code field message } } }`;
const REFUND = `mutation($input: RefundWalletTopUpInput!) { refundWalletTopUp(input: $input) { topUp { id status amount { amount } history { to } } userErrors { code field message } } }`;
const NODE = `query($id: ID!) { node(id: $id) { ... on WalletTopUp { id status } ... on TransitWallet { ${WALLET} } } }`;

async function openWallet(app: App): Promise<Wallet> {
  const reply = await app.request<{ openTransitWallet: { wallet: Wallet; userErrors: UserErrors } }>(OPEN, { input: { cardCompany: toGlobalId('CardCompany', world.gz.cardCompanyId) } });
  expect(reply.openTransitWallet.userErrors).toEqual([]);
  return reply.openTransitWallet.wallet;
}

async function waitForStatus(app: App, id: string, status: string) {
  for (let i = 0; i < 100; i++) {
    const { node } = await app.request<{ node: { status: string } }>(NODE, { id });
    if (node.status === status) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`wallet top-up ${id} never became ${status}`);
}

const walletNow = async (app: App, id: string) => (await app.request<{ node: Wallet }>(NODE, { id })).node;

describe('transit wallet', () => {
  it('is topped up through the gateway, shows its balance and history, and refunds a top-up', async () => {
    const { app } = await cardholderApp(world, 'wallet-wu');
    const wallet = await openWallet(app);
    expect(wallet.balance).toEqual({ amount: 0, currency: 'CNY' });
    // Opening again answers the same wallet.
    expect((await openWallet(app)).id).toBe(wallet.id);

    const first = await app.request<{ createWalletTopUp: { topUp: WalletTopUp; userErrors: UserErrors } }>(TOP_UP, { input: { wallet: wallet.id, amount: 3000, idempotencyKey: 'w-1', paymentMethod: 'pm_card_visa' } });
    expect(first.createWalletTopUp.userErrors).toEqual([]);
    await waitForStatus(app, first.createWalletTopUp.topUp.id, 'PAID');
    const second = await app.request<{ createWalletTopUp: { topUp: WalletTopUp; userErrors: UserErrors } }>(TOP_UP, { input: { wallet: wallet.id, amount: 1200, idempotencyKey: 'w-2', paymentMethod: 'pm_card_visa' } });
    await waitForStatus(app, second.createWalletTopUp.topUp.id, 'PAID');
    // The same key and request: the first answer, no second charge.
    const again = await app.request<{ createWalletTopUp: { topUp: WalletTopUp } }>(TOP_UP, { input: { wallet: wallet.id, amount: 3000, idempotencyKey: 'w-1', paymentMethod: 'pm_card_visa' } });
    expect(again.createWalletTopUp.topUp.id).toBe(first.createWalletTopUp.topUp.id);

    let now = await walletNow(app, wallet.id);
    expect(now.balance.amount).toBe(4200);
    expect(now.history.edges.map((e) => [e.node.kind, e.node.balanceChange.amount])).toEqual([
      ['TOP_UP_PAID', 1200],
      ['TOP_UP_PAID', 3000],
    ]);

    const refund = await app.request<{ refundWalletTopUp: { topUp: WalletTopUp; userErrors: UserErrors } }>(REFUND, { input: { topUp: second.createWalletTopUp.topUp.id, idempotencyKey: 'r-1' } });
    expect(refund.refundWalletTopUp.userErrors).toEqual([]);
    await waitForStatus(app, second.createWalletTopUp.topUp.id, 'REFUNDED');
    now = await walletNow(app, wallet.id);
    expect(now.balance.amount).toBe(3000);
    expect(now.history.edges[0]!.node).toEqual({ kind: 'TOP_UP_REFUND', balanceChange: { amount: -1200 } });
    // A refunded top-up is not refunded twice.
    const twice = await app.request<{ refundWalletTopUp: { topUp: WalletTopUp | null; userErrors: UserErrors } }>(REFUND, { input: { topUp: second.createWalletTopUp.topUp.id, idempotencyKey: 'r-2' } });
    expect(twice.refundWalletTopUp.userErrors.map((e) => e.code)).toEqual(['NOT_REFUNDABLE']);
    expect((await walletNow(app, wallet.id)).balance.amount).toBe(3000);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
  });

  it('another holder sees neither the wallet nor its top-ups, and cannot top it up or refund from it', async () => {
    const { app: owner } = await cardholderApp(world, 'wallet-owner');
    const { app: stranger } = await cardholderApp(world, 'wallet-stranger');
    const wallet = await openWallet(owner);
    const paid = await owner.request<{ createWalletTopUp: { topUp: WalletTopUp } }>(TOP_UP, { input: { wallet: wallet.id, amount: 500, idempotencyKey: 'o-1', paymentMethod: 'pm_card_visa' } });
    await waitForStatus(owner, paid.createWalletTopUp.topUp.id, 'PAID');
    expect((await stranger.request<{ node: unknown }>(NODE, { id: wallet.id })).node).toBeNull();
    expect((await stranger.request<{ node: unknown }>(NODE, { id: paid.createWalletTopUp.topUp.id })).node).toBeNull();
    const topUp = await stranger.request<{ createWalletTopUp: { topUp: unknown; userErrors: UserErrors } }>(TOP_UP, { input: { wallet: wallet.id, amount: 500, idempotencyKey: 's-1', paymentMethod: 'pm_card_visa' } });
    expect(topUp.createWalletTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'wallet'] }] });
    const refund = await stranger.request<{ refundWalletTopUp: { topUp: unknown; userErrors: UserErrors } }>(REFUND, { input: { topUp: paid.createWalletTopUp.topUp.id, idempotencyKey: 's-2' } });
    expect(refund.refundWalletTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'NOT_FOUND' }] });
    expect((await walletNow(owner, wallet.id)).balance.amount).toBe(500);
  });

  it('refuses a top-up beyond the top-up limits, recording nothing', async () => {
    const { app } = await cardholderApp(world, 'wallet-limits');
    const wallet = await openWallet(app);
    const reply = await app.request<{ createWalletTopUp: { topUp: unknown; userErrors: UserErrors } }>(TOP_UP, { input: { wallet: wallet.id, amount: 100_001, idempotencyKey: 'big', paymentMethod: 'pm_card_visa' } });
    expect(reply.createWalletTopUp).toMatchObject({ topUp: null, userErrors: [{ code: 'TOP_UP_AMOUNT_OUT_OF_RANGE' }] });
    expect((await walletNow(app, wallet.id)).history.edges).toEqual([]);
  });
});

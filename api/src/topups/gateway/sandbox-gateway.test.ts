import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GATEWAY_SIGNATURE_HEADER, GatewayClient, GatewayError, type GatewayEvent } from './gateway-client.js';
import { startSandboxGateway, type SandboxGateway, type SandboxGatewayOptions } from './sandbox-gateway.js';
import { verifySignatureHeader } from '../../webhooks/webhook-signature.js';

const SECRET_KEY = 'sk_test_sandbox_0123456789';
const WEBHOOK_SECRET = 'whsec_sandbox_0123456789';

/** A webhook endpoint that records what it gets and answers with the next status in `statuses` (200 once they run out). */
interface Receiver {
  url: string;
  received: { body: string; signature: string | undefined; event: GatewayEvent }[];
  statuses: number[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const received: Receiver['received'] = [];
  const statuses: number[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    const signature = req.headers[GATEWAY_SIGNATURE_HEADER] as string | undefined;
    received.push({ body, signature, event: JSON.parse(body) as GatewayEvent });
    res.writeHead(statuses.shift() ?? 200).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/webhooks/gateway`,
    received,
    statuses,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function eventually<T>(probe: () => T | undefined, what: string, timeoutMs = 2000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The error a call rejects with, for its fields to be checked. */
async function failure(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

let receiver: Receiver;
let gateway: SandboxGateway;
let client: GatewayClient;
let warnings: { obj: object; msg?: string }[];
let n = 0;
const key = (what: string) => `${what}:${++n}`;

async function start(over: Partial<SandboxGatewayOptions> = {}): Promise<SandboxGateway> {
  gateway = await startSandboxGateway({
    secretKey: SECRET_KEY,
    webhookSecret: WEBHOOK_SECRET,
    webhookUrl: receiver.url,
    payoutDelayMs: 30,
    webhookRetryDelaysMs: [20, 20],
    log: { info() {}, warn: (obj, msg) => warnings.push({ obj, msg }) },
    ...over,
  });
  client = new GatewayClient({ url: gateway.url, secretKey: SECRET_KEY, retries: 0, timeoutMs: 2000 });
  return gateway;
}

/** The first delivery of an event of this type about this object. */
function webhook(type: string, objectId: string) {
  return eventually(() => receiver.received.find((r) => r.event.type === type && r.event.data.object.id === objectId), `${type} for ${objectId}`);
}

async function paidIntent(amount = 10_000n) {
  return client.createPaymentIntent({ amount, currency: 'CNY', metadata: { topUpId: `tu_${++n}` }, paymentMethod: 'pm_card_visa', confirm: true }, key('pay'));
}

beforeEach(async () => {
  warnings = [];
  receiver = await startReceiver();
  await start();
});

afterEach(async () => {
  await gateway.close();
  await receiver.close();
});

describe('sandbox gateway: payments', () => {
  it('a payment with pm_card_visa succeeds and a signed payment_intent.succeeded webhook reaches the receiver', async () => {
    const pi = await client.createPaymentIntent(
      { amount: 5000n, currency: 'CNY', metadata: { topUpId: 'tu_1' }, description: 'Top-up', paymentMethod: 'pm_card_visa', confirm: true },
      key('pay'),
    );
    expect(pi).toMatchObject({ object: 'payment_intent', amount: 5000, currency: 'cny', status: 'succeeded', metadata: { topUpId: 'tu_1' }, payment_method: 'pm_card_visa', last_payment_error: null });
    expect(pi.id).toMatch(/^pi_[0-9a-f]+$/);
    expect(pi.client_secret).toMatch(new RegExp(`^${pi.id}_secret_[0-9a-f]+$`));
    expect(pi.latest_charge).toMatch(/^ch_/);

    const delivery = await webhook('payment_intent.succeeded', pi.id);
    expect(verifySignatureHeader(WEBHOOK_SECRET, delivery.body, delivery.signature)).toMatchObject({ ok: true });
    expect(verifySignatureHeader('whsec_not_ours_at_all', delivery.body, delivery.signature)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
    expect(delivery.event.id).toMatch(/^evt_/);
    expect(delivery.event.data.object).toEqual(pi);
    expect(await client.retrieveEvent(delivery.event.id)).toEqual(delivery.event);
  });

  it('an intent made without confirm waits for a payment method, and the confirm endpoint pays it', async () => {
    const pi = await client.createPaymentIntent({ amount: 300n, currency: 'cny', metadata: {} }, key('create'));
    expect(pi.status).toBe('requires_payment_method');
    expect(receiver.received).toEqual([]);
    const paid = await client.confirmPaymentIntent(pi.id, { paymentMethod: 'pm_card_mastercard' }, key('confirm'));
    expect(paid.status).toBe('succeeded');
    expect(await client.retrievePaymentIntent(pi.id)).toEqual(paid);
  });

  it.each([
    ['pm_card_chargeDeclined', 'generic_decline'],
    ['pm_card_insufficientFunds', 'insufficient_funds'],
  ])('a card %s is declined (402, %s), the intent goes back to requires_payment_method and can be paid again', async (paymentMethod, declineCode) => {
    const err = await failure(client.createPaymentIntent({ amount: 700n, currency: 'cny', metadata: {}, paymentMethod, confirm: true }, key('pay')));
    expect(err).toMatchObject({ kind: 'CARD_DECLINED', status: 402, code: 'card_declined', declineCode, retryable: false });
    const pi = err.paymentIntent!;
    expect(pi).toMatchObject({ status: 'requires_payment_method', payment_method: null, last_payment_error: { code: 'card_declined', decline_code: declineCode } });
    await webhook('payment_intent.payment_failed', pi.id);

    const paid = await client.confirmPaymentIntent(pi.id, { paymentMethod: 'pm_card_visa' }, key('confirm'));
    expect(paid).toMatchObject({ status: 'succeeded', last_payment_error: null });
  });

  it('cancels an intent before it is paid, and refuses to cancel a paid one', async () => {
    const open = await client.createPaymentIntent({ amount: 100n, currency: 'cny', metadata: {} }, key('create'));
    expect((await client.cancelPaymentIntent(open.id, key('cancel'))).status).toBe('canceled');
    await webhook('payment_intent.canceled', open.id);
    const paid = await paidIntent();
    expect(await failure(client.cancelPaymentIntent(paid.id, key('cancel')))).toMatchObject({ kind: 'INVALID_REQUEST', status: 400, code: 'payment_intent_unexpected_state' });
  });

  it('answers 404 for an unknown intent', async () => {
    expect(await failure(client.retrievePaymentIntent('pi_nothing'))).toMatchObject({ kind: 'INVALID_REQUEST', status: 404, code: 'resource_missing' });
  });

  it('refuses a wrong secret key with 401', async () => {
    const stranger = new GatewayClient({ url: gateway.url, secretKey: 'sk_test_wrong', retries: 0 });
    const err = await failure(stranger.createPaymentIntent({ amount: 100n, currency: 'cny', metadata: {} }, key('create')));
    expect(err).toMatchObject({ kind: 'AUTHENTICATION', status: 401, retryable: false });
    const res = await fetch(`${gateway.url}/v1/payment_intents/pi_x`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', message: expect.any(String) } });
  });
});

describe('sandbox gateway: idempotency', () => {
  it('answers a repeated request with the same key and parameters with the stored response', async () => {
    const params = { amount: 1200n, currency: 'cny', metadata: { topUpId: 'tu_same' }, paymentMethod: 'pm_card_visa', confirm: true };
    const first = await client.createPaymentIntent(params, 'topup:tu_same');
    const again = await client.createPaymentIntent(params, 'topup:tu_same');
    expect(again).toEqual(first);
    await webhook('payment_intent.succeeded', first.id);
    await sleep(20);
    expect(receiver.received.filter((r) => r.event.type === 'payment_intent.succeeded')).toHaveLength(1);
  });

  it('replays a decline too, with its 402', async () => {
    const params = { amount: 1200n, currency: 'cny', metadata: {}, paymentMethod: 'pm_card_chargeDeclined', confirm: true };
    const first = await failure(client.createPaymentIntent(params, 'declined:1'));
    const again = await failure(client.createPaymentIntent(params, 'declined:1'));
    expect(again.paymentIntent).toEqual(first.paymentIntent);
    expect(again.kind).toBe('CARD_DECLINED');
  });

  it('refuses the same key with other parameters (idempotency_key_reuse)', async () => {
    await client.createPaymentIntent({ amount: 1200n, currency: 'cny', metadata: {} }, 'topup:tu_reuse');
    const err = await failure(client.createPaymentIntent({ amount: 1300n, currency: 'cny', metadata: {} }, 'topup:tu_reuse'));
    expect(err).toMatchObject({ kind: 'INVALID_REQUEST', status: 400, code: 'idempotency_key_reuse' });
  });
});

describe('sandbox gateway: webhooks', () => {
  it('retries a webhook the receiver answered 500, with a fresh signature', async () => {
    receiver.statuses.push(500);
    const pi = await paidIntent();
    const deliveries = await eventually(() => {
      const all = receiver.received.filter((r) => r.event.data.object.id === pi.id);
      return all.length >= 2 ? all : undefined;
    }, 'a second delivery');
    expect(deliveries[1]!.event.id).toBe(deliveries[0]!.event.id);
    expect(verifySignatureHeader(WEBHOOK_SECRET, deliveries[1]!.body, deliveries[1]!.signature)).toMatchObject({ ok: true });
    await sleep(60);
    expect(receiver.received).toHaveLength(2);
    expect(warnings).toEqual([]);
  });

  it('drops a webhook with a warning once its retries are spent', async () => {
    receiver.statuses.push(500, 503, 500, 500);
    const pi = await paidIntent();
    const warning = await eventually(() => warnings[0], 'the warning');
    expect(warning.obj).toMatchObject({ type: 'payment_intent.succeeded', attempts: 3, reason: 'HTTP 500' });
    expect(receiver.received.filter((r) => r.event.data.object.id === pi.id)).toHaveLength(3);
  });

  it('sends to the URL set later, and keeps events without one for GET /v1/events/:id', async () => {
    await gateway.close();
    await start({ webhookUrl: undefined });
    const pi = await paidIntent();
    await sleep(30);
    expect(receiver.received).toEqual([]);
    gateway.setWebhookUrl(receiver.url);
    const later = await paidIntent();
    await webhook('payment_intent.succeeded', later.id);
    expect(receiver.received.some((r) => r.event.data.object.id === pi.id)).toBe(false);
  });
});

describe('sandbox gateway: refunds', () => {
  it('refunds a paid intent in parts up to its amount and refuses more', async () => {
    const pi = await paidIntent(1000n);
    const part = await client.createRefund({ paymentIntent: pi.id, amount: 400n, metadata: { reason: 'card lost' } }, key('refund'));
    expect(part).toMatchObject({ object: 'refund', amount: 400, currency: 'cny', payment_intent: pi.id, status: 'succeeded', metadata: { reason: 'card lost' } });
    expect(await client.retrieveRefund(part.id)).toEqual(part);
    await webhook('refund.created', part.id);
    await webhook('charge.refunded', pi.id);

    const tooMuch = await failure(client.createRefund({ paymentIntent: pi.id, amount: 601n }, key('refund')));
    expect(tooMuch).toMatchObject({ kind: 'INVALID_REQUEST', status: 400, code: 'amount_too_large' });
    const rest = await client.createRefund({ paymentIntent: pi.id }, key('refund'));
    expect(rest.amount).toBe(600);
    const more = await failure(client.createRefund({ paymentIntent: pi.id, amount: 1n }, key('refund')));
    expect(more).toMatchObject({ kind: 'INVALID_REQUEST', status: 400, code: 'charge_already_refunded' });
  });

  it('refuses to refund an intent that was not paid', async () => {
    const open = await client.createPaymentIntent({ amount: 100n, currency: 'cny', metadata: {} }, key('create'));
    expect(await failure(client.createRefund({ paymentIntent: open.id }, key('refund')))).toMatchObject({ kind: 'INVALID_REQUEST', code: 'payment_intent_unexpected_state' });
  });

  it('fails a refund to pm_card_refundFail after it succeeded, with refund.updated', async () => {
    const pi = await client.createPaymentIntent({ amount: 900n, currency: 'cny', metadata: {}, paymentMethod: 'pm_card_refundFail', confirm: true }, key('pay'));
    const refund = await client.createRefund({ paymentIntent: pi.id }, key('refund'));
    expect(refund.status).toBe('succeeded');
    const updated = await webhook('refund.updated', refund.id);
    expect(updated.event.data.object).toMatchObject({ status: 'failed', failure_reason: 'expired_or_canceled_card' });
    expect((await client.retrieveRefund(refund.id)).status).toBe('failed');
  });
});

describe('sandbox gateway: payouts and balance transactions', () => {
  it('a payout is pending, then paid with a payout.paid event', async () => {
    await paidIntent(10_000n);
    const payout = await client.createPayout({ amount: 9000n, currency: 'CNY', metadata: { window: 'w1' } }, key('payout'));
    expect(payout).toMatchObject({ object: 'payout', amount: 9000, currency: 'cny', status: 'pending', metadata: { window: 'w1' } });
    const paid = await webhook('payout.paid', payout.id);
    expect(paid.event.data.object).toMatchObject({ id: payout.id, status: 'paid' });
    expect((await client.retrievePayout(payout.id)).status).toBe('paid');
  });

  it('a payout the sandbox is told to fail ends failed with payout.failed, and one over the balance is refused', async () => {
    await paidIntent(10_000n);
    const over = await failure(client.createPayout({ amount: 9941n, currency: 'cny' }, key('payout')));
    expect(over).toMatchObject({ kind: 'INVALID_REQUEST', code: 'balance_insufficient' });
    const payout = await client.createPayout({ amount: 9940n, currency: 'cny', metadata: { sandbox_failure_code: 'account_closed' } }, key('payout'));
    const failed = await webhook('payout.failed', payout.id);
    expect(failed.event.data.object).toMatchObject({ status: 'failed', failure_code: 'account_closed' });
  });

  it('lists balance transactions with fees, oldest first, by page', async () => {
    const pi = await paidIntent(10_000n);
    const refund = await client.createRefund({ paymentIntent: pi.id, amount: 2500n }, key('refund'));
    const payout = await client.createPayout({ amount: 7000n, currency: 'cny' }, key('payout'));
    const { data, has_more } = await client.listBalanceTransactions({});
    expect(has_more).toBe(false);
    expect(data.map((t) => [t.type, t.amount, t.fee, t.net, t.currency])).toEqual(
      expect.arrayContaining([
        ['charge', 10_000, 60, 9940, 'cny'],
        ['refund', -2500, 0, -2500, 'cny'],
        ['payout', -7000, 0, -7000, 'cny'],
      ]),
    );
    expect(data.map((t) => t.source)).toEqual(expect.arrayContaining([pi.latest_charge, refund.id, payout.id]));
    const order = [...data].sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
    expect(data).toEqual(order);

    const first = await client.listBalanceTransactions({ limit: 2 });
    expect(first).toMatchObject({ has_more: true, data: data.slice(0, 2) });
    const next = await client.listBalanceTransactions({ limit: 2, startingAfter: first.data[1]!.id });
    expect(next).toEqual({ has_more: false, data: data.slice(2) });

    const created = data[0]!.created;
    expect((await client.listBalanceTransactions({ createdGte: created + 3600 })).data).toEqual([]);
    expect((await client.listBalanceTransactions({ createdGte: created, createdLt: created + 3600 })).data).toHaveLength(3);
  });

  it('charges the configured fee, rounded', async () => {
    await gateway.close();
    await start({ feeBasisPoints: 125 });
    await paidIntent(333n);
    const [charge] = (await client.listBalanceTransactions({})).data;
    expect(charge).toMatchObject({ amount: 333, fee: 4, net: 329 });
  });
});

describe('sandbox gateway: hosted checkout page', () => {
  it('shows the amount with a pay and a decline button, and paying there pays the intent', async () => {
    const pi = await client.createPaymentIntent({ amount: 5000n, currency: 'cny', metadata: {}, description: 'Top-up <card 8001>' }, key('create'));
    const page = await fetch(`${gateway.url}/checkout/${pi.id}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('50.00 CNY');
    expect(html).toContain('Top-up &#60;card 8001&#62;');
    expect(html).toContain('Pay with test card');
    expect(html).toContain('value="pm_card_chargeDeclined"');
    expect(html).not.toMatch(/\b(src|href)=/);

    const declined = await fetch(`${gateway.url}/checkout/${pi.id}`, { method: 'POST', body: new URLSearchParams({ payment_method: 'pm_card_chargeDeclined' }) });
    expect(await declined.text()).toContain('Payment declined');
    const paid = await fetch(`${gateway.url}/checkout/${pi.id}`, { method: 'POST', body: new URLSearchParams({ payment_method: 'pm_card_visa' }) });
    const outcome = await paid.text();
    expect(outcome).toContain('Payment succeeded');
    expect(outcome).not.toContain('Pay with test card');
    expect((await client.retrievePaymentIntent(pi.id)).status).toBe('succeeded');
    await webhook('payment_intent.succeeded', pi.id);
  });

  it('answers 404 for an unknown intent', async () => {
    expect((await fetch(`${gateway.url}/checkout/pi_nothing`)).status).toBe(404);
  });
});

describe('sandbox gateway: persistence', () => {
  it('keeps intents, idempotent answers and pending payouts across a restart with statePath', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandbox-gateway-'));
    try {
      const statePath = path.join(dir, 'state', 'gateway.json');
      await gateway.close();
      await start({ statePath, payoutDelayMs: 60_000 });
      const params = { amount: 10_000n, currency: 'cny', metadata: { topUpId: 'tu_keep' }, paymentMethod: 'pm_card_visa', confirm: true };
      const pi = await client.createPaymentIntent(params, 'topup:tu_keep');
      const payout = await client.createPayout({ amount: 5000n, currency: 'cny' }, 'payout:keep');
      await gateway.close();
      expect((await fs.readdir(path.dirname(statePath))).filter((f) => f.endsWith('.tmp'))).toEqual([]);

      await start({ statePath, payoutDelayMs: 20 });
      expect(await client.retrievePaymentIntent(pi.id)).toEqual(pi);
      expect(await client.createPaymentIntent(params, 'topup:tu_keep')).toEqual(pi);
      await webhook('payout.paid', payout.id);
      expect((await client.listBalanceTransactions({})).data).toHaveLength(2);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

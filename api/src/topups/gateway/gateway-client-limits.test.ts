/**
 * The gateway client at its edges: what it must never send (an amount, a currency or an
 * idempotency key out of range, checked to the limit, with the message a developer reads), the
 * parameters it leaves out, and what it makes of every kind of answer (each call's object, a
 * wrong object, a 3xx, a 403, a 409, a refused connection), with the message an operator reads in
 * the logs. gateway-client.test.ts holds the ordinary requests and retries.
 */
import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayClient, GatewayError, type PaymentIntent } from './gateway-client.js';

const BASE = 'https://gateway.test';
const KEY = 'sk_test_limits_0123456789';

const client = (url = BASE) => new GatewayClient({ url, secretKey: KEY, retryDelayMs: 1, timeoutMs: 2_000, retries: 2 });

const intent: PaymentIntent = {
  id: 'pi_lim',
  object: 'payment_intent',
  amount: 100,
  currency: 'cny',
  status: 'requires_payment_method',
  client_secret: 'pi_lim_secret',
  metadata: {},
  payment_method: null,
  last_payment_error: null,
  latest_charge: null,
  created: 1_750_000_000,
};
const refund = { id: 're_lim', object: 'refund', amount: 100, currency: 'cny', payment_intent: 'pi_lim', status: 'succeeded', metadata: {}, created: 1 };
const payout = { id: 'po_lim', object: 'payout', amount: 100, currency: 'cny', status: 'pending', metadata: {}, created: 1, arrival_date: 2 };

/** What a call rejects with (an Error of any kind), for its class and fields to be checked. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(Error);
  return err as Error;
}

/** Records the form of each POST to `path` and answers `body`. */
function recordPost(path: string, body: object, seen: Record<string, string>[]) {
  nock(BASE)
    .post(path)
    .reply(async (req: Request) => {
      seen.push(Object.fromEntries(new URLSearchParams(await req.text())));
      return [200, body];
    });
}

beforeEach(() => {
  nock.disableNetConnect();
  nock.enableNetConnect('127.0.0.1');
});

afterEach(() => {
  const pending = nock.pendingMocks();
  nock.abortPendingRequests();
  nock.cleanAll();
  nock.enableNetConnect();
  expect(pending).toEqual([]);
});

describe('what the client never sends (nothing reaches the gateway: no mock answers)', () => {
  it('an amount above 2^53 − 1 is refused with a message naming the amount; 2^53 − 1 itself is sent', async () => {
    const seen: Record<string, string>[] = [];
    recordPost('/v1/payment_intents', intent, seen);
    await client().createPaymentIntent({ amount: 2n ** 53n - 1n, currency: 'cny', metadata: {} }, 'k-max');
    expect(seen[0]!.amount).toBe('9007199254740991');

    const err = await rejection(client().createPaymentIntent({ amount: 0n, currency: 'cny', metadata: {} }, 'k'));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe('amount: expected a positive whole number of minor units up to 9007199254740991, got 0');
    expect((await rejection(client().createRefund({ paymentIntent: 'pi_1', amount: 2n ** 53n }, 'k'))).message).toBe(
      'amount: expected a positive whole number of minor units up to 9007199254740991, got 9007199254740992',
    );
  });

  it.each(['cnyx', 'xcny', 'cn', 'c1y', ''])('a currency %j that is not three letters is refused, with the currency in the message', async (currency) => {
    const err = await rejection(client().createPaymentIntent({ amount: 100n, currency, metadata: {} }, 'k'));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toBe(`currency: expected an ISO 4217 code, got ${JSON.stringify(currency)}`);
    await expect(client().createPayout({ amount: 100n, currency }, 'k')).rejects.toThrow(RangeError);
  });

  it('an idempotency key is 1 to 255 characters: empty and 256 are refused, 255 is sent as given', async () => {
    for (const key of ['', 'k'.repeat(256)]) {
      const err = await rejection(client().createRefund({ paymentIntent: 'pi_1' }, key));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toBe('idempotencyKey: expected 1 to 255 characters');
    }
    let sent: string | null = null;
    nock(BASE)
      .post('/v1/payment_intents/pi_lim/cancel')
      .reply((req: Request) => {
        sent = req.headers.get('idempotency-key');
        return [200, { ...intent, status: 'canceled' }];
      });
    await client().cancelPaymentIntent('pi_lim', 'k'.repeat(255));
    expect(sent).toBe('k'.repeat(255));
  });
});

describe('parameters left out', () => {
  it('an intent without description, payment method or confirm sends none of them (never the text "undefined")', async () => {
    const seen: Record<string, string>[] = [];
    recordPost('/v1/payment_intents', intent, seen);
    await client().createPaymentIntent({ amount: 100n, currency: 'CNY', metadata: { topUpId: 't1' } }, 'k1');
    expect(seen).toEqual([{ amount: '100', currency: 'cny', 'metadata[topUpId]': 't1' }]);
  });

  it('a refund without an amount refunds what is left: no amount is sent', async () => {
    const seen: Record<string, string>[] = [];
    recordPost('/v1/refunds', refund, seen);
    expect((await client().createRefund({ paymentIntent: 'pi_lim' }, 'r1')).id).toBe('re_lim');
    expect(seen).toEqual([{ payment_intent: 'pi_lim' }]);
  });

  it('a page of balance transactions without dates sends no created filter', async () => {
    nock(BASE).get('/v1/balance_transactions').query({ limit: '10' }).reply(200, { object: 'list', data: [], has_more: false });
    expect(await client().listBalanceTransactions({ limit: 10 })).toEqual({ data: [], has_more: false });
  });

  it('a base URL given with trailing slashes reaches the same paths', async () => {
    nock(BASE).get('/v1/payouts/po_lim').reply(200, payout);
    expect((await client(`${BASE}///`).retrievePayout('po_lim')).id).toBe('po_lim');
  });
});

describe('each call returns the object it asked for', () => {
  it('confirm, retrieve a refund, create and retrieve a payout, retrieve an event; with Accept: application/json', async () => {
    const accepts: (string | null)[] = [];
    const reply = (body: object) => (req: Request) => {
      accepts.push(req.headers.get('accept'));
      return [200, body] as [number, object];
    };
    const event = { id: 'evt_lim', object: 'event', type: 'payout.paid', created: 1, data: { object: payout } };
    nock(BASE)
      .post('/v1/payment_intents/pi_lim/confirm', { payment_method: 'pm_card_visa' })
      .reply(reply({ ...intent, status: 'succeeded' }))
      .get('/v1/refunds/re_lim')
      .reply(reply(refund))
      .post('/v1/payouts', { amount: '100', currency: 'cny' })
      .reply(reply(payout))
      .get('/v1/payouts/po_lim')
      .reply(reply(payout))
      .get('/v1/events/evt_lim')
      .reply(reply(event));
    const c = client();
    expect((await c.confirmPaymentIntent('pi_lim', { paymentMethod: 'pm_card_visa' }, 'c1')).status).toBe('succeeded');
    expect((await c.retrieveRefund('re_lim')).id).toBe('re_lim');
    expect((await c.createPayout({ amount: 100n, currency: 'cny' }, 'p1')).id).toBe('po_lim');
    expect((await c.retrievePayout('po_lim')).status).toBe('pending');
    expect(await c.retrieveEvent('evt_lim')).toEqual(event);
    expect(accepts).toEqual(Array(5).fill('application/json'));
  });

  it.each([
    ['another object', { ...refund }],
    ['null', null],
  ])('a 2xx with %s instead of a payout is UNAVAILABLE (retried), saying what was expected', async (_name, body) => {
    nock(BASE).get('/v1/payouts/po_lim').times(3).reply(200, body === null ? 'null' : body);
    const err = await rejection(client().retrievePayout('po_lim'));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ kind: 'UNAVAILABLE', status: 200, message: 'GET /v1/payouts/po_lim: HTTP 200 without the expected payout object' });
  });

  it('a 300 carrying the right object is not a success', async () => {
    nock(BASE).get('/v1/refunds/re_lim').reply(300, refund);
    expect(await rejection(client().retrieveRefund('re_lim'))).toMatchObject({ kind: 'INVALID_REQUEST', status: 300, message: 'GET /v1/refunds/re_lim: HTTP 300' });
  });
});

describe('what an error says', () => {
  it('a 403 is AUTHENTICATION, not retried, with the gateway’s message after the request', async () => {
    nock(BASE).post('/v1/refunds').once().reply(403, { error: { type: 'permission_error', message: 'This key may not refund.' } });
    const err = await rejection(client().createRefund({ paymentIntent: 'pi_1', amount: 100n }, 'r403'));
    expect(err).toMatchObject({ name: 'GatewayError', kind: 'AUTHENTICATION', status: 403, retryable: false, message: 'POST /v1/refunds: This key may not refund.' });
    expect(err.cause).toBeUndefined();
  });

  it('a 409 (the same key still running at the gateway) is UNAVAILABLE and retried with the same key', async () => {
    nock(BASE).post('/v1/refunds').reply(409, { error: { type: 'idempotency_error', message: 'in progress' } });
    nock(BASE).post('/v1/refunds').reply(200, refund);
    expect((await client().createRefund({ paymentIntent: 'pi_lim', amount: 100n }, 'r409')).id).toBe('re_lim');
  });

  it('an error without a body says the request and the status', async () => {
    nock(BASE).get('/v1/payouts/po_lim').times(3).reply(503, 'down');
    expect(await rejection(client().retrievePayout('po_lim'))).toMatchObject({ kind: 'UNAVAILABLE', message: 'GET /v1/payouts/po_lim: HTTP 503' });
  });

  it('a refused connection says the gateway could not be reached, and carries the network error as its cause', async () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    nock(BASE).get('/v1/payouts/po_lim').times(3).replyWithError(refused);
    const err = await rejection(client().retrievePayout('po_lim'));
    expect(err).toMatchObject({ name: 'GatewayError', kind: 'UNAVAILABLE', message: 'GET /v1/payouts/po_lim: the gateway could not be reached' });
    expect(err.cause).toBeInstanceOf(Error);
  });
});

import nock from 'nock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayClient, GatewayError, type PaymentIntent } from './gateway-client.js';

const BASE = 'https://gateway.test';
const KEY = 'sk_test_client_0123456789';

function client(opts: { timeoutMs?: number; retries?: number } = {}) {
  return new GatewayClient({ url: BASE, secretKey: KEY, retryDelayMs: 1, timeoutMs: opts.timeoutMs ?? 1000, retries: opts.retries });
}

function intent(over: Partial<PaymentIntent> = {}): PaymentIntent {
  return {
    id: 'pi_123',
    object: 'payment_intent',
    amount: 5000,
    currency: 'cny',
    status: 'requires_payment_method',
    client_secret: 'pi_123_secret_abc',
    metadata: { topUpId: 'tu_1' },
    payment_method: null,
    last_payment_error: null,
    latest_charge: null,
    created: 1_750_000_000,
    description: null,
    ...over,
  };
}

/** The error a call rejects with, for its fields to be checked. */
async function failure(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
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

describe('GatewayClient requests', () => {
  it('sends a form-encoded POST with the Bearer key, an Idempotency-Key and nested metadata', async () => {
    let seen: { headers: Headers; body: string } | undefined;
    nock(BASE)
      .post('/v1/payment_intents')
      .reply(async (req: Request) => {
        seen = { headers: req.headers, body: await req.text() };
        return [200, intent()];
      });
    const pi = await client().createPaymentIntent(
      { amount: 5000n, currency: 'CNY', metadata: { topUpId: 'tu_1', card: '8 0001' }, description: 'Top-up', paymentMethod: 'pm_card_visa', confirm: true },
      'topup:tu_1',
    );
    expect(pi.id).toBe('pi_123');
    expect(seen!.headers.get('authorization')).toBe(`Bearer ${KEY}`);
    expect(seen!.headers.get('idempotency-key')).toBe('topup:tu_1');
    expect(seen!.headers.get('content-type')).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(seen!.body))).toEqual({
      amount: '5000',
      currency: 'cny',
      'metadata[topUpId]': 'tu_1',
      'metadata[card]': '8 0001',
      description: 'Top-up',
      payment_method: 'pm_card_visa',
      confirm: 'true',
    });
  });

  it('sends a GET with its filters in the query and no Idempotency-Key', async () => {
    let headers = new Headers();
    nock(BASE)
      .get('/v1/balance_transactions')
      .query({ 'created[gte]': '100', 'created[lt]': '200', limit: '50', starting_after: 'txn_9' })
      .reply((req: Request) => {
        headers = req.headers;
        return [200, { object: 'list', url: '/v1/balance_transactions', data: [], has_more: true }];
      });
    const page = await client().listBalanceTransactions({ createdGte: 100, createdLt: 200, limit: 50, startingAfter: 'txn_9' });
    expect(page).toEqual({ data: [], has_more: true });
    expect(headers.get('idempotency-key')).toBeNull();
    expect(headers.get('authorization')).toBe(`Bearer ${KEY}`);
  });

  it('escapes ids in paths', async () => {
    nock(BASE).post('/v1/payment_intents/pi_a%2Fb/cancel').reply(200, intent({ status: 'canceled' }));
    expect((await client().cancelPaymentIntent('pi_a/b', 'cancel:1')).status).toBe('canceled');
  });

  it.each([
    ['zero', 0n],
    ['a negative amount', -5n],
    ['more than a JSON number holds exactly', 2n ** 53n],
  ])('refuses %s before sending anything', async (_name, amount) => {
    await expect(client().createPaymentIntent({ amount, currency: 'cny', metadata: {} }, 'k')).rejects.toThrow(RangeError);
    await expect(client().createRefund({ paymentIntent: 'pi_1', amount }, 'k')).rejects.toThrow(RangeError);
    await expect(client().createPayout({ amount, currency: 'cny' }, 'k')).rejects.toThrow(RangeError);
  });

  it('never puts the secret key in an error', async () => {
    nock(BASE).get('/v1/payouts/po_1').times(3).reply(503, 'down');
    const err = await failure(client().retrievePayout('po_1'));
    expect(JSON.stringify({ message: err.message, stack: err.stack, err })).not.toContain(KEY);
  });
});

describe('GatewayClient retries', () => {
  it('retries a 5xx with the same Idempotency-Key and returns the answer that follows', async () => {
    const keys: unknown[] = [];
    nock(BASE)
      .post('/v1/refunds')
      .reply((req: Request) => {
        keys.push(req.headers.get('idempotency-key'));
        return [502, { error: { type: 'api_error', message: 'bad gateway' } }];
      })
      .post('/v1/refunds')
      .reply((req: Request) => {
        keys.push(req.headers.get('idempotency-key'));
        return [200, { id: 're_1', object: 'refund', amount: 100, currency: 'cny', payment_intent: 'pi_1', status: 'succeeded', metadata: {}, created: 1 }];
      });
    const refund = await client().createRefund({ paymentIntent: 'pi_1', amount: 100n }, 'refund:1');
    expect(refund.id).toBe('re_1');
    expect(keys).toEqual(['refund:1', 'refund:1']);
  });

  it('retries a 429', async () => {
    nock(BASE).get('/v1/payment_intents/pi_123').reply(429, { error: { type: 'rate_limit_error', message: 'slow down' } });
    nock(BASE).get('/v1/payment_intents/pi_123').reply(200, intent());
    expect((await client().retrievePaymentIntent('pi_123')).id).toBe('pi_123');
  });

  it('gives up after the retries with UNAVAILABLE, retryable, when the 5xx persists', async () => {
    const scope = nock(BASE).post('/v1/payouts').times(3).reply(500, { error: { type: 'api_error', message: 'internal' } });
    const err = await failure(client().createPayout({ amount: 100n, currency: 'cny' }, 'payout:1'));
    expect(err).toMatchObject({ kind: 'UNAVAILABLE', retryable: true, status: 500 });
    expect(scope.isDone()).toBe(true);
  });

  it('treats a time-out as UNAVAILABLE and retries it', async () => {
    // A reply that waits, not nock's .delay(): in nock 15 that delays only the body, and undici
    // then trips an internal assertion when the aborted body arrives.
    const slow = async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      return [200, { id: 're_1', object: 'refund' }] as const;
    };
    nock(BASE).get('/v1/refunds/re_1').times(2).reply(slow);
    const err = await failure(client({ timeoutMs: 50, retries: 1 }).retrieveRefund('re_1'));
    expect(err).toMatchObject({ kind: 'UNAVAILABLE', retryable: true });
    expect(err.message).toContain('no answer in 50 ms');
  });

  it('treats a refused connection as UNAVAILABLE', async () => {
    // An Error instance: with fetch, nock 15 never settles a request replied with a plain object.
    nock(BASE).get('/v1/payouts/po_1').times(3).replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    expect(await failure(client().retrievePayout('po_1'))).toMatchObject({ kind: 'UNAVAILABLE', retryable: true });
  });

  it('treats a 2xx that is not the expected object as UNAVAILABLE', async () => {
    nock(BASE).get('/v1/payouts/po_1').times(3).reply(200, '<html>proxy</html>');
    expect(await failure(client().retrievePayout('po_1'))).toMatchObject({ kind: 'UNAVAILABLE', status: 200 });
  });
});

describe('GatewayClient refusals', () => {
  it('turns a 402 into CARD_DECLINED carrying the intent and the decline code, without retrying', async () => {
    const declined = intent({ last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' } });
    nock(BASE)
      .post('/v1/payment_intents/pi_123/confirm', { payment_method: 'pm_card_insufficientFunds' })
      .reply(402, { error: { type: 'card_error', code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.', payment_intent: declined } });
    const err = await failure(client().confirmPaymentIntent('pi_123', { paymentMethod: 'pm_card_insufficientFunds' }, 'confirm:1'));
    expect(err).toMatchObject({ kind: 'CARD_DECLINED', status: 402, code: 'card_declined', declineCode: 'insufficient_funds', retryable: false });
    expect(err.paymentIntent).toEqual(declined);
  });

  it('turns a 401 into AUTHENTICATION, without retrying', async () => {
    nock(BASE).get('/v1/payment_intents/pi_123').once().reply(401, { error: { type: 'invalid_request_error', message: 'Invalid API Key provided.' } });
    expect(await failure(client().retrievePaymentIntent('pi_123'))).toMatchObject({ kind: 'AUTHENTICATION', status: 401, retryable: false });
  });

  it.each([
    [400, 'amount_too_large'],
    [404, 'resource_missing'],
  ])('turns a %s into INVALID_REQUEST with its code, without retrying', async (status, code) => {
    nock(BASE).post('/v1/refunds').once().reply(status, { error: { type: 'invalid_request_error', code, message: 'no' } });
    const err = await failure(client().createRefund({ paymentIntent: 'pi_1', amount: 100n }, 'refund:2'));
    expect(err).toMatchObject({ kind: 'INVALID_REQUEST', status, code, retryable: false });
  });
});

/**
 * The typed client against a fake API (no server): typed documents, idempotency keys for money
 * mutations, retries with the same key, userErrors as results, pagination, and token handling.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { data, fakeApi, gqlError, networkError, type Answer } from './fake-api.test-support.js';
import {
  CancelPaymentDocument,
  CardHistoryDocument,
  CreatePaymentDocument,
  CreateWebhookEndpointDocument,
  OneCardError,
  PaymentDocument,
  PaymentsDocument,
  PayBillDocument,
  ViewerDocument,
  type PaymentFieldsFragment,
  type PaymentQuery,
  type UserErrorCode,
} from './index.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function payment(id: string, extra: Partial<PaymentFieldsFragment> = {}): PaymentFieldsFragment {
  return {
    id,
    status: 'REQUIRES_CARD',
    amount: { amount: 1200, currency: 'CNY' },
    refundedAmount: { amount: 0, currency: 'CNY' },
    merchant: 'TWVyY2hhbnQ6MQ',
    merchantName: 'Tea House',
    orderReference: `order-${id}`,
    description: null,
    metadata: {},
    card: null,
    failureCode: null,
    cancelReason: null,
    createdAt: '2026-11-25T08:00:00.000Z',
    expiresAt: '2026-11-25T08:15:00.000Z',
    succeededAt: null,
    canceledAt: null,
    refunds: [],
    ...extra,
  };
}

const created = (id = 'UGF5bWVudDox') => data({ createPayment: { payment: payment(id), userErrors: [] } });
const input = { amount: 1200, currency: 'CNY', orderReference: 'order-1' };

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.unreachable('expected a rejection'),
    (err: unknown) => err,
  );
}

describe('execute', () => {
  it('sends the document as text with its variables and returns typed data', async () => {
    const api = fakeApi(() => data({ payment: { ...payment('p1'), ledgerEntries: [] } }));
    const onecard = api.client();
    const result = await onecard.execute(PaymentDocument, { id: 'p1' });
    expectTypeOf(result).toEqualTypeOf<PaymentQuery>();
    expect(result.payment?.merchantName).toBe('Tea House');
    expect(api.calls).toHaveLength(1);
    expect(api.calls[0]!.query).toMatch(/^query Payment\(\$id: ID!\) \{/);
    expect(api.calls[0]!.query).toContain('fragment PaymentFields on Payment');
    expect(api.calls[0]!.variables).toEqual({ id: 'p1' });
    expect(api.calls[0]!.authorization).toBe('Bearer token-1');
  });

  it('variables are optional when every one is', async () => {
    const api = fakeApi(() => data({ viewer: { kind: 'MERCHANT', clientId: 'c', tenantId: 't', holderId: null, scopes: [] } }));
    const { viewer } = await api.client().execute(ViewerDocument);
    expect(viewer?.kind).toBe('MERCHANT');
    expect(api.calls[0]!.variables).toBeUndefined();
    // @ts-expect-error PaymentDocument needs its id
    await expect(api.client().execute(PaymentDocument)).resolves.toBeDefined();
  });

  it('GraphQL errors reject with OneCardError, as request does', async () => {
    const api = fakeApi(() => gqlError('FORBIDDEN', 200));
    const err = await rejection(api.client().execute(PaymentDocument, { id: 'p1' }));
    expect(err).toBeInstanceOf(OneCardError);
    expect(err).toMatchObject({ code: 'FORBIDDEN', status: 200 });
  });
});

describe('idempotency keys of money mutations', () => {
  it('a money mutation without a key gets a new UUID per call, and the caller\'s variables are left alone', async () => {
    const api = fakeApi(() => created());
    const onecard = api.client();
    const vars = { input: { ...input } };
    await onecard.execute(CreatePaymentDocument, vars);
    await onecard.execute(CreatePaymentDocument, vars);
    const [a, b] = api.calls.map((c) => c.variables!.input.idempotencyKey as string);
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
    expect(api.calls[0]!.variables!.input).toEqual({ ...input, idempotencyKey: a });
    expect(vars).toEqual({ input });
  });

  it('a key the caller gives is used as it is, in the input or as an option', async () => {
    const api = fakeApi(() => created());
    const onecard = api.client();
    await onecard.execute(CreatePaymentDocument, { input: { ...input, idempotencyKey: 'order-1-create' } });
    await onecard.execute(CreatePaymentDocument, { input }, { idempotencyKey: 'order-1-again' });
    expect(api.calls.map((c) => c.variables!.input.idempotencyKey)).toEqual(['order-1-create', 'order-1-again']);
    await expect(onecard.execute(PaymentDocument, { id: 'p' }, { idempotencyKey: 'x' })).rejects.toThrow(/not a money mutation/);
  });

  it('the key may be left out at the type level only for money mutations', () => {
    const api = fakeApi(() => created());
    const onecard = api.client();
    // Type checks only (never called): the key is optional in a money mutation's input...
    const ok = () => onecard.execute(PayBillDocument, { input: { bill: 'b1' } });
    // ...while the rest of the input stays as the schema has it.
    // @ts-expect-error orderReference is required
    const missing = () => onecard.execute(CreatePaymentDocument, { input: { amount: 1, currency: 'CNY' } });
    expect([ok, missing]).toHaveLength(2);
  });

  it('text operations through request() get keys too, wherever the key is', async () => {
    const api = fakeApi(() => data({}));
    const onecard = api.client();
    await onecard.request('mutation($input: CancelPaymentInput!) { cancelPayment(input: $input) { userErrors { code } } }', { input: { payment: 'p1' } });
    await onecard.request('mutation($p: ID!, $k: String!) { cancelPayment(input: { payment: $p, idempotencyKey: $k }) { userErrors { code } } }', { p: 'p1' });
    await onecard.request('mutation($i: RefundPaymentInput!) { refundPayment(input: $i) { userErrors { code } } }', { i: { payment: 'p1', idempotencyKey: 'mine' } });
    await onecard.request('mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }', { input: { url: 'https://x', eventTypes: ['*'] } });
    expect(api.calls[0]!.variables!.input.idempotencyKey).toMatch(UUID);
    expect(api.calls[1]!.variables!.k).toMatch(UUID);
    expect(api.calls[2]!.variables!.i.idempotencyKey).toBe('mine');
    expect(api.calls[3]!.variables!.input).toEqual({ url: 'https://x', eventTypes: ['*'] }); // not a money mutation: untouched
  });
});

describe('retries', () => {
  /** Answers each call in turn from `answers` (the last one over and over). */
  const inTurn = (...answers: Answer[]) => (_: unknown, i: number) => answers[Math.min(i, answers.length - 1)]!;

  it('a network error, then a 5xx: the money mutation is sent again with the same key', async () => {
    const api = fakeApi(inTurn(networkError(), gqlError('INTERNAL_SERVER_ERROR', 500), { status: 503, body: 'busy' }, created()));
    const result = await api.client().mutate(CreatePaymentDocument, { input });
    expect(result.ok).toBe(true);
    expect(api.calls).toHaveLength(4);
    const keys = new Set(api.calls.map((c) => c.variables!.input.idempotencyKey));
    expect(keys.size).toBe(1);
    expect(result.idempotencyKey).toBe([...keys][0]);
    expect(api.calls.every((c) => JSON.stringify(c.variables) === JSON.stringify(api.calls[0]!.variables))).toBe(true);
  });

  it('IDEMPOTENCY_CONFLICT (the first call still runs): retried with the key, honouring Retry-After up to maxDelayMs', async () => {
    const api = fakeApi(inTurn(gqlError('IDEMPOTENCY_CONFLICT', 409, { 'retry-after': '1' }), created()));
    const started = Date.now();
    const made = await api.client({ retry: { baseDelayMs: 1, maxDelayMs: 60 } }).execute(CancelPaymentDocument, { input: { payment: 'p1' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(55); // Retry-After: 1 s, capped at 60 ms
    expect(made).toBeDefined();
    expect(api.calls).toHaveLength(2);
    expect(api.calls[1]!.variables!.input.idempotencyKey).toBe(api.calls[0]!.variables!.input.idempotencyKey);
  });

  it('THROTTLED (the cost bucket is empty, nothing ran): sent again after its Retry-After, not sooner, whatever maxDelayMs says', async () => {
    const api = fakeApi(inTurn(gqlError('THROTTLED', 429, { 'retry-after': '3' }), created()));
    const started = Date.now();
    const made = await api.client({ retry: { baseDelayMs: 1, maxDelayMs: 60 } }).execute(CancelPaymentDocument, { input: { payment: 'p1' } });
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_990); // Retry-After: 3 s; sending sooner only spends an attempt
    expect(made).toBeDefined();
    expect(api.calls).toHaveLength(2);
  });

  it('gives up after `attempts` in all: a network error surfaces as fetch\'s own error, a 5xx as OneCardError', async () => {
    const down = fakeApi(() => networkError());
    const err = await rejection(down.client({ retry: { attempts: 3, baseDelayMs: 1 } }).execute(CreatePaymentDocument, { input }));
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toBe('fetch failed');
    expect(down.calls).toHaveLength(3);

    const failing = fakeApi(() => gqlError('INTERNAL_SERVER_ERROR', 502));
    await expect(failing.client().execute(CreatePaymentDocument, { input })).rejects.toMatchObject({ name: 'OneCardError', code: 'INTERNAL_SERVER_ERROR', status: 502 });
    expect(failing.calls).toHaveLength(4); // the default: 4 attempts
  });

  it('4xx and GraphQL errors are not retried', async () => {
    for (const answer of [gqlError('BAD_USER_INPUT', 400), gqlError('IDEMPOTENCY_KEY_REUSED', 422), gqlError('FORBIDDEN', 403), gqlError('INTERNAL_SERVER_ERROR', 200), { status: 404, body: 'no' }]) {
      const api = fakeApi(() => answer);
      await expect(api.client().execute(CreatePaymentDocument, { input })).rejects.toBeInstanceOf(OneCardError);
      expect(api.calls).toHaveLength(1);
    }
  });

  it('a mutation that is not a money mutation is never retried, not even on a network error', async () => {
    for (const answer of [networkError(), gqlError('INTERNAL_SERVER_ERROR', 500)]) {
      const api = fakeApi(() => answer);
      await expect(api.client().execute(CreateWebhookEndpointDocument, { input: { url: 'https://shop.example/hooks', eventTypes: ['*'] } })).rejects.toBeDefined();
      expect(api.calls).toHaveLength(1);
    }
    // Nor a money mutation beside another one in the same document.
    const api = fakeApi(() => networkError());
    const both = `mutation($a: CancelPaymentInput!, $w: CreateWebhookEndpointInput!) { cancelPayment(input: $a) { userErrors { code } } createWebhookEndpoint(input: $w) { secret } }`;
    await expect(api.client().request(both, { a: { payment: 'p' }, w: { url: 'https://x', eventTypes: ['*'] } })).rejects.toThrow('fetch failed');
    expect(api.calls).toHaveLength(1);
  });

  it('queries are retried on network errors and 5xx', async () => {
    const api = fakeApi(inTurn(networkError(), { status: 503, body: 'busy' }, data({ payment: null })));
    expect(await api.client().execute(PaymentDocument, { id: 'p1' })).toEqual({ payment: null });
    expect(api.calls).toHaveLength(3);
  });

  it('THROTTLED is retried for any operation, a mutation without a key too: nothing ran', async () => {
    const api = fakeApi(inTurn(gqlError('THROTTLED', 429, { 'retry-after': '1' }), data({ createWebhookEndpoint: { endpoint: null, secret: null, userErrors: [] } })));
    await api.client({ retry: { baseDelayMs: 1, maxDelayMs: 5 } }).execute(CreateWebhookEndpointDocument, { input: { url: 'https://shop.example/hooks', eventTypes: ['*'] } });
    expect(api.calls).toHaveLength(2);
    const off = fakeApi(() => gqlError('THROTTLED', 429, { 'retry-after': '1' }));
    await expect(off.client({ retry: false }).execute(CreateWebhookEndpointDocument, { input: { url: 'https://shop.example/hooks', eventTypes: ['*'] } })).rejects.toMatchObject({ code: 'THROTTLED', status: 429, retryAfterMs: 1000 });
    expect(off.calls).toHaveLength(1);
  });

  it('THROTTLED with a long wait (an hourly look-up limit) is not retried: the caller gets the wait', async () => {
    const api = fakeApi(() => gqlError('THROTTLED', 429, { 'retry-after': '3600' }));
    await expect(api.client({ retry: { baseDelayMs: 1, maxDelayMs: 5 } }).execute(PaymentDocument, { id: 'p1' })).rejects.toMatchObject({ code: 'THROTTLED', retryAfterMs: 3_600_000 });
    expect(api.calls).toHaveLength(1);
  });

  it('retry: false (client or call) turns retries off', async () => {
    const api = fakeApi(() => networkError());
    await expect(api.client({ retry: false }).execute(CreatePaymentDocument, { input })).rejects.toThrow('fetch failed');
    await expect(api.client().execute(CreatePaymentDocument, { input }, { retry: false })).rejects.toThrow('fetch failed');
    expect(api.calls).toHaveLength(2);
  });

  it('aborting the call ends the wait before a retry', async () => {
    const controller = new AbortController();
    const api = fakeApi(() => {
      setTimeout(() => controller.abort(new Error('given up')), 20);
      return gqlError('INTERNAL_SERVER_ERROR', 503);
    });
    const started = Date.now();
    const slow = api.client({ retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 } });
    await expect(slow.execute(PaymentDocument, { id: 'p' }, { signal: controller.signal })).rejects.toThrow('given up');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(api.calls).toHaveLength(1);
  });
});

describe('mutate: userErrors as results', () => {
  it('ok with the data when there are no user errors', async () => {
    const api = fakeApi(() => created('p9'));
    const r = await api.client().mutate(CreatePaymentDocument, { input });
    expect(r).toMatchObject({ ok: true, userErrors: [], idempotencyKey: expect.stringMatching(UUID) });
    if (r.ok) expect(r.data.createPayment.payment?.id).toBe('p9');
  });

  it('not ok with the typed user errors, and the data beside them', async () => {
    const refusal = { code: 'DUPLICATE_ORDER', field: ['input', 'orderReference'], message: 'order-1 has a live payment' };
    const api = fakeApi(() => data({ createPayment: { payment: null, userErrors: [refusal] } }));
    const r = await api.client().mutate(CreatePaymentDocument, { input }, { idempotencyKey: 'k-1' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expectTypeOf(r.userErrors[0]!.code).toEqualTypeOf<UserErrorCode>();
    expectTypeOf(r.userErrors[0]!.field).toEqualTypeOf<Array<string> | null>();
    expect(r.userErrors).toEqual([refusal]);
    expect(r.data.createPayment.payment).toBeNull();
    expect(r.idempotencyKey).toBe('k-1');
    expect(api.calls).toHaveLength(1); // a refusal is an answer: not retried
  });
});

describe('paginate', () => {
  const page = (ids: string[], endCursor: string | null, hasNextPage: boolean) =>
    data({ payments: { edges: ids.map((id) => ({ cursor: `c-${id}`, node: payment(id) })), pageInfo: { endCursor, hasNextPage } } });

  it('yields every node across pages, following pageInfo.endCursor', async () => {
    const api = fakeApi((call) => {
      switch (call.variables?.after) {
        case undefined:
          return page(['a', 'b'], 'c-b', true);
        case 'c-b':
          return page(['c', 'd'], 'c-d', true);
        default:
          return page(['e'], 'c-e', false);
      }
    });
    const ids: string[] = [];
    for await (const p of api.client().paginate(PaymentsDocument, { first: 2, filter: { status: ['SUCCEEDED'] } }, (d) => d.payments)) {
      expectTypeOf(p).toEqualTypeOf<PaymentFieldsFragment>();
      ids.push(p.id);
    }
    expect(ids).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(api.calls.map((c) => c.variables)).toEqual([
      { first: 2, filter: { status: ['SUCCEEDED'] } },
      { first: 2, filter: { status: ['SUCCEEDED'] }, after: 'c-b' },
      { first: 2, filter: { status: ['SUCCEEDED'] }, after: 'c-d' },
    ]);
  });

  it('starts after variables.after, stops early when the loop breaks, and on a missing connection', async () => {
    const api = fakeApi((call) => (call.variables?.after === 'start' ? page(['x', 'y'], 'c-y', true) : page(['z'], null, false)));
    const onecard = api.client();
    for await (const p of onecard.paginate(PaymentsDocument, { after: 'start' }, (d) => d.payments)) {
      expect(p.id).toBe('x');
      break;
    }
    expect(api.calls).toHaveLength(1);

    const none = fakeApi(() => data({ card: null }));
    const nodes = [];
    for await (const n of none.client().paginate(CardHistoryDocument, { card: 'c1', first: 50 }, (d) => d.card?.history)) nodes.push(n);
    expect(nodes).toEqual([]);
  });

  it('stops when the server answers the same cursor again', async () => {
    const api = fakeApi(() => page(['a'], 'c-a', true));
    const ids = [];
    for await (const p of api.client().paginate(PaymentsDocument, {}, (d) => d.payments)) ids.push(p.id);
    expect(ids).toEqual(['a', 'a']);
    expect(api.calls).toHaveLength(2);
  });
});

describe('tokens', () => {
  it('renews a token about to expire, and on a 401 gets a new one and retries once', async () => {
    const api = fakeApi(() => data({ payment: null }), { expiresIn: 300 });
    let clock = Date.now();
    const onecard = api.client({ now: () => clock });
    await onecard.execute(PaymentDocument, { id: 'p' });
    clock += 200_000; // 100 s left of 300: still used
    await onecard.execute(PaymentDocument, { id: 'p' });
    expect(api.tokenRequests()).toBe(1);
    clock += 60_000; // 40 s left: renewed before use
    await onecard.execute(PaymentDocument, { id: 'p' });
    expect(api.tokenRequests()).toBe(2);
    expect(api.calls.map((c) => c.authorization)).toEqual(['Bearer token-1', 'Bearer token-1', 'Bearer token-2']);

    api.revoke('token-2');
    await onecard.execute(CreatePaymentDocument, { input });
    expect(api.tokenRequests()).toBe(3);
    expect(api.calls.slice(3).map((c) => c.authorization)).toEqual(['Bearer token-2', 'Bearer token-3']);
    expect(api.calls[4]!.variables!.input.idempotencyKey).toBe(api.calls[3]!.variables!.input.idempotencyKey);
  });

  it('a network error while getting the token is retried too', async () => {
    const api = fakeApi(() => data({ payment: null }));
    let failures = 1;
    const flaky: typeof fetch = (input, init) => {
      if (String(input).endsWith('/oauth/token') && failures-- > 0) return Promise.reject(networkError());
      return api.fetch(input, init);
    };
    expect(await api.client({ fetch: flaky }).execute(PaymentDocument, { id: 'p' })).toEqual({ payment: null });
    expect(api.tokenRequests()).toBe(1);
  });
});

/**
 * `ok` narrows a mutation's result: inside `if (r.ok)` the payload and its objects are non-null, no
 * `!` needed; outside, they stay nullable. The type checks are compile-time (`npm run typecheck`
 * fails on them); the values are checked here too.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { CardSessionMessageMutation, CreatePaymentMutation, RefundPaymentMutation } from './generated/graphql.js';
import { toMutationResult } from './results.js';

const payment = { id: 'UGF5bWVudDox', status: 'REQUIRES_CARD' } as NonNullable<CreatePaymentMutation['createPayment']['payment']>;
const refused = { code: 'DUPLICATE_ORDER' as const, field: ['input', 'orderReference'], message: 'taken' };

describe('a mutation result', () => {
  it('ok: the payload object is there, typed non-null', () => {
    const r = toMutationResult<CreatePaymentMutation>({ createPayment: { payment, userErrors: [] } }, 'key-1');
    expect(r.ok).toBe(true);
    if (!r.ok) return expect.unreachable();
    expectTypeOf(r.data.createPayment.payment).toEqualTypeOf<NonNullable<CreatePaymentMutation['createPayment']['payment']>>();
    expect(r.data.createPayment.payment.id).toBe(payment.id);
    expect(r.idempotencyKey).toBe('key-1');
  });

  it('not ok: the user errors, and the payload object stays nullable', () => {
    const r = toMutationResult<CreatePaymentMutation>({ createPayment: { payment: null, userErrors: [refused] } }, 'key-2');
    expect(r).toMatchObject({ ok: false, userErrors: [refused] });
    if (r.ok) return expect.unreachable();
    expectTypeOf(r.data.createPayment.payment).toEqualTypeOf<CreatePaymentMutation['createPayment']['payment']>();
    // @ts-expect-error possibly null when refused
    expect(() => r.data.createPayment.payment.id).toThrow(TypeError);
  });

  it('every object of a payload is narrowed (a refund: the payment and the refund)', () => {
    type Refunded = Extract<ReturnType<typeof toMutationResult<RefundPaymentMutation>>, { ok: true }>['data']['refundPayment'];
    expectTypeOf<Refunded['refund']>().toEqualTypeOf<NonNullable<RefundPaymentMutation['refundPayment']['refund']>>();
    expectTypeOf<Refunded['payment']>().toEqualTypeOf<NonNullable<RefundPaymentMutation['refundPayment']['payment']>>();
  });

  it('a field a success may leave null stays nullable: hostMessage (openCardSession answers without one)', () => {
    type Step = Extract<ReturnType<typeof toMutationResult<CardSessionMessageMutation>>, { ok: true }>['data']['cardSessionMessage'];
    expectTypeOf<Step['session']>().toEqualTypeOf<NonNullable<CardSessionMessageMutation['cardSessionMessage']['session']>>();
    expectTypeOf<Step['hostMessage']>().toEqualTypeOf<CardSessionMessageMutation['cardSessionMessage']['hostMessage']>();
  });
});

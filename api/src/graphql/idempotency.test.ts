import { isInputObjectType, getNamedType } from 'graphql';
import { getMetadataStorage, type MiddlewareFn } from 'type-graphql';
import { describe, expect, it } from 'vitest';
import { TopUpType } from '../topups/topups.types.js';
import { canonicalJson, decodePayload, encodePayload, isIdempotencyMiddleware, requestHash } from './idempotency.js';
import { Money } from './money.js';
import { apiSchema } from '../schema.js';
import { userError, UserErrorCode } from './user-error.js';

describe('the request hash', () => {
  it('does not depend on the order of keys, at any depth', () => {
    const a = { input: { card: 'Q2FyZDox', amount: 1200n, idempotencyKey: 'k', meta: { b: 1, a: [{ y: 2, x: 1 }] } } };
    const b = { input: { meta: { a: [{ x: 1, y: 2 }], b: 1 }, idempotencyKey: 'k', amount: 1200n, card: 'Q2FyZDox' } };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(requestHash('createTopUp', a)).toBe(requestHash('createTopUp', b));
    expect(requestHash('createTopUp', a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps bigints exact: amounts beyond 2^53 that a float would merge stay apart', () => {
    const big = 2n ** 60n;
    expect(canonicalJson({ amount: big })).toBe('{"amount":1152921504606846976}');
    expect(requestHash('op', { amount: big })).not.toBe(requestHash('op', { amount: big + 1n }));
    // A bigint and a number of the same value are the same amount.
    expect(canonicalJson({ amount: 1200n })).toBe(canonicalJson({ amount: 1200 }));
  });

  it('tells apart what differs: another value, another operation, a string "1200" and the number 1200, null and absent', () => {
    const h = (op: string, input: unknown) => requestHash(op, { input });
    const base = h('createTopUp', { amount: 1200n });
    expect(h('createTopUp', { amount: 1300n })).not.toBe(base);
    expect(h('refundTopUp', { amount: 1200n })).not.toBe(base);
    expect(h('createTopUp', { amount: '1200' })).not.toBe(base);
    expect(h('createTopUp', { amount: 1200n, paymentMethod: null })).not.toBe(base);
    expect(h('createTopUp', { amount: 1200n, paymentMethod: undefined })).toBe(base);
  });

  it('writes dates as ISO strings and arrays in order', () => {
    expect(canonicalJson({ at: new Date('2026-11-25T08:00:00+08:00'), list: [3, 1, 2] })).toBe('{"at":"2026-11-25T00:00:00.000Z","list":[3,1,2]}');
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  it.each([
    ['NaN', Number.NaN],
    ['a function', () => 1],
    ['a Map', new Map()],
    ['a Buffer', Buffer.from('x')],
    ['a symbol', Symbol('x')],
  ])('refuses %s rather than guessing', (_name, value) => {
    expect(() => canonicalJson({ value })).toThrow(TypeError);
  });
});

describe('the stored payload', () => {
  it('keeps bigint amounts, dates, object classes and the properties field resolvers read', () => {
    const topUp = Object.assign(new TopUpType(), { id: 'VG9wVXA6MQ', uuid: '0d9c1b0e-0000-4000-8000-000000000001', amount: Money.of(9_007_199_254_740_993n, 'CNY'), createdAt: new Date('2026-11-25T01:02:03.004Z'), paidAt: null });
    const payload = { topUp, userErrors: [userError(UserErrorCode.GATEWAY_UNAVAILABLE, 'down', ['input'])] };
    const json = JSON.parse(JSON.stringify(encodePayload(payload)));
    expect(json.topUp).toMatchObject({ $type: 'TopUp', amount: { $type: 'Money', amount: { $bigint: '9007199254740993' } }, createdAt: { $date: '2026-11-25T01:02:03.004Z' } });
    const back = decodePayload(json) as typeof payload;
    expect(back).toEqual(payload);
    expect(back.topUp).toBeInstanceOf(TopUpType);
    expect(back.topUp.amount).toBeInstanceOf(Money);
    expect(back.topUp.amount.amount).toBe(9_007_199_254_740_993n);
    expect(back.topUp.createdAt).toEqual(new Date('2026-11-25T01:02:03.004Z'));
    expect(back.topUp.uuid).toBe(topUp.uuid);
  });

  it('never misreads an object whose own keys start with $', () => {
    const payload = { metadata: { $bigint: 'not a number', $type: 'TopUp', plain: 1 }, list: [{ $date: 'x' }] };
    expect(decodePayload(JSON.parse(JSON.stringify(encodePayload(payload))))).toEqual(payload);
  });
});

/**
 * Mutations being built in parallel that take a key but do not carry @Idempotent() yet. Empty this
 * list as they get it; nothing else may be added to it.
 */
const PENDING = new Set<string>();

describe('every mutation that takes an idempotency key is idempotent', () => {
  it('each mutation whose input has idempotencyKey carries @Idempotent()', async () => {
    const schema = await apiSchema();
    const keyed = Object.values(schema.getMutationType()!.getFields())
      .filter((field) => {
        const input = field.args.find((a) => a.name === 'input');
        const type = input && getNamedType(input.type);
        return type && isInputObjectType(type) && 'idempotencyKey' in type.getFields();
      })
      .map((field) => field.name);
    expect(keyed).toEqual(expect.arrayContaining(['createTopUp', 'refundTopUp', 'postJournalEntry', 'reverseJournalEntry']));
    const storage = getMetadataStorage();
    const missing = keyed.filter((name) => !PENDING.has(name)).filter((name) => {
      const mutation = storage.mutations.find((m) => m.schemaName === name);
      const middlewares = storage.middlewares.filter((m) => m.target === mutation?.target && m.fieldName === mutation?.methodName).flatMap((m) => m.middlewares);
      return !middlewares.some(isIdempotencyMiddleware);
    });
    expect(missing, 'add @Idempotent() to these mutations (api/src/graphql/idempotency.ts)').toEqual([]);
  });

  it('the check tells @Idempotent()’s middleware from any other: a mutation with another middleware only is still missing it', async () => {
    await apiSchema();
    const createPayment = getMetadataStorage().mutations.find((m) => m.schemaName === 'createPayment')!;
    expect(createPayment.middlewares?.some(isIdempotencyMiddleware)).toBe(true);
    const logging: MiddlewareFn = (_action, next) => next();
    expect(isIdempotencyMiddleware(logging)).toBe(false);
  });
});

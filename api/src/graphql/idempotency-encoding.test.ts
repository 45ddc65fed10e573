/**
 * The two encodings idempotency rests on, value by value: the canonical JSON a request is hashed
 * from (two requests are "the same" exactly when it is equal) and the stored payload a replay is
 * answered from (it must come back as it went in). idempotency.test.ts beside it holds the
 * properties; this is the table of every kind of value each accepts or refuses. (Found by mutation
 * testing, docs/testing.md.)
 */
import { describe, expect, it } from 'vitest';
import { TopUpType } from '../topups/topups.types.js';
import { canonicalJson, decodePayload, encodePayload } from './idempotency.js';
import { Money } from './money.js';

describe('canonical JSON, value by value', () => {
  it.each<[string, unknown, string]>([
    ['null', null, 'null'],
    ['true', true, 'true'],
    ['false', false, 'false'],
    ['a string, escaped as JSON', 'say "hi"\n', '"say \\"hi\\"\\n"'],
    ['a number', -12.5, '-12.5'],
    ['a bigint beyond 2^53', 2n ** 64n, '18446744073709551616'],
    ['a date, as its ISO string in UTC', new Date('2026-11-25T08:00:00+08:00'), '"2026-11-25T00:00:00.000Z"'],
    ['an empty object', {}, '{}'],
    ['an empty array', [], '[]'],
    ['an array with a hole (undefined), as JSON writes it', [1, undefined, 2], '[1,null,2]'],
    ['keys sorted, undefined left out, null kept', { b: 1, a: null, c: undefined, A: true }, '{"A":true,"a":null,"b":1}'],
    ['a key that needs escaping', { 'x"y': 1 }, '{"x\\"y":1}'],
    ['nested objects and arrays', { z: [{ y: false, x: [true] }], a: 'v' }, '{"a":"v","z":[{"x":[true],"y":false}]}'],
  ])('%s', (_name, value, json) => {
    expect(canonicalJson(value)).toBe(json);
  });

  it('undefined on its own is refused (in an array it is null, in an object left out)', () => {
    expect(() => canonicalJson(undefined)).toThrow(new TypeError('canonical JSON has no undefined'));
  });

  it('true and false are not the same request', () => {
    expect(canonicalJson({ flag: true })).not.toBe(canonicalJson({ flag: false }));
  });

  it.each<[string, unknown, string]>([
    ['Infinity', Number.POSITIVE_INFINITY, 'canonical JSON has no Infinity'],
    ['NaN', Number.NaN, 'canonical JSON has no NaN'],
    ['a function', () => 1, 'canonical JSON has no function'],
    ['a Set', new Set([1]), 'cannot serialise a Set'],
    ['a Map', new Map(), 'cannot serialise a Map'],
    ['an ArrayBuffer', new ArrayBuffer(2), 'cannot serialise a ArrayBuffer'],
    ['a Uint8Array', new Uint8Array(2), 'cannot serialise a Uint8Array'],
    ['a RegExp', /x/, 'cannot serialise a RegExp'],
  ])('refuses %s, naming it', (_name, value, message) => {
    expect(() => canonicalJson(value)).toThrow(new TypeError(message));
    expect(() => canonicalJson({ nested: [value] })).toThrow(TypeError);
  });
});

describe('the stored payload, value by value', () => {
  const roundTrip = (value: unknown) => decodePayload(JSON.parse(JSON.stringify(encodePayload(value))));

  it.each<[string, unknown, unknown]>([
    ['null', null, null],
    ['a string', 'x', 'x'],
    ['true', true, true],
    ['false', false, false],
    ['a number', 12.5, 12.5],
    ['a bigint', 5n, { $bigint: '5' }],
    ['a date', new Date('2026-01-02T03:04:05.006Z'), { $date: '2026-01-02T03:04:05.006Z' }],
    ['an array, undefined as null', [1, undefined, 'a'], [1, null, 'a']],
    ['a plain object, undefined left out', { a: 1, b: undefined, c: null }, { a: 1, c: null }],
    ['an object without a prototype', Object.assign(Object.create(null) as object, { a: 1 }), { a: 1 }],
    ['an object with a key of its own starting with $', { $x: 1, y: 2 }, { $object: { $x: 1, y: 2 } }],
  ])('%s is stored as JSON', (_name, value, json) => {
    expect(encodePayload(value)).toEqual(json);
  });

  it('a GraphQL object with a $ key keeps its type and its keys', () => {
    const money = Object.assign(new Money(), { amount: 7n, currency: 'CNY', $note: 'n' });
    expect(encodePayload(money)).toEqual({ $type: 'Money', $object: { amount: { $bigint: '7' }, currency: 'CNY', $note: 'n' } });
    const back = roundTrip(money) as Money & { $note: string };
    expect(back).toBeInstanceOf(Money);
    expect(back.amount).toBe(7n);
    expect(back.$note).toBe('n');
  });

  it('comes back as it went: arrays of objects, nested GraphQL objects, null fields', () => {
    const list = [Object.assign(new TopUpType(), { id: 'a', amount: Money.of(1n, 'CNY'), paidAt: null }), { plain: [2n, new Date(0)] }];
    const back = roundTrip(list) as [TopUpType, { plain: [bigint, Date] }];
    expect(back).toEqual(list);
    expect(back[0]).toBeInstanceOf(TopUpType);
    expect(back[0].amount).toBeInstanceOf(Money);
    expect(back[1].plain[0]).toBe(2n);
    expect(back[1].plain[1]).toEqual(new Date(0));
    expect(Object.getPrototypeOf(back[1])).toBe(Object.prototype);
  });

  it('an instance of a class that is no GraphQL type is stored as its fields, and comes back as a plain object', () => {
    class Receipt {
      constructor(readonly number: string) {}
    }
    expect(encodePayload({ receipt: new Receipt('R-1') })).toEqual({ receipt: { number: 'R-1' } });
    expect(roundTrip(new Receipt('R-2'))).toEqual({ number: 'R-2' });
  });

  it('an unknown $type (a class renamed since) comes back as a plain object, not as a wrong one', () => {
    const back = decodePayload({ $type: 'NoSuchType', a: 1 });
    expect(back).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
  });

  it.each<[string, unknown, string]>([
    ['NaN', Number.NaN, 'cannot store NaN in a payload'],
    ['Infinity', Number.POSITIVE_INFINITY, 'cannot store Infinity in a payload'],
    ['an invalid date', new Date('nope'), 'cannot store an invalid date in a payload'],
    ['a function', () => 1, 'cannot store a function in a payload'],
    ['a symbol', Symbol('s'), 'cannot store a symbol in a payload'],
    ['a Map', new Map(), 'cannot serialise a Map'],
  ])('refuses to store %s, naming it', (_name, value, message) => {
    expect(() => encodePayload(value)).toThrow(new TypeError(message));
    expect(() => encodePayload({ nested: [value] })).toThrow(TypeError);
  });
});

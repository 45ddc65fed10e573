import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { prepareOperation } from './documents.js';
import { CreatePaymentDocument, PaymentsDocument } from './generated/graphql.js';
import { IDEMPOTENT_MUTATIONS } from './generated/idempotency.js';

let n = 0;
const newKey = () => `key-${++n}`;

describe('money mutations', () => {
  it('are those of the schema whose input takes idempotencyKey', () => {
    expect(Object.keys(IDEMPOTENT_MUTATIONS)).toEqual(expect.arrayContaining(['createPayment', 'cancelPayment', 'refundPayment', 'createTopUp', 'refundTopUp', 'payBill', 'postJournalEntry', 'reverseJournalEntry']));
    expect(IDEMPOTENT_MUTATIONS.createWebhookEndpoint).toBeUndefined();
    expect(IDEMPOTENT_MUTATIONS.createPayment).toEqual(['input']);
  });
});

describe('prepareOperation', () => {
  it('a query: no keys, idempotent, printed once', () => {
    const a = prepareOperation(PaymentsDocument, { first: 1 }, newKey);
    expect(a).toMatchObject({ kind: 'query', idempotent: true, idempotencyKeys: [], variables: { first: 1 } });
    expect(prepareOperation(PaymentsDocument, undefined, newKey).query).toBe(a.query);
  });

  it('fills the key into a copy of the input variable', () => {
    const vars = { input: { amount: 1, currency: 'CNY', orderReference: 'o' } };
    const op = prepareOperation(CreatePaymentDocument, vars, () => 'made');
    expect(op).toMatchObject({ kind: 'mutation', idempotent: true, idempotencyKeys: ['made'], variables: { input: { ...vars.input, idempotencyKey: 'made' } } });
    expect(vars.input).not.toHaveProperty('idempotencyKey');
  });

  it('reads aliases, literal keys, key variables and several money mutations, in document order', () => {
    const text = `mutation M($a: CancelPaymentInput!, $p: ID!, $k: String) {
      first: cancelPayment(input: $a) { userErrors { code } }
      second: refundPayment(input: { payment: $p, idempotencyKey: "literal" }) { userErrors { code } }
      third: cancelPayment(input: { payment: $p, idempotencyKey: $k }) { userErrors { code } }
      __typename
    }`;
    const op = prepareOperation(text, { a: { payment: 'x' }, p: 'y' }, () => `k${++n}`);
    expect(op.idempotent).toBe(true);
    expect(op.idempotencyKeys).toHaveLength(3);
    expect(op.idempotencyKeys[1]).toBe('literal');
    expect(op.variables).toEqual({ a: { payment: 'x', idempotencyKey: op.idempotencyKeys[0] }, p: 'y', k: op.idempotencyKeys[2] });
    expect(() => prepareOperation(text, { a: { payment: 'x' }, p: 'y' }, newKey, 'one')).toThrow(/2 money mutations without a key/);
  });

  it('one input variable used twice is one key', () => {
    const op = prepareOperation(parse('mutation($a: CancelPaymentInput!) { x: cancelPayment(input: $a) { __typename } y: cancelPayment(input: $a) { __typename } }'), { a: { payment: 'p' } }, newKey);
    expect(op.idempotencyKeys).toHaveLength(1);
    expect(op.variables).toEqual({ a: { payment: 'p', idempotencyKey: op.idempotencyKeys[0] } });
  });

  it('not idempotent: other mutations, a missing input, root fragments, unreadable text', () => {
    expect(prepareOperation('mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }', { i: {} }, newKey)).toMatchObject({ idempotent: false, idempotencyKeys: [] });
    expect(prepareOperation('mutation { cancelPayment(input: $missing) { __typename } }', {}, newKey).idempotent).toBe(false);
    expect(prepareOperation('mutation { ...F } fragment F on Mutation { cancelPayment(input: {payment: "p", idempotencyKey: "k"}) { __typename } }', {}, newKey).idempotent).toBe(false);
    expect(prepareOperation('mutation {', undefined, newKey)).toMatchObject({ kind: undefined, idempotent: false, query: 'mutation {' });
    expect(prepareOperation('subscription { x }', undefined, newKey)).toMatchObject({ kind: 'subscription', idempotent: false });
  });
});

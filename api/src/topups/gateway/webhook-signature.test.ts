import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signGatewayPayload, verifyGatewaySignature } from './webhook-signature.js';

const SECRET = 'whsec_test_0123456789abcdef';
const BODY = JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment_intent.succeeded' });
const T = 1_750_000_000;
const at = (seconds: number) => new Date(seconds * 1000);

describe('signGatewayPayload', () => {
  it('writes t= and v1= as the HMAC-SHA256 of "t.body" in hex', () => {
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signGatewayPayload(SECRET, BODY, T)).toBe(`t=${T},v1=${expected}`);
  });

  it('refuses a timestamp that is not whole seconds', () => {
    expect(() => signGatewayPayload(SECRET, BODY, 1.5)).toThrow(RangeError);
  });
});

describe('verifyGatewaySignature', () => {
  it('accepts what signGatewayPayload signed, as a string or as the raw bytes', () => {
    const header = signGatewayPayload(SECRET, BODY, T);
    expect(verifyGatewaySignature(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifyGatewaySignature(SECRET, Buffer.from(BODY), header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
  });

  it('refuses a signature made with another secret', () => {
    const header = signGatewayPayload('whsec_someone_else', BODY, T);
    expect(verifyGatewaySignature(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a body changed after signing', () => {
    const header = signGatewayPayload(SECRET, BODY, T);
    const tampered = BODY.replace('succeeded', 'canceled');
    expect(verifyGatewaySignature(SECRET, tampered, header, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a signature whose timestamp was moved, though the v1 is genuine', () => {
    const v1 = signGatewayPayload(SECRET, BODY, T).split(',')[1];
    expect(verifyGatewaySignature(SECRET, BODY, `t=${T + 1},${v1}`, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it.each([
    ['299 s old', 'accepted', -299],
    ['300 s old', 'accepted', -300],
    ['301 s old', 'refused', -301],
    ['299 s in the future', 'accepted', 299],
    ['301 s in the future', 'refused', 301],
  ] as const)('with the default 300 s tolerance, a timestamp %s is %s', (_name, outcome, offset) => {
    const header = signGatewayPayload(SECRET, BODY, T + offset);
    const check = verifyGatewaySignature(SECRET, BODY, header, { now: at(T) });
    expect(check).toEqual(outcome === 'accepted' ? { ok: true, timestamp: T + offset } : { ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' });
  });

  it('honours a tolerance given by the caller', () => {
    const header = signGatewayPayload(SECRET, BODY, T - 20);
    expect(verifyGatewaySignature(SECRET, BODY, header, { now: at(T), toleranceSeconds: 10 })).toEqual({ ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' });
  });

  it.each([
    ['no header', 'MISSING', undefined],
    ['an empty header', 'MISSING', ''],
    ['no timestamp', 'MALFORMED', `v1=${'a'.repeat(64)}`],
    ['no v1', 'MALFORMED', `t=${T}`],
    ['only another scheme', 'MALFORMED', `t=${T},v0=${'a'.repeat(64)}`],
    ['a non-numeric timestamp', 'MALFORMED', `t=soon,v1=${'a'.repeat(64)}`],
    ['two timestamps', 'MALFORMED', `t=${T},t=${T},v1=${'a'.repeat(64)}`],
    ['a short v1', 'MALFORMED', `t=${T},v1=abcd`],
    ['a v1 that is not hex', 'MALFORMED', `t=${T},v1=${'z'.repeat(64)}`],
    ['a part without =', 'MALFORMED', `t=${T},v1`],
    ['garbage', 'MALFORMED', 'not a signature'],
  ] as const)('refuses %s as %s', (_name, reason, header) => {
    expect(verifyGatewaySignature(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: false, reason });
  });

  it('accepts a header with two v1 values when either matches (secret rotation)', () => {
    const current = signGatewayPayload(SECRET, BODY, T).split(',')[1];
    const previous = signGatewayPayload('whsec_previous_secret', BODY, T).split(',')[1];
    expect(verifyGatewaySignature(SECRET, BODY, `t=${T},${previous},${current}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifyGatewaySignature(SECRET, BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifyGatewaySignature('whsec_previous_secret', BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifyGatewaySignature('whsec_third', BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('skips schemes it does not know beside a valid v1', () => {
    const header = `${signGatewayPayload(SECRET, BODY, T)},v0=${'0'.repeat(64)}`;
    expect(verifyGatewaySignature(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
  });
});

import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyWebhook } from '../../../sdk-js/src/webhooks.js';
import { SIGNATURE_VECTORS, VECTOR_NOW } from '../../../sdk-js/src/webhook-signature.test-support.js';
import { signatureHeader, verifySignatureHeader } from './webhook-signature.js';

const SECRET = 'whsec_test_0123456789abcdef';
const BODY = JSON.stringify({ id: 'evt_1', object: 'event', type: 'payment_intent.succeeded' });
const T = 1_750_000_000;
const at = (seconds: number) => new Date(seconds * 1000);

describe('signatureHeader', () => {
  it('writes t= and v1= as the HMAC-SHA256 of "t.body" in hex', () => {
    const expected = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(signatureHeader([SECRET], BODY, T)).toBe(`t=${T},v1=${expected}`);
  });

  it('refuses a timestamp that is not whole seconds', () => {
    expect(() => signatureHeader([SECRET], BODY, 1.5)).toThrow(RangeError);
  });
});

describe('verifySignatureHeader', () => {
  it('accepts what signatureHeader signed, as a string or as the raw bytes', () => {
    const header = signatureHeader([SECRET], BODY, T);
    expect(verifySignatureHeader(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifySignatureHeader(SECRET, Buffer.from(BODY), header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
  });

  it('refuses a signature made with another secret', () => {
    const header = signatureHeader(['whsec_someone_else'], BODY, T);
    expect(verifySignatureHeader(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a body changed after signing', () => {
    const header = signatureHeader([SECRET], BODY, T);
    const tampered = BODY.replace('succeeded', 'canceled');
    expect(verifySignatureHeader(SECRET, tampered, header, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses a signature whose timestamp was moved, though the v1 is genuine', () => {
    const v1 = signatureHeader([SECRET], BODY, T).split(',')[1];
    expect(verifySignatureHeader(SECRET, BODY, `t=${T + 1},${v1}`, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it.each([
    ['299 s old', 'accepted', -299],
    ['300 s old', 'accepted', -300],
    ['301 s old', 'refused', -301],
    ['299 s in the future', 'accepted', 299],
    ['301 s in the future', 'refused', 301],
  ] as const)('with the default 300 s tolerance, a timestamp %s is %s', (_name, outcome, offset) => {
    const header = signatureHeader([SECRET], BODY, T + offset);
    const check = verifySignatureHeader(SECRET, BODY, header, { now: at(T) });
    expect(check).toEqual(outcome === 'accepted' ? { ok: true, timestamp: T + offset } : { ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' });
  });

  it('honours a tolerance given by the caller', () => {
    const header = signatureHeader([SECRET], BODY, T - 20);
    expect(verifySignatureHeader(SECRET, BODY, header, { now: at(T), toleranceSeconds: 10 })).toEqual({ ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' });
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
    expect(verifySignatureHeader(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: false, reason });
  });

  it('accepts a header with two v1 values when either matches (secret rotation)', () => {
    const current = signatureHeader([SECRET], BODY, T).split(',')[1];
    const previous = signatureHeader(['whsec_previous_secret'], BODY, T).split(',')[1];
    expect(verifySignatureHeader(SECRET, BODY, `t=${T},${previous},${current}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifySignatureHeader(SECRET, BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifySignatureHeader('whsec_previous_secret', BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: true, timestamp: T });
    expect(verifySignatureHeader('whsec_third', BODY, `t=${T},${current},${previous}`, { now: at(T) })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('skips schemes it does not know beside a valid v1', () => {
    const header = `${signatureHeader([SECRET], BODY, T)},v0=${'0'.repeat(64)}`;
    expect(verifySignatureHeader(SECRET, BODY, header, { now: at(T) })).toEqual({ ok: true, timestamp: T });
  });
});

describe('the server and the SDK on the shared vectors (sdk-js/src/webhook-signature.test-support.ts)', () => {
  it.each(SIGNATURE_VECTORS.filter((v) => v.signedBy))('the server signs "$name" exactly as the vector', ({ header, signedBy, body }) => {
    expect(signatureHeader(signedBy!.secrets, body, signedBy!.timestamp)).toBe(header);
  });

  it.each(SIGNATURE_VECTORS)('"$name": the server and the SDK both answer $outcome', ({ header, secret, body, outcome }) => {
    const server = verifySignatureHeader(secret, body, header, { now: VECTOR_NOW });
    const sdk = verifyWebhook(body, header, secret, 300, VECTOR_NOW);
    expect(server.ok ? 'OK' : server.reason).toBe(outcome);
    expect(sdk.ok ? 'OK' : sdk.reason).toBe(outcome);
  });

  it('what the server signs, with one secret or two, the SDK accepts with either', () => {
    const body = JSON.stringify({ id: 'RXZlbnQ6Nw', type: 'bill.paid', created: '2026-11-25T12:00:00.000Z', data: { amount: 1 } });
    const t = Math.floor(VECTOR_NOW.getTime() / 1000);
    for (const secrets of [['whsec_a'], ['whsec_a', 'whsec_b']]) {
      for (const secret of secrets) expect(verifyWebhook(body, signatureHeader(secrets, body, t), secret, 300, VECTOR_NOW).ok).toBe(true);
    }
    expect(verifyWebhook(body, signatureHeader(['whsec_a'], body, t), 'whsec_b', 300, VECTOR_NOW)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });
});

import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyWebhook } from './index.js';
import { SIGNATURE_VECTORS, VECTOR_EVENT, VECTOR_NOW } from './webhook-signature.test-support.js';

const SECRET = 'whsec_test_0123456789abcdefghijklmnopqrstuvwxyz';
const OTHER = 'whsec_other_0123456789abcdefghijklmnopqrstuvwxy';
const NOW = new Date('2026-11-25T12:00:00Z');
const T = Math.floor(NOW.getTime() / 1000);
const EVENT = { id: 'RXZlbnQ6MQ', type: 'payment.succeeded', created: '2026-11-25T11:59:58.000Z', data: { payment: 'UGF5bWVudDox', amount: 1234, currency: 'CNY' } };
const BODY = JSON.stringify(EVENT);

/** The signature the server sends: hex HMAC-SHA256 of "<t>.<body>". */
const v1 = (secret: string, t: number, body: string | Uint8Array) => createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
const header = (t: number, ...secrets: string[]) => [`t=${t}`, ...secrets.map((s) => `v1=${v1(s, t, BODY)}`)].join(',');

describe('verifyWebhook', () => {
  it('a webhook signed with the secret, within tolerance, gives its event', () => {
    expect(verifyWebhook(BODY, header(T, SECRET), SECRET, 300, NOW)).toEqual({ ok: true, event: EVENT });
  });

  it('takes the body as bytes too (a Uint8Array view into a larger buffer)', () => {
    const bytes = new TextEncoder().encode(`xx${BODY}yy`).subarray(2, 2 + Buffer.byteLength(BODY));
    expect(verifyWebhook(bytes, header(T, SECRET), SECRET, 300, NOW)).toEqual({ ok: true, event: EVENT });
  });

  it('during a rotation, either of two v1 signatures may match, in either order', () => {
    expect(verifyWebhook(BODY, header(T, OTHER, SECRET), SECRET, 300, NOW).ok).toBe(true);
    expect(verifyWebhook(BODY, header(T, SECRET, OTHER), SECRET, 300, NOW).ok).toBe(true);
    expect(verifyWebhook(BODY, header(T, SECRET, OTHER), OTHER, 300, NOW).ok).toBe(true);
  });

  it('skips signature schemes it does not know', () => {
    expect(verifyWebhook(BODY, `${header(T, SECRET)},v0=abc`, SECRET, 300, NOW).ok).toBe(true);
  });

  it('uses the current time by default', () => {
    const t = Math.floor(Date.now() / 1000);
    expect(verifyWebhook(BODY, header(t, SECRET), SECRET).ok).toBe(true);
  });

  const refusals: [string, string | Uint8Array, string | null | undefined, string, string][] = [
    ['no header', BODY, undefined, SECRET, 'MISSING'],
    ['a null header', BODY, null, SECRET, 'MISSING'],
    ['an empty header', BODY, '  ', SECRET, 'MISSING'],
    ['no timestamp', BODY, `v1=${v1(SECRET, T, BODY)}`, SECRET, 'MALFORMED'],
    ['no v1 signature', BODY, `t=${T}`, SECRET, 'MALFORMED'],
    ['two timestamps', BODY, `t=${T},t=${T},v1=${v1(SECRET, T, BODY)}`, SECRET, 'MALFORMED'],
    ['a timestamp that is not a number', BODY, `t=soon,v1=${v1(SECRET, T, BODY)}`, SECRET, 'MALFORMED'],
    ['a v1 that is not 64 hex digits', BODY, `t=${T},v1=abcdef`, SECRET, 'MALFORMED'],
    ['a part without =', BODY, `t=${T},v1=${v1(SECRET, T, BODY)},junk`, SECRET, 'MALFORMED'],
    ['another secret', BODY, header(T, OTHER), SECRET, 'BAD_SIGNATURE'],
    ['a changed body', BODY.replace('1234', '9234'), header(T, SECRET), SECRET, 'BAD_SIGNATURE'],
    ['a changed timestamp', BODY, `t=${T + 1},v1=${v1(SECRET, T, BODY)}`, SECRET, 'BAD_SIGNATURE'],
    ['too old', BODY, header(T - 301, SECRET), SECRET, 'TIMESTAMP_OUT_OF_TOLERANCE'],
    ['too far ahead', BODY, header(T + 301, SECRET), SECRET, 'TIMESTAMP_OUT_OF_TOLERANCE'],
    ['a signed body that is not an event', '{"hello":"world"}', `t=${T},v1=${v1(SECRET, T, '{"hello":"world"}')}`, SECRET, 'MALFORMED'],
    ['a signed body that is not JSON', 'not json', `t=${T},v1=${v1(SECRET, T, 'not json')}`, SECRET, 'MALFORMED'],
  ];
  it.each(refusals)('refuses %s', (_name, body, h, secret, reason) => {
    expect(verifyWebhook(body, h, secret, 300, NOW)).toEqual({ ok: false, reason });
  });

  it('checks the signature before the clock: a forged old webhook is BAD_SIGNATURE, not out of tolerance', () => {
    expect(verifyWebhook(BODY, header(T - 10_000, OTHER), SECRET, 300, NOW)).toEqual({ ok: false, reason: 'BAD_SIGNATURE' });
  });

  it('a wider tolerance accepts an older timestamp', () => {
    expect(verifyWebhook(BODY, header(T - 3_000, SECRET), SECRET, 3_600, NOW).ok).toBe(true);
  });

  // The vectors the server's signer and verifier are tested on too (api/src/webhooks/webhook-signature.test.ts).
  it.each(SIGNATURE_VECTORS)('on the shared vector "$name", answers $outcome', ({ header: h, secret, body, outcome }) => {
    expect(verifyWebhook(body, h, secret, 300, VECTOR_NOW)).toEqual(outcome === 'OK' ? { ok: true, event: VECTOR_EVENT } : { ok: false, reason: outcome });
  });
});

/**
 * Vectors of the `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` signature scheme
 * (docs/webhooks.md#verifying-signatures), shared by the SDK's verifier tests (webhooks.test.ts) and
 * the server's signer and verifier tests (api/src/webhooks/webhook-signature.test.ts): the two sides
 * cannot import each other's code, so they meet on these. The digests were computed apart from
 * both (`printf '%s' "<t>.<body>" | openssl dgst -sha256 -hmac <secret>`).
 */

export const VECTOR_SECRET = 'whsec_vector_current_0123456789';
export const VECTOR_PREVIOUS_SECRET = 'whsec_vector_previous_987654321';
/** 2025-11-25T12:00:00Z: the verifier's clock in every vector. */
export const VECTOR_NOW = new Date(1_764_072_000 * 1000);
export const VECTOR_EVENT = { id: 'RXZlbnQ6NDI', type: 'payment.succeeded', created: '2026-11-25T12:00:00.000Z', data: { payment: 'UGF5bWVudDo0Mg', amount: 1250, currency: 'CNY' } };
export const VECTOR_BODY = JSON.stringify(VECTOR_EVENT);

const T = 1_764_072_000;
const CURRENT = 'e10c22b523b34488881debb82839065b400e2f75052a74841cf5dc7bf69ec81c';
const PREVIOUS = 'e65bed4358d4d805248ccfe051228e72c1dbb8d35922dcbb25955aa1530b53b9';
/** The current secret's signature at T - 301 (one second past the 300 s tolerance). */
const CURRENT_STALE = '1d8f10cc77843bae03a37acf7b74e25e9b341e89e8c09bf17cd86a9eaf46b557';

export type VectorOutcome = 'OK' | 'MISSING' | 'MALFORMED' | 'BAD_SIGNATURE' | 'TIMESTAMP_OUT_OF_TOLERANCE';

export interface SignatureVector {
  name: string;
  header: string | undefined;
  /** The secret the receiver checks with. */
  secret: string;
  body: string;
  outcome: VectorOutcome;
  /** When the header is exactly what the signer writes: its secrets (in order) and timestamp. */
  signedBy?: { secrets: string[]; timestamp: number };
}

export const SIGNATURE_VECTORS: SignatureVector[] = [
  { name: 'one secret', header: `t=${T},v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'OK', signedBy: { secrets: [VECTOR_SECRET], timestamp: T } },
  { name: 'two secrets during a rotation, checked with the new one', header: `t=${T},v1=${CURRENT},v1=${PREVIOUS}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'OK', signedBy: { secrets: [VECTOR_SECRET, VECTOR_PREVIOUS_SECRET], timestamp: T } },
  { name: 'two secrets during a rotation, checked with the old one', header: `t=${T},v1=${CURRENT},v1=${PREVIOUS}`, secret: VECTOR_PREVIOUS_SECRET, body: VECTOR_BODY, outcome: 'OK', signedBy: { secrets: [VECTOR_SECRET, VECTOR_PREVIOUS_SECRET], timestamp: T } },
  { name: 'an unknown scheme beside v1 is skipped', header: `t=${T},v0=${'0'.repeat(64)},v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'OK' },
  { name: 'upper-case hex', header: `t=${T},v1=${CURRENT.toUpperCase()}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'OK' },
  { name: 'another secret', header: `t=${T},v1=${PREVIOUS}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'BAD_SIGNATURE' },
  { name: 'a changed body', header: `t=${T},v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY.replace('1250', '9250'), outcome: 'BAD_SIGNATURE' },
  { name: 'a moved timestamp', header: `t=${T + 1},v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'BAD_SIGNATURE' },
  { name: 'a genuine signature 301 s old', header: `t=${T - 301},v1=${CURRENT_STALE}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'TIMESTAMP_OUT_OF_TOLERANCE', signedBy: { secrets: [VECTOR_SECRET], timestamp: T - 301 } },
  { name: 'no header', header: undefined, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MISSING' },
  { name: 'a blank header', header: ' ', secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MISSING' },
  { name: 'no timestamp', header: `v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'no v1', header: `t=${T}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'only another scheme', header: `t=${T},v0=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'two timestamps', header: `t=${T},t=${T},v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'a timestamp that is not a number', header: `t=soon,v1=${CURRENT}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'a short v1', header: `t=${T},v1=abcdef`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'a v1 that is not hex', header: `t=${T},v1=${'z'.repeat(64)}`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
  { name: 'a part without =', header: `t=${T},v1=${CURRENT},junk`, secret: VECTOR_SECRET, body: VECTOR_BODY, outcome: 'MALFORMED' },
];

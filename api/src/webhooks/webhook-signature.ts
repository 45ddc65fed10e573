import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The one `t=…,v1=…` signature scheme, on the server: our webhooks and bill look-ups are signed
 * with it, and the payment gateway (Stripe-like, sandbox included) signs its events to us with it.
 *
 *     t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]
 *
 * one v1 per live secret (two while a rotated secret overlaps the new one); the key is the secret
 * string's UTF-8 bytes. Receivers of OneCard webhooks check it with the SDK's `verifyWebhook`
 * (sdk-js/src/webhooks.ts); both sides are tested on the same vectors
 * (sdk-js/src/webhook-signature.test-support.ts).
 */

/** The header our webhooks carry their signature in, and the one naming the event (receivers dedupe by it). */
export const SIGNATURE_HEADER = 'onecard-signature';
export const EVENT_ID_HEADER = 'onecard-event-id';

/** How far a signed message's timestamp may be from our clock, either way, before it is refused as a replay. */
const DEFAULT_TOLERANCE_SECONDS = 300;

const TIMESTAMP = /^[0-9]{1,12}$/;
const HMAC_SHA256_HEX = /^[0-9a-fA-F]{64}$/;

function hmac(secret: string, timestampSeconds: number, body: string | Buffer): Buffer {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest();
}

/** The header value for `body` signed at `timestampSeconds` with each of `secrets`. */
export function signatureHeader(secrets: readonly string[], body: string, timestampSeconds: number): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new RangeError('timestampSeconds: expected whole seconds since the epoch');
  if (secrets.length === 0) throw new RangeError('at least one secret signs');
  return [`t=${timestampSeconds}`, ...secrets.map((secret) => `v1=${hmac(secret, timestampSeconds, body).toString('hex')}`)].join(',');
}

export type SignatureCheck = { ok: true; timestamp: number } | { ok: false; reason: 'MISSING' | 'MALFORMED' | 'BAD_SIGNATURE' | 'TIMESTAMP_OUT_OF_TOLERANCE' };

/**
 * Splits "t=…,v1=…,v1=…" into its timestamp and candidate signatures. Schemes other than v1 are
 * skipped, as Stripe does, so a sender may add one without breaking us; a second t= is malformed.
 */
function parseHeader(header: string): { timestamp: number; signatures: Buffer[] } | undefined {
  let timestamp: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== undefined || !TIMESTAMP.test(value)) return undefined;
      timestamp = Number(value);
    } else if (key === 'v1') {
      if (!HMAC_SHA256_HEX.test(value)) return undefined;
      signatures.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === undefined || signatures.length === 0) return undefined;
  return { timestamp, signatures };
}

/**
 * Checks a signed message (the payment gateway's events) against the secret: the signature first,
 * so a forged request learns nothing about our clock, then the timestamp. Any one v1= may match
 * (the sender sends one per live secret while it rotates them); each is compared in constant time.
 */
export function verifySignatureHeader(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
  opts: { toleranceSeconds?: number; now?: Date } = {},
): SignatureCheck {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'MISSING' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'MALFORMED' };
  const expected = hmac(secret, parsed.timestamp, body);
  let matched = false;
  // Every candidate is compared, matched or not: the time taken says nothing about which one matched.
  for (const candidate of parsed.signatures) matched = timingSafeEqual(expected, candidate) || matched;
  if (!matched) return { ok: false, reason: 'BAD_SIGNATURE' };
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - parsed.timestamp) > tolerance) return { ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' };
  return { ok: true, timestamp: parsed.timestamp };
}

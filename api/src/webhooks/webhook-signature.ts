import { createHmac } from 'node:crypto';

/** The header our webhooks carry their signature in, and the one naming the event (receivers dedupe by it). */
export const SIGNATURE_HEADER = 'onecard-signature';
export const EVENT_ID_HEADER = 'onecard-event-id';

/**
 * "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${body}`)>", one v1 per live secret (two
 * while a rotated secret overlaps the new one). The key is the secret string's UTF-8 bytes, as
 * shown once to the owner. The same scheme as the payment gateway's (topups/gateway/webhook-signature.ts).
 */
export function signatureHeader(secrets: string[], body: string, timestampSeconds: number): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new RangeError('timestampSeconds: expected whole seconds since the epoch');
  if (secrets.length === 0) throw new RangeError('at least one secret signs');
  const v1 = secrets.map((secret) => `v1=${createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex')}`);
  return [`t=${timestampSeconds}`, ...v1].join(',');
}

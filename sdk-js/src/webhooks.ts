import { createHmac, timingSafeEqual } from 'node:crypto';

/** The headers OneCard webhooks carry (lower case, as node:http gives them). */
export const WEBHOOK_SIGNATURE_HEADER = 'onecard-signature';
export const WEBHOOK_EVENT_ID_HEADER = 'onecard-event-id';

/** A OneCard event, as the body of a webhook. Dedupe by `id`: an event may arrive more than once. */
export interface WebhookEvent<T = Record<string, unknown>> {
  id: string;
  /** e.g. `payment.succeeded`. */
  type: string;
  /** ISO-8601 (UTC): when it happened. */
  created: string;
  data: T;
}

export type WebhookVerification<T = Record<string, unknown>> =
  | { ok: true; event: WebhookEvent<T> }
  | { ok: false; reason: 'MISSING' | 'MALFORMED' | 'BAD_SIGNATURE' | 'TIMESTAMP_OUT_OF_TOLERANCE' };

const TIMESTAMP = /^[0-9]{1,12}$/;
const HMAC_SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** "t=…,v1=…,v1=…": the timestamp and every v1 signature. Other schemes are skipped, so new ones can be added beside v1. */
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

function isEvent(value: unknown): value is WebhookEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && typeof v.type === 'string' && typeof v.created === 'string' && typeof v.data === 'object' && v.data !== null && !Array.isArray(v.data);
}

/**
 * Checks a OneCard webhook and returns its event. Pass the body exactly as received (the raw
 * bytes or text, before any JSON parsing), the `onecard-signature` header, and your endpoint's
 * signing secret (`whsec_…`).
 *
 * The signature is checked first, against every `v1=` (two during a secret rotation), each in
 * constant time; then the timestamp, which must be within `toleranceSeconds` of `now` either way,
 * so that a captured webhook cannot be replayed later.
 *
 * ```ts
 * app.post('/onecard', express.raw({ type: 'application/json' }), (req, res) => {
 *   const checked = verifyWebhook(req.body, req.get('onecard-signature'), process.env.ONECARD_WEBHOOK_SECRET!);
 *   if (!checked.ok) return res.status(400).send(checked.reason);
 *   // checked.event.id: skip it if you handled it already (at-least-once delivery)
 *   res.sendStatus(204);
 * });
 * ```
 */
export function verifyWebhook<T = Record<string, unknown>>(
  body: string | Uint8Array,
  header: string | null | undefined,
  secret: string,
  toleranceSeconds = 300,
  now: Date = new Date(),
): WebhookVerification<T> {
  if (header == null || header.trim() === '') return { ok: false, reason: 'MISSING' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'MALFORMED' };
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const expected = createHmac('sha256', secret).update(`${parsed.timestamp}.`).update(bytes).digest();
  let matched = false;
  // Every candidate is compared, matched or not: the time taken says nothing about which one matched.
  for (const candidate of parsed.signatures) matched = timingSafeEqual(expected, candidate) || matched;
  if (!matched) return { ok: false, reason: 'BAD_SIGNATURE' };
  if (Math.abs(Math.floor(now.getTime() / 1000) - parsed.timestamp) > toleranceSeconds) return { ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' };
  let event: unknown;
  try {
    event = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    return { ok: false, reason: 'MALFORMED' };
  }
  if (!isEvent(event)) return { ok: false, reason: 'MALFORMED' };
  return { ok: true, event: event as WebhookEvent<T> };
}

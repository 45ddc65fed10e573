import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header a gateway webhook carries its signature in (lower case, as node:http gives it). */
export const GATEWAY_SIGNATURE_HEADER = 'gateway-signature';

/** How far a webhook's timestamp may be from our clock, either way, before we refuse it as a replay. */
const DEFAULT_TOLERANCE_SECONDS = 300;

const TIMESTAMP = /^[0-9]{1,12}$/;
const HMAC_SHA256_HEX = /^[0-9a-fA-F]{64}$/;

function hmacHex(secret: string, timestampSeconds: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.`).update(body).digest('hex');
}

/** "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, `${t}.${body}`)>" */
export function signGatewayPayload(secret: string, body: string, timestampSeconds: number): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new RangeError('timestampSeconds: expected whole seconds since the epoch');
  return `t=${timestampSeconds},v1=${hmacHex(secret, timestampSeconds, body)}`;
}

export type GatewaySignatureCheck =
  | { ok: true; timestamp: number }
  | { ok: false; reason: 'MISSING' | 'MALFORMED' | 'BAD_SIGNATURE' | 'TIMESTAMP_OUT_OF_TOLERANCE' };

/**
 * Splits "t=…,v1=…,v1=…" into its timestamp and candidate signatures. Schemes other than v1 are
 * skipped, as Stripe does, so a gateway may add one without breaking us; a second t= is malformed.
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
 * Checks a webhook against the signing secret: the signature first, so a forged request learns
 * nothing about our clock, then the timestamp. Any one v1= may match (the gateway sends one per
 * live secret while it rotates them); each is compared in constant time.
 */
export function verifyGatewaySignature(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
  opts: { toleranceSeconds?: number; now?: Date } = {},
): GatewaySignatureCheck {
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'MISSING' };
  const parsed = parseHeader(header);
  if (!parsed) return { ok: false, reason: 'MALFORMED' };
  const expected = Buffer.from(hmacHex(secret, parsed.timestamp, body), 'hex');
  let matched = false;
  for (const candidate of parsed.signatures) matched = timingSafeEqual(expected, candidate) || matched;
  if (!matched) return { ok: false, reason: 'BAD_SIGNATURE' };
  const tolerance = opts.toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  if (Math.abs(nowSeconds - parsed.timestamp) > tolerance) return { ok: false, reason: 'TIMESTAMP_OUT_OF_TOLERANCE' };
  return { ok: true, timestamp: parsed.timestamp };
}

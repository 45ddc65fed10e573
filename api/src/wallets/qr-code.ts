import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * The QR ride code (乘车码, issue 25 item 2), bytes in and bytes out: no clock, no database (STYLE.md §3).
 * A code the app shows is five base64url parts joined by dots:
 *
 *   OCQR1 . credential . issuer signature . fresh part . device signature
 *
 * - credential (146 bytes), made by the card company for one app install, valid a few hours:
 *   version 0x01 | credential id (16) | wallet id (16) | holder id (16) | card company id (16) |
 *   valid from (uint32 BE, Unix seconds) | valid until (uint32 BE) | issuer key id (8: the first
 *   8 bytes of SHA-256 over the signing certificate's SubjectPublicKeyInfo) | the app's device
 *   public key (65: an uncompressed P-256 point).
 * - issuer signature: ECDSA P-256 with SHA-256 (IEEE P1363 r‖s, 64 bytes) by the card company's host
 *   key (a server certificate from its city working CA), over `onecard-qr-credential-v1\0` ‖ credential.
 * - fresh part (8 bytes), made by the app each time it redraws the code (every few seconds):
 *   time (uint32 BE, Unix seconds) | counter (uint32 BE, one more each redraw).
 * - device signature: ECDSA P-256 with SHA-256 (P1363, 64 bytes) by the device key, over
 *   `onecard-qr-fresh-v1\0` ‖ credential ‖ fresh part.
 *
 * A screenshot is stale once its fresh time is FRESH_SECONDS away from the scan; the same code
 * scanned twice carries the same counter, which a scanner and the host each take once.
 */

export const QR_PREFIX = 'OCQR1';
export const CREDENTIAL_BYTES = 146;
/** How far the fresh part's time may be from the scanner's clock: a screenshot older than this is refused. */
export const FRESH_SECONDS = 30;

const CREDENTIAL_DOMAIN = Buffer.from('onecard-qr-credential-v1\0', 'latin1');
const FRESH_DOMAIN = Buffer.from('onecard-qr-fresh-v1\0', 'latin1');

export interface QrCredential {
  credentialId: string;
  walletId: string;
  holderId: string;
  cardCompanyId: string;
  validFrom: Date;
  validUntil: Date;
  issuerKeyId: Buffer;
  devicePublicKey: Buffer;
}

export interface QrCode {
  credential: QrCredential;
  credentialBytes: Buffer;
  issuerSignature: Buffer;
  freshTime: Date;
  counter: number;
  freshBytes: Buffer;
  deviceSignature: Buffer;
}

const uuidBytes = (id: string) => Buffer.from(id.replaceAll('-', ''), 'hex');
const uuidOf = (b: Buffer) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
const seconds = (d: Date) => Math.floor(+d / 1000);

/** The key id a credential names its signer by: SHA-256 of the signing key's SubjectPublicKeyInfo, first 8 bytes. */
export function issuerKeyIdOf(publicKey: KeyObject): Buffer {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 8);
}

/** A P-256 public key from its uncompressed point, or null when it is not one. */
export function devicePublicKeyOf(point: Buffer): KeyObject | null {
  if (point.length !== 65 || point[0] !== 0x04) return null;
  try {
    return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
  } catch {
    return null;
  }
}

export function encodeCredential(c: QrCredential): Buffer {
  const times = Buffer.alloc(8);
  times.writeUInt32BE(seconds(c.validFrom), 0);
  times.writeUInt32BE(seconds(c.validUntil), 4);
  return Buffer.concat([Buffer.from([1]), uuidBytes(c.credentialId), uuidBytes(c.walletId), uuidBytes(c.holderId), uuidBytes(c.cardCompanyId), times, c.issuerKeyId, c.devicePublicKey]);
}

function decodeCredential(b: Buffer): QrCredential | null {
  if (b.length !== CREDENTIAL_BYTES || b[0] !== 1) return null;
  return {
    credentialId: uuidOf(b.subarray(1, 17)),
    walletId: uuidOf(b.subarray(17, 33)),
    holderId: uuidOf(b.subarray(33, 49)),
    cardCompanyId: uuidOf(b.subarray(49, 65)),
    validFrom: new Date(b.readUInt32BE(65) * 1000),
    validUntil: new Date(b.readUInt32BE(69) * 1000),
    issuerKeyId: b.subarray(73, 81),
    devicePublicKey: b.subarray(81, 146),
  };
}

/** The card company's half of a code: `OCQR1.<credential>.<issuer signature>`, what the app receives. */
export function signCredential(c: QrCredential, issuerKey: KeyObject): string {
  const bytes = encodeCredential(c);
  const signature = sign('sha256', Buffer.concat([CREDENTIAL_DOMAIN, bytes]), { key: issuerKey, dsaEncoding: 'ieee-p1363' });
  return `${QR_PREFIX}.${bytes.toString('base64url')}.${signature.toString('base64url')}`;
}

/** The app's half: the fresh part and its device signature appended to the signed credential. */
export function freshCode(signedCredential: string, deviceKey: KeyObject, time: Date, counter: number): string {
  const bytes = Buffer.from(signedCredential.split('.')[1] ?? '', 'base64url');
  const fresh = Buffer.alloc(8);
  fresh.writeUInt32BE(seconds(time), 0);
  fresh.writeUInt32BE(counter, 4);
  const signature = sign('sha256', Buffer.concat([FRESH_DOMAIN, bytes, fresh]), { key: deviceKey, dsaEncoding: 'ieee-p1363' });
  return `${signedCredential}.${fresh.toString('base64url')}.${signature.toString('base64url')}`;
}

/** The parts of a code, or null when it is not one (wrong prefix, part count or sizes). */
export function parseQrCode(text: string): QrCode | null {
  if (typeof text !== 'string' || text.length > 1000) return null;
  const parts = text.split('.');
  if (parts.length !== 5 || parts[0] !== QR_PREFIX || parts.slice(1).some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return null;
  const [credentialBytes, issuerSignature, freshBytes, deviceSignature] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer, Buffer];
  const credential = decodeCredential(credentialBytes);
  if (!credential || issuerSignature.length !== 64 || freshBytes.length !== 8 || deviceSignature.length !== 64) return null;
  return { credential, credentialBytes, issuerSignature, freshTime: new Date(freshBytes.readUInt32BE(0) * 1000), counter: freshBytes.readUInt32BE(4), freshBytes, deviceSignature };
}

export type QrRefusal = 'FORGED' | 'EXPIRED' | 'BLOCKED';

/**
 * A card company's signing key after a host key rotation: it still verifies the credentials it
 * signed before `retiredAt`, for scans before `usableUntil` (retirement plus a credential's
 * validity), and nothing else.
 */
export interface RetiredIssuerKey {
  key: KeyObject;
  retiredAt: Date;
  usableUntil: Date;
}

/**
 * The offline verification a scanner runs, and the host runs again on upload, as named checks in
 * order (STYLE.md §1): the code's shape, the card company's signature (by the key its id names),
 * the credential's validity window, the device signature over the fresh part, the fresh part's age
 * (a screenshot), the blocklist. `issuerKeys` maps hex key ids to the card company's public keys.
 */
export function verifyQrCode(
  text: string,
  opts: { issuerKeys: ReadonlyMap<string, KeyObject>; retiredIssuerKeys?: ReadonlyMap<string, RetiredIssuerKey>; scannedAt: Date; isBlocked: (credentialId: string) => boolean },
): { ok: true; code: QrCode } | { ok: false; refusal: QrRefusal; reason: string; code: QrCode | null } {
  const code = parseQrCode(text);
  if (!code) return { ok: false, refusal: 'FORGED', reason: 'not a QR ride code (OCQR1 with five parts of the right sizes)', code: null };
  const c = code.credential;
  const keyId = c.issuerKeyId.toString('hex');
  const retired = opts.issuerKeys.has(keyId) ? undefined : opts.retiredIssuerKeys?.get(keyId);
  const issuerKey = opts.issuerKeys.get(keyId) ?? retired?.key;
  if (!issuerKey || !safeVerify(Buffer.concat([CREDENTIAL_DOMAIN, code.credentialBytes]), issuerKey, code.issuerSignature)) return { ok: false, refusal: 'FORGED', reason: 'the credential is not signed by the card company', code };
  // A retired key vouches only for what it signed while in service, and only while that can still be valid.
  if (retired && (+c.validFrom >= +retired.retiredAt || +opts.scannedAt >= +retired.usableUntil)) {
    return { ok: false, refusal: 'FORGED', reason: `signed by a key retired at ${retired.retiredAt.toISOString()}: it verifies credentials issued before, scanned until ${retired.usableUntil.toISOString()}`, code };
  }
  if (+opts.scannedAt < +c.validFrom || +opts.scannedAt >= +c.validUntil) return { ok: false, refusal: 'EXPIRED', reason: `the credential is valid ${c.validFrom.toISOString()} to ${c.validUntil.toISOString()}`, code };
  const deviceKey = devicePublicKeyOf(c.devicePublicKey);
  if (!deviceKey || !safeVerify(Buffer.concat([FRESH_DOMAIN, code.credentialBytes, code.freshBytes]), deviceKey, code.deviceSignature)) return { ok: false, refusal: 'FORGED', reason: 'the fresh part is not signed by the credential’s device key', code };
  if (Math.abs(+opts.scannedAt - +code.freshTime) > FRESH_SECONDS * 1000) return { ok: false, refusal: 'EXPIRED', reason: `the code was drawn at ${code.freshTime.toISOString()}, more than ${FRESH_SECONDS} s from the scan (a screenshot)`, code };
  if (opts.isBlocked(c.credentialId)) return { ok: false, refusal: 'BLOCKED', reason: 'the credential is on the blocklist', code };
  return { ok: true, code };
}

function safeVerify(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

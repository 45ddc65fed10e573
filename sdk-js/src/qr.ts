import { createHash, createPublicKey, createSign, generateKeyPairSync, type KeyObject, sign, verify, X509Certificate } from 'node:crypto';

/**
 * QR-code rides (乘车码, docs/qr-rides.md), the app's and the scanner's sides: the app keeps a
 * device key and draws a fresh code every few seconds from the credential the card company signed;
 * the scanner verifies a code offline with the card company's certificate and its blocklist, and
 * signs the batch of rides it uploads. The host checks the same format (api/src/wallets/qr-code.ts);
 * both are tested together over HTTP (api/test/qr-rides.test.ts).
 *
 * A code: `OCQR1.<credential>.<issuer signature>.<fresh part>.<device signature>` (base64url parts);
 * the fresh part is time (uint32 BE, Unix seconds) ‖ counter (uint32 BE), signed by the device key
 * (ECDSA P-256, SHA-256, IEEE P1363) over `onecard-qr-fresh-v1\0` ‖ credential ‖ fresh part.
 */

const CREDENTIAL_DOMAIN = Buffer.from('onecard-qr-credential-v1\0', 'latin1');
const FRESH_DOMAIN = Buffer.from('onecard-qr-fresh-v1\0', 'latin1');
/** A code drawn further than this from the scanner's clock is a screenshot. */
export const QR_FRESH_SECONDS = 30;

/** The app's device key: the private key stays on the device; the public point goes to issueQrCredential. */
export interface QrDeviceKey {
  privateKey: KeyObject;
  /** The uncompressed P-256 point (0x04 ‖ x ‖ y), base64url: `devicePublicKey` of issueQrCredential. */
  devicePublicKey: string;
}

export function createQrDeviceKey(): QrDeviceKey {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  return { privateKey, devicePublicKey: Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]).toString('base64url') };
}

/**
 * The code the app shows now: the signed credential with a fresh part (the time and the next
 * counter) signed by the device key. Redraw it every few seconds with a counter one higher; render
 * the string with your platform's QR library (byte mode, level M: a version 15 code).
 */
export function drawQrCode(signedCredential: string, deviceKey: KeyObject, at: { time: Date; counter: number }): string {
  const parts = signedCredential.split('.');
  if (parts.length !== 3 || parts[0] !== 'OCQR1') throw new TypeError('a signed credential is OCQR1.<credential>.<issuer signature>, as issueQrCredential answers it');
  if (!Number.isInteger(at.counter) || at.counter < 0 || at.counter > 0xffffffff) throw new RangeError('a counter is a uint32');
  const fresh = Buffer.alloc(8);
  fresh.writeUInt32BE(Math.floor(+at.time / 1000), 0);
  fresh.writeUInt32BE(at.counter, 4);
  const signature = sign('sha256', Buffer.concat([FRESH_DOMAIN, Buffer.from(parts[1]!, 'base64url'), fresh]), { key: deviceKey, dsaEncoding: 'ieee-p1363' });
  return `${signedCredential}.${fresh.toString('base64url')}.${signature.toString('base64url')}`;
}

export interface ScannedQrCode {
  credentialId: string;
  walletId: string;
  cardCompanyId: string;
  validFrom: Date;
  validUntil: Date;
  freshTime: Date;
  counter: number;
}

export type QrVerification = { ok: true; code: ScannedQrCode } | { ok: false; refusal: 'FORGED' | 'EXPIRED' | 'BLOCKED'; reason: string };

const uuidOf = (b: Buffer) => b.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');

/** A card company's signing key id as codes name it: the first 8 bytes of SHA-256 over its SubjectPublicKeyInfo, hex. */
export function qrIssuerKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 8).toString('hex');
}

/**
 * The scanner's offline state for one card company: its signing key (from `qrScannerUpdate`'s
 * certificates, checked against the CA you pin) and the blocklist, kept by deltas.
 */
/** A retired signing certificate as qrScannerUpdate answers it (`retiredAt`, `usableUntil` ISO-8601). */
export interface QrRetiredSigningCertificate {
  certificate: string;
  retiredAt: string | Date;
  usableUntil: string | Date;
}

export class QrScanner {
  private keys = new Map<string, KeyObject>();
  /** Keys retired by a host key rotation: each verifies only credentials it signed before retiredAt, scanned before usableUntil. */
  private retired = new Map<string, { key: KeyObject; retiredAt: Date; usableUntil: Date }>();
  private readonly blocked = new Set<string>();
  /** The last blocklist sequence applied: `afterSequence` of the next qrScannerUpdate. */
  sequence = 0;

  /**
   * Applies a qrScannerUpdate answer. `trustedPem` is the certificate the scanner pins: its city
   * working CA, or the root above it (as readers pin it). The chain (signing certificate, city CA)
   * must lead to it, every certificate valid now.
   */
  apply(update: { signingCertificates: string[]; retiredSigningCertificates?: QrRetiredSigningCertificate[]; blocked: { credentialId: string; sequence: number }[]; sequence: number }, trustedPem: string, now = new Date()): void {
    const chain = update.signingCertificates.map((pem) => new X509Certificate(pem));
    const pinned = new X509Certificate(trustedPem);
    const signer = chain[0];
    if (!signer) throw new Error('no signing certificate');
    for (const [i, c] of chain.entries()) {
      const issuer = chain[i + 1];
      if (issuer && !c.verify(issuer.publicKey)) throw new Error(`certificate ${c.subject} is not issued by the next one in the chain`);
      if (+now < Date.parse(c.validFrom) || +now > Date.parse(c.validTo)) throw new Error(`certificate ${c.subject} is not valid now`);
    }
    const top = chain.at(-1)!;
    if (top.fingerprint256 !== pinned.fingerprint256 && !top.verify(pinned.publicKey)) throw new Error('the signing certificate does not chain to the certificate this scanner pins');
    // Each answer says which keys sign now and which retired ones still count: a key it no longer names is dropped.
    const retired = new Map<string, { key: KeyObject; retiredAt: Date; usableUntil: Date }>();
    for (const r of update.retiredSigningCertificates ?? []) {
      const cert = new X509Certificate(r.certificate);
      // Issued by the city CA the current chain leads to the pinned certificate through.
      const ca = chain[1];
      if (!ca || !cert.verify(ca.publicKey)) throw new Error(`retired certificate ${cert.subject} is not issued by the city CA of the signing chain`);
      const usableUntil = new Date(r.usableUntil);
      if (+usableUntil > +now) retired.set(qrIssuerKeyId(cert.publicKey), { key: cert.publicKey, retiredAt: new Date(r.retiredAt), usableUntil });
    }
    this.keys = new Map([[qrIssuerKeyId(signer.publicKey), signer.publicKey]]);
    this.retired = retired;
    for (const b of update.blocked) this.blocked.add(b.credentialId.toLowerCase());
    this.sequence = Math.max(this.sequence, update.sequence);
  }

  /** The checks a gate runs before it opens, in order: shape, issuer signature, validity, device signature, freshness, blocklist. */
  verify(text: string, scannedAt = new Date()): QrVerification {
    const parts = typeof text === 'string' && text.length <= 1000 ? text.split('.') : [];
    if (parts.length !== 5 || parts[0] !== 'OCQR1' || parts.slice(1).some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return { ok: false, refusal: 'FORGED', reason: 'not a QR ride code' };
    const [credential, issuerSignature, fresh, deviceSignature] = parts.slice(1).map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer, Buffer];
    if (credential.length !== 146 || credential[0] !== 1 || issuerSignature.length !== 64 || fresh.length !== 8 || deviceSignature.length !== 64) return { ok: false, refusal: 'FORGED', reason: 'a part has the wrong size' };
    const keyId = credential.subarray(73, 81).toString('hex');
    const retired = this.keys.has(keyId) ? undefined : this.retired.get(keyId);
    const issuerKey = this.keys.get(keyId) ?? retired?.key;
    if (!issuerKey || !safeVerify(Buffer.concat([CREDENTIAL_DOMAIN, credential]), issuerKey, issuerSignature)) return { ok: false, refusal: 'FORGED', reason: 'the credential is not signed by the card company' };
    // A retired key vouches only for what it signed in service, and only while that can still be valid.
    if (retired && (credential.readUInt32BE(65) * 1000 >= +retired.retiredAt || +scannedAt >= +retired.usableUntil)) return { ok: false, refusal: 'FORGED', reason: 'signed by a retired key after its retirement, or scanned after the credentials it signed ran out' };
    const code: ScannedQrCode = {
      credentialId: uuidOf(credential.subarray(1, 17)),
      walletId: uuidOf(credential.subarray(17, 33)),
      cardCompanyId: uuidOf(credential.subarray(49, 65)),
      validFrom: new Date(credential.readUInt32BE(65) * 1000),
      validUntil: new Date(credential.readUInt32BE(69) * 1000),
      freshTime: new Date(fresh.readUInt32BE(0) * 1000),
      counter: fresh.readUInt32BE(4),
    };
    if (+scannedAt < +code.validFrom || +scannedAt >= +code.validUntil) return { ok: false, refusal: 'EXPIRED', reason: 'outside the credential’s validity window' };
    const point = credential.subarray(81, 146);
    let deviceKey: KeyObject | null = null;
    try {
      deviceKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') }, format: 'jwk' });
    } catch {
      deviceKey = null;
    }
    if (!deviceKey || !safeVerify(Buffer.concat([FRESH_DOMAIN, credential, fresh]), deviceKey, deviceSignature)) return { ok: false, refusal: 'FORGED', reason: 'the fresh part is not signed by the credential’s device key' };
    if (Math.abs(+scannedAt - +code.freshTime) > QR_FRESH_SECONDS * 1000) return { ok: false, refusal: 'EXPIRED', reason: `drawn more than ${QR_FRESH_SECONDS} s from the scan (a screenshot)` };
    if (this.blocked.has(code.credentialId)) return { ok: false, refusal: 'BLOCKED', reason: 'the credential is on the blocklist' };
    return { ok: true, code };
  }
}

function safeVerify(data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch {
    return false;
  }
}

/**
 * The input of uploadQrRideBatch for the rides a scanner let through: the body as JSON and the
 * offline batch signature (RSA-SHA256 by the scanner's device key over
 * `onecard-offline-batch-v1\n<terminal id>\n<batchId>\n<body>`).
 */
export function signQrRideBatch(opts: { terminal: string; batchId: string; rides: { code: string; scannedAt: Date; amount: number }[]; deviceKeyPem: string; certificatePem: string }) {
  const body = JSON.stringify({ kind: 'qr-rides', rides: opts.rides.map((r) => ({ code: r.code, scannedAt: r.scannedAt.toISOString(), amount: r.amount })) });
  const signature = createSign('sha256').update(Buffer.from(`onecard-offline-batch-v1\n${opts.terminal}\n${opts.batchId}\n${body}`, 'utf8')).sign(opts.deviceKeyPem).toString('base64');
  return { terminal: opts.terminal, batchId: opts.batchId, body, signature, certificate: opts.certificatePem };
}

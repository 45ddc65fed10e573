import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { devicePublicKeyOf, freshCode, issuerKeyIdOf, parseQrCode, signCredential, verifyQrCode } from './qr-code.js';

const issuer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const point = (() => {
  const jwk = device.publicKey.export({ format: 'jwk' });
  return Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
})();
const from = new Date('2026-12-07T08:00:00Z');
const until = new Date('2026-12-07T14:00:00Z');
const credential = {
  credentialId: '11111111-2222-4333-8444-555555555555',
  walletId: '66666666-7777-4888-8999-aaaaaaaaaaaa',
  holderId: 'bbbbbbbb-cccc-4ddd-8eee-ffffffffffff',
  cardCompanyId: '01234567-89ab-4cde-8f01-23456789abcd',
  validFrom: from,
  validUntil: until,
  issuerKeyId: issuerKeyIdOf(issuer.publicKey),
  devicePublicKey: point,
};
const signed = signCredential(credential, issuer.privateKey);
const keys = new Map([[issuerKeyIdOf(issuer.publicKey).toString('hex'), issuer.publicKey]]);
const at = new Date('2026-12-07T09:00:00Z');
const verify = (code: string, scannedAt = at, blocked = new Set<string>()) => verifyQrCode(code, { issuerKeys: keys, scannedAt, isBlocked: (id) => blocked.has(id) });

describe('the QR ride code', () => {
  it('round-trips every field, and is 387 characters (a version 15 QR code at level M)', () => {
    const code = freshCode(signed, device.privateKey, at, 7);
    expect(code).toHaveLength(387);
    const parsed = parseQrCode(code)!;
    expect({ ...parsed.credential, issuerKeyId: parsed.credential.issuerKeyId.toString('hex'), devicePublicKey: parsed.credential.devicePublicKey.toString('hex') }).toEqual({
      ...credential,
      issuerKeyId: credential.issuerKeyId.toString('hex'),
      devicePublicKey: point.toString('hex'),
    });
    expect([parsed.freshTime, parsed.counter]).toEqual([at, 7]);
    expect(verify(code)).toMatchObject({ ok: true });
  });

  it('refuses each broken rule with its own refusal, in order', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const bytes = Buffer.from(signed.split('.')[1]!, 'base64url');
    bytes[20] = bytes[20]! ^ 1; // the wallet id, changed under the signature
    const cases: [string, string, Date, string][] = [
      ['not five parts', 'OCQR1.abc', at, 'FORGED'],
      ['signed by another key', freshCode(signCredential(credential, other.privateKey), device.privateKey, at, 1), at, 'FORGED'],
      ['a credential byte changed', freshCode(`OCQR1.${bytes.toString('base64url')}.${signed.split('.')[2]}`, device.privateKey, at, 1), at, 'FORGED'],
      ['scanned before its window', freshCode(signed, device.privateKey, new Date(+from - 60_000), 1), new Date(+from - 60_000), 'EXPIRED'],
      ['scanned at the end of its window', freshCode(signed, device.privateKey, until, 1), until, 'EXPIRED'],
      ['a fresh part by another device key', freshCode(signed, other.privateKey, at, 1), at, 'FORGED'],
      ['a fresh part 31 s old (a screenshot)', freshCode(signed, device.privateKey, new Date(+at - 31_000), 1), at, 'EXPIRED'],
    ];
    const answers = cases.map(([, code, scannedAt]) => {
      const v = verify(code, scannedAt);
      return v.ok ? 'ok' : v.refusal;
    });
    expect(answers).toEqual(cases.map((c) => c[3]));
    // 30 s old is still fresh; a blocked credential is refused last.
    expect(verify(freshCode(signed, device.privateKey, new Date(+at - 30_000), 1))).toMatchObject({ ok: true });
    expect(verify(freshCode(signed, device.privateKey, at, 1), at, new Set([credential.credentialId]))).toMatchObject({ ok: false, refusal: 'BLOCKED' });
  });

  it('takes only an uncompressed P-256 point as a device key', () => {
    expect(devicePublicKeyOf(point)).not.toBeNull();
    expect(devicePublicKeyOf(Buffer.concat([Buffer.from([2]), point.subarray(1, 33)]))).toBeNull();
    expect(devicePublicKeyOf(Buffer.alloc(65, 4))).toBeNull();
  });
});

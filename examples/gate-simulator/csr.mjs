// A PKCS#10 certificate signing request for an RSA key, with node:crypto only: what a terminal's
// secure element makes at installation (docs/readers.md, "Registering a reader"; `openssl req`
// makes the same). The platform takes only the key from it: the subject of the certificate is its own.
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';

/** DER: a tag, its length, its content. */
function tlv(tag, ...content) {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}

const SHA256_WITH_RSA = Buffer.from('06092a864886f70d01010b', 'hex');
const COMMON_NAME = Buffer.from('0603550403', 'hex');

/** A CSR (PEM) for the RSA private key (PEM), with CN = `commonName`. */
export function csrFor(privateKeyPem, commonName) {
  const privateKey = createPrivateKey(privateKeyPem);
  const subject = tlv(0x30, tlv(0x31, tlv(0x30, COMMON_NAME, tlv(0x0c, Buffer.from(commonName, 'utf8')))));
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  // version 0, subject, subjectPKInfo, attributes [0] (none)
  const info = tlv(0x30, Buffer.from('020100', 'hex'), subject, spki, Buffer.from('a000', 'hex'));
  const signature = sign('sha256', info, privateKey);
  const der = tlv(0x30, info, tlv(0x30, SHA256_WITH_RSA, Buffer.from('0500', 'hex')), tlv(0x03, Buffer.from([0]), signature));
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

/**
 * One place that drives OpenSSL (node:crypto) block ciphers without padding, for des.ts and
 * sm4.ts. Padding is always explicit in this package (mac.ts), never OpenSSL's PKCS#7.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export function encryptBlocks(cipher: string, key: Uint8Array, data: Uint8Array, iv: Uint8Array | null): Buffer {
  const c = createCipheriv(cipher, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

export function decryptBlocks(cipher: string, key: Uint8Array, data: Uint8Array, iv: Uint8Array | null): Buffer {
  const d = createDecipheriv(cipher, key, iv);
  d.setAutoPadding(false);
  return Buffer.concat([d.update(data), d.final()]);
}

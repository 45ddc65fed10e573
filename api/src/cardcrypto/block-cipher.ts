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

/**
 * The CBC-MAC (the last cipher block, from a zero IV) of each of several whole-block messages under
 * one key, from one cipher object: setting up a cipher costs more than enciphering a few blocks
 * (issue 23: an offline batch verifies a card's TACs together). CBC chains from one update to the
 * next; each message's first block is XORed with the previous message's last cipher block, which
 * cancels the chaining, so every MAC is the one a fresh cipher with a zero IV would give.
 */
export function cbcMacs(cipher: string, key: Uint8Array, blockSize: number, messages: readonly Uint8Array[]): Buffer[] {
  const c = createCipheriv(cipher, key, Buffer.alloc(blockSize));
  c.setAutoPadding(false);
  let chain: Buffer | null = null;
  return messages.map((message) => {
    if (message.length === 0 || message.length % blockSize !== 0) throw new RangeError(`a CBC-MAC message is whole blocks of ${blockSize} bytes, got ${message.length}`);
    let unchained = message;
    if (chain) {
      unchained = Buffer.from(message);
      for (let i = 0; i < blockSize; i++) unchained[i]! ^= chain[i]!;
    }
    const out = c.update(unchained);
    chain = out.subarray(out.length - blockSize);
    return Buffer.from(chain);
  });
}

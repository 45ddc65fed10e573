/** Byte checks and bitwise helpers shared by the cardcrypto modules (internal). */

/** Throws a RangeError unless `bytes` is exactly `length` bytes long. */
export function requireLength(name: string, bytes: Uint8Array, length: number): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (bytes.length !== length) {
    throw new RangeError(`${name} must be ${length} bytes, got ${bytes.length}`);
  }
}

/** Throws a RangeError unless `bytes` is a whole number of `blockSize`-byte blocks. */
export function requireBlocks(name: string, bytes: Uint8Array, blockSize: number): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  if (bytes.length % blockSize !== 0) {
    throw new RangeError(`${name} must be a multiple of ${blockSize} bytes, got ${bytes.length}`);
  }
}

/** a XOR b, byte by byte (equal lengths). */
export function xorBytes(a: Uint8Array, b: Uint8Array): Buffer {
  if (a.length !== b.length) throw new RangeError(`cannot XOR ${a.length} bytes with ${b.length}`);
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** NOT a: every bit flipped. */
export function notBytes(a: Uint8Array): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = ~a[i]! & 0xff;
  return out;
}

/** The last `blockSize` bytes (a CBC-MAC's output block), as a copy. */
export function lastBlock(bytes: Uint8Array, blockSize: number): Buffer {
  return Buffer.from(bytes.subarray(bytes.length - blockSize));
}

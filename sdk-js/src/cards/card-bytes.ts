/**
 * Byte helpers shared by the virtual cards: hex in and out of serialised state, big-endian
 * numbers as the PBOC e-purse writes them, and the error a malformed saved card throws.
 */

/** A saved card's state (or an issue option) that a real card could not hold. */
export class CardStateError extends Error {
  override readonly name = 'CardStateError';
  constructor(
    message: string,
    /** The state field or option that is wrong, e.g. `asn` or `blocks[7]`. */
    readonly field: string,
  ) {
    super(message);
  }
}

/** Bytes of a hex string; spaces are allowed, so vectors can be pasted as printed. */
export function fromHex(hex: string, field: string, length?: number): Buffer {
  const clean = hex.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new CardStateError(`${field} is not hex`, field);
  const bytes = Buffer.from(clean, 'hex');
  if (length !== undefined && bytes.length !== length) {
    throw new CardStateError(`${field} must be ${length} bytes, got ${bytes.length}`, field);
  }
  return bytes;
}

/** Upper-case hex, the way card traces and the reference print bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex').toUpperCase();
}

/** Bytes given as hex or as bytes, checked for length. */
export function bytesOf(value: string | Uint8Array, field: string, length?: number): Buffer {
  if (typeof value === 'string') return fromHex(value, field, length);
  const bytes = Buffer.from(value);
  if (length !== undefined && bytes.length !== length) {
    throw new CardStateError(`${field} must be ${length} bytes, got ${bytes.length}`, field);
  }
  return bytes;
}

/** An unsigned integer in `bytes` big-endian bytes (amounts, balances, counters). */
export function uintBE(value: number, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  out.writeUIntBE(value, 0, bytes);
  return out;
}

/** An integer within [min, max], or a CardStateError naming the field. */
export function checkedInt(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new CardStateError(`${field} must be an integer from ${min} to ${max}`, field);
  }
  return value;
}

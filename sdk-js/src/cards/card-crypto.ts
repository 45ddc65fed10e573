/**
 * The virtual CPU card's own cryptography: what the card's chip computes, written here apart from
 * the host's `api/src/cardcrypto/` on purpose. A load or purchase test then has two independent
 * implementations meet over APDUs — one shared function computing the same MAC on both sides would
 * prove nothing (issue rule). Pure functions: bytes in, bytes out.
 *
 * Node 22's OpenSSL has no `des-ecb`: single DES is `des-ede-*` with the 8-byte key repeated
 * (E_K ∘ D_K ∘ E_K = E_K). Two-key 3DES is `des-ede-*` with the 16-byte key. CARD-PROTOCOL.md §4.
 *
 * SM4 inside the e-purse is **unconfirmed** in the reference (§4). The card applies these choices,
 * the 3DES shapes carried over to SM4's 16-byte block:
 *  - algorithm id `0x04` ({@link ALGORITHM_IDS}) in INITIALIZE responses;
 *  - session key = SM4-ECB(DK, input) with the 8-byte 3DES-style input (random || counter || 8000
 *    for load; random || counter || last 2 bytes of the terminal serial for purchase) padded with
 *    ISO/IEC 9797-1 method 2 (80 00…) to 16 bytes; the session key is the whole 16-byte result;
 *  - MAC = SM4 CBC-MAC, zero IV, ISO/IEC 9797-1 method 2 padding to 16, left 4 bytes;
 *  - TAC key = DTK itself (16 bytes; no left-XOR-right fold as with 3DES);
 *  - diversification DK = SM4-ECB(MK, D || NOT D), D = rightmost 8 bytes of the ASN (§4).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** The e-purse algorithms a card can be issued with. */
export type PurseAlgorithm = '3DES' | 'SM4';

/**
 * Algorithm ids a card returns in INITIALIZE FOR LOAD / PURCHASE. `00` = 3DES (CARD-PROTOCOL.md §7
 * vectors); `04` = SM4 is **unconfirmed** (§4) — our choice, kept in this one constant.
 */
export const ALGORITHM_IDS: Readonly<Record<PurseAlgorithm, number>> = { '3DES': 0x00, SM4: 0x04 };

function run(algorithm: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array, decrypt = false): Buffer {
  const cipher = decrypt ? createDecipheriv(algorithm, key, iv) : createCipheriv(algorithm, key, iv);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

function singleDesKey(key8: Uint8Array): Buffer {
  if (key8.length !== 8) throw new RangeError('a single-DES key is 8 bytes');
  return Buffer.concat([key8, key8]);
}

/** Single-DES ECB encryption (`des-ede-ecb` under K || K). */
export function desEncrypt(key8: Uint8Array, data: Uint8Array): Buffer {
  return run('des-ede-ecb', singleDesKey(key8), null, data);
}

/** Single-DES ECB decryption (`des-ede-ecb` under K || K). */
export function desDecrypt(key8: Uint8Array, data: Uint8Array): Buffer {
  return run('des-ede-ecb', singleDesKey(key8), null, data, true);
}

/** Two-key 3DES ECB encryption (EDE, K1 K2 K1). */
export function tdesEncrypt(key16: Uint8Array, data: Uint8Array): Buffer {
  if (key16.length !== 16) throw new RangeError('a two-key 3DES key is 16 bytes');
  return run('des-ede-ecb', key16, null, data);
}

/** SM4 ECB encryption. */
export function sm4Encrypt(key16: Uint8Array, data: Uint8Array): Buffer {
  if (key16.length !== 16) throw new RangeError('an SM4 key is 16 bytes');
  return run('sm4-ecb', key16, null, data);
}

/** ISO/IEC 9797-1 padding method 2: `80`, then `00`s to a whole block (a full block if aligned). */
export function isoPad(data: Uint8Array, blockSize: 8 | 16): Buffer {
  const out = Buffer.alloc((Math.floor(data.length / blockSize) + 1) * blockSize);
  out.set(data);
  out[data.length] = 0x80;
  return out;
}

function lastBlock(data: Buffer, blockSize: number): Buffer {
  return data.subarray(data.length - blockSize);
}

/** MAC with an 8-byte key: single-DES CBC, zero IV, ISO padding, left 4 bytes (§4). */
export function desCbcMac(key8: Uint8Array, data: Uint8Array): Buffer {
  const cbc = run('des-ede-cbc', singleDesKey(key8), Buffer.alloc(8), isoPad(data, 8));
  return Buffer.from(lastBlock(cbc, 8).subarray(0, 4));
}

/**
 * MAC with a 16-byte key: ISO/IEC 9797-1 algorithm 3 ("retail MAC") — single-DES CBC under the left
 * half, then the last block decrypted under the right half and encrypted under the left (§4).
 */
export function retailMac(key16: Uint8Array, data: Uint8Array): Buffer {
  if (key16.length !== 16) throw new RangeError('a retail-MAC key is 16 bytes');
  const left = key16.subarray(0, 8);
  const right = key16.subarray(8, 16);
  const cbc = run('des-ede-cbc', singleDesKey(left), Buffer.alloc(8), isoPad(data, 8));
  const final = desEncrypt(left, desDecrypt(right, lastBlock(cbc, 8)));
  return Buffer.from(final.subarray(0, 4));
}

/** SM4 CBC-MAC: zero IV, ISO padding to 16, left 4 bytes (unconfirmed shape, see above). */
export function sm4CbcMac(key16: Uint8Array, data: Uint8Array): Buffer {
  if (key16.length !== 16) throw new RangeError('an SM4 key is 16 bytes');
  const cbc = run('sm4-cbc', key16, Buffer.alloc(16), isoPad(data, 16));
  return Buffer.from(lastBlock(cbc, 16).subarray(0, 4));
}

function not(bytes: Uint8Array): Buffer {
  return Buffer.from(Uint8Array.from(bytes, (b) => ~b & 0xff));
}

/** The diversification factor D: the rightmost 8 bytes of the 10-byte ASN (§4). */
function factorOf(asn: Uint8Array): Buffer {
  if (asn.length !== 10) throw new RangeError('an ASN is 10 bytes');
  return Buffer.from(asn.subarray(2));
}

/** What the chip does with one algorithm: session keys, MACs, the TAC key, diversification. */
export interface PurseCipher {
  readonly algorithm: PurseAlgorithm;
  /** The id returned in INITIALIZE responses. */
  readonly id: number;
  /** Session key from the card key and the 8-byte session input (random || counter || …). */
  sessionKey(cardKey: Uint8Array, input8: Uint8Array): Buffer;
  /** MAC1 / MAC2 / TAC over `data`. */
  mac(key: Uint8Array, data: Uint8Array): Buffer;
  /** The key the TAC is computed with, from DTK. */
  tacKey(dtk: Uint8Array): Buffer;
  /** A card key from an issuer master key and the card's ASN. */
  diversify(masterKey: Uint8Array, asn: Uint8Array): Buffer;
}

const TDES: PurseCipher = {
  algorithm: '3DES',
  id: ALGORITHM_IDS['3DES'],
  sessionKey: (cardKey, input8) => tdesEncrypt(cardKey, input8),
  // An 8-byte key (session key, folded TAC key) gets the single-DES MAC, a 16-byte key the retail MAC.
  mac: (key, data) => (key.length === 8 ? desCbcMac(key, data) : retailMac(key, data)),
  tacKey: (dtk) => Buffer.from(Uint8Array.from(dtk.subarray(0, 8), (b, i) => b ^ dtk[8 + i]!)),
  diversify: (masterKey, asn) => {
    const d = factorOf(asn);
    return Buffer.concat([tdesEncrypt(masterKey, d), tdesEncrypt(masterKey, not(d))]);
  },
};

const SM4: PurseCipher = {
  algorithm: 'SM4',
  id: ALGORITHM_IDS.SM4,
  sessionKey: (cardKey, input8) => sm4Encrypt(cardKey, isoPad(input8, 16)),
  mac: (key, data) => sm4CbcMac(key, data),
  tacKey: (dtk) => Buffer.from(dtk),
  diversify: (masterKey, asn) => {
    const d = factorOf(asn);
    return sm4Encrypt(masterKey, Buffer.concat([d, not(d)]));
  },
};

/** The chip's cipher for an algorithm. */
export function purseCipher(algorithm: PurseAlgorithm): PurseCipher {
  return algorithm === 'SM4' ? SM4 : TDES;
}

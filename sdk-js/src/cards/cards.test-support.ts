/**
 * Test support for the virtual cards: a host side written apart from the card's `card-crypto.ts`
 * (straight Node crypto calls, another DES construction, hand-rolled CBC), so a test where card and
 * host agree on a MAC shows two implementations agreeing — not one function agreeing with itself.
 * Not part of the SDK's exports.
 */
import { createCipheriv } from 'node:crypto';
import { splitResponse } from './card-transport.js';
import { VirtualCpuCard, type CpuCardWithKeysOptions } from './virtual-cpu-card.js';

/** Bytes from hex as printed in the reference (spaces allowed). */
export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function encryptBlock(algorithm: string, key: Buffer, block: Buffer): Buffer {
  const cipher = createCipheriv(algorithm, key, null);
  cipher.setAutoPadding(false);
  return Buffer.concat([cipher.update(block), cipher.final()]);
}

/** Single DES as three-key EDE with K || K || K (the card uses two-key EDE with K || K). */
export function hostDes(key8: Buffer, block: Buffer): Buffer {
  return encryptBlock('des-ede3-ecb', Buffer.concat([key8, key8, key8]), block);
}

/** Two-key 3DES as three-key EDE with K1 || K2 || K1. */
export function hostTdes(key16: Buffer, data: Buffer): Buffer {
  return encryptBlock('des-ede3-ecb', Buffer.concat([key16, key16.subarray(0, 8)]), data);
}

export function hostSm4(key16: Buffer, data: Buffer): Buffer {
  return encryptBlock('sm4-ecb', key16, data);
}

function padded(data: Buffer, blockSize: number): Buffer {
  const zeros = (blockSize - ((data.length + 1) % blockSize)) % blockSize;
  return Buffer.concat([data, Buffer.from([0x80]), Buffer.alloc(zeros)]);
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((x, i) => x ^ b[i]!));
}

/** CBC-MAC by hand: XOR each block into the chain and encrypt; the whole last block. */
function cbcChain(encrypt: (block: Buffer) => Buffer, blockSize: number, data: Buffer): Buffer {
  const input = padded(data, blockSize);
  let chain: Buffer = Buffer.alloc(blockSize);
  for (let i = 0; i < input.length; i += blockSize) {
    const block = input.subarray(i, i + blockSize);
    chain = encrypt(xor(chain, block));
  }
  return chain;
}

/** The PBOC MAC under an 8-byte key (session key, folded TAC key), left 4 bytes. */
export function hostMac8(key8: Buffer, data: Buffer): Buffer {
  return cbcChain((b) => hostDes(key8, b), 8, data).subarray(0, 4);
}

/** ISO/IEC 9797-1 algorithm 3 under a 16-byte key, left 4 bytes. */
export function hostRetailMac(key16: Buffer, data: Buffer): Buffer {
  const left = key16.subarray(0, 8);
  const input = padded(data, 8);
  let chain: Buffer = Buffer.alloc(8);
  for (let i = 0; i < input.length - 8; i += 8) chain = hostDes(left, xor(chain, input.subarray(i, i + 8)));
  // The last block: E_K1(D_K2(E_K1(x))), which is two-key 3DES EDE of x.
  return hostTdes(key16, xor(chain, input.subarray(input.length - 8))).subarray(0, 4);
}

/** The SM4 CBC-MAC under a 16-byte key, left 4 bytes. */
export function hostSm4Mac(key16: Buffer, data: Buffer): Buffer {
  return cbcChain((b) => hostSm4(key16, b), 16, data).subarray(0, 4);
}

/** The 3DES TAC key: DTK left XOR right. */
export function hostTacKey3des(dtk: Buffer): Buffer {
  return Buffer.from(dtk.subarray(0, 8).map((b, i) => b ^ dtk[8 + i]!));
}

/** Card key from a master key by the ASN's rightmost 8 bytes (§4), 3DES or SM4. */
export function hostDiversify(algorithm: '3DES' | 'SM4', masterKey: Buffer, asn: Buffer): Buffer {
  const d = asn.subarray(2);
  const notD = Buffer.from(d.map((b) => 0xff - b));
  return algorithm === 'SM4'
    ? hostSm4(masterKey, Buffer.concat([d, notD]))
    : Buffer.concat([hostTdes(masterKey, d), hostTdes(masterKey, notD)]);
}

/** A random source handing out the given 4-byte challenges in turn (then repeating the last). */
export function fixedRandom(...challenges: string[]): (length: number) => Uint8Array {
  let next = 0;
  return (length) => {
    const value = hex(challenges[Math.min(next++, challenges.length - 1)]!);
    if (value.length !== length) throw new Error(`fixedRandom: asked for ${length} bytes`);
    return value;
  };
}

/** Sends an APDU (hex) and returns the response's data (hex, upper case) and status word (hex). */
export function send(card: VirtualCpuCard, apdu: string): { data: string; sw: string } {
  const { data, sw } = splitResponse(card.transmit(hex(apdu)));
  return { data: Buffer.from(data).toString('hex').toUpperCase(), sw: sw.toString(16).toUpperCase().padStart(4, '0') };
}

/** The city-union application SELECT. */
export const SELECT_CITY_UNION = '00A4040009 A00000000386980701';

/** DLK and DPK of vectors L1 / P1. */
export const VECTOR_KEY = '11223344556677888877665544332211';
/** A DTK for the vector cards (the reference gives none; TACs are checked against the host side). */
export const VECTOR_DTK = '0F1E2D3C4B5A69788796A5B4C3D2E1F0';
export const VECTOR_ASN = '44010000000000012345';

/**
 * A card keyed like vectors L1 and P1: key index 1, DLK = DPK = {@link VECTOR_KEY}, load key version
 * 02 (L1), purchase key version 01 (P1), an e-deposit (L1 loads one), the card random `11223344`.
 */
export function vectorCard(overrides: Partial<CpuCardWithKeysOptions> = {}, random = fixedRandom('11223344')): VirtualCpuCard {
  return VirtualCpuCard.withKeys(
    {
      asn: VECTOR_ASN,
      cityCode: '4401',
      algorithm: '3DES',
      eDeposit: true,
      keys: { load: [{ index: 1, version: 2, key: VECTOR_KEY }], purchase: [{ index: 1, version: 1, key: VECTOR_KEY }], tac: VECTOR_DTK },
      ...overrides,
    },
    { random },
  );
}

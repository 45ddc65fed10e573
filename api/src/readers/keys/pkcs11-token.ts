/**
 * One PKCS#11 token (an HSM partition; SoftHSM2 in tests) through `pkcs11js`, with only what the card
 * key store does there: find a key by label, unwrap a card company's master key under the
 * key-transport key, encrypt blocks under a master key (diversification), derive keys from keys
 * (CKM_DES3_ECB_ENCRYPT_DATA) and compute CBC-MACs under them, compute a key check value. Master
 * keys and derived keys are sensitive and never extractable: no call here can read one back.
 *
 * C_DeriveKey goes through koffi (pkcs11-derive.ts) on this same session: pkcs11js cannot pass the
 * CK_KEY_DERIVATION_STRING_DATA that CKM_DES3_ECB_ENCRYPT_DATA takes (docs/cardcrypto.md, "Keys in an HSM").
 */
import { createPublicKey } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Pkcs11js from 'pkcs11js';
import { type DeriveAttribute, type DeriveKeyFn, deriveKeyFunction } from './pkcs11-derive.js';

type Pkcs11Module = typeof Pkcs11js;
type Handle = Buffer;

export interface Pkcs11Config {
  /** The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  /** The token's label (softhsm2-util --init-token --label …). */
  tokenLabel: string;
  /** The user PIN. */
  pin: string;
}

/** The token could not be used: the library, the token or the PIN. */
export class Pkcs11Error extends Error {
  override readonly name = 'Pkcs11Error';
}

export const TRANSPORT_KEY_LABEL = 'onecard-key-transport-key';

export class Pkcs11Token {
  private constructor(
    private readonly p11: Pkcs11Js,
    private readonly k: Pkcs11Module,
    private readonly session: Handle,
    private readonly deriveKey: DeriveKeyFn,
  ) {}

  static open(config: Pkcs11Config): Pkcs11Token {
    let k: Pkcs11Module;
    try {
      k = createRequire(import.meta.url)('pkcs11js') as Pkcs11Module;
    } catch (err) {
      throw new Pkcs11Error(`the PKCS#11 binding (npm package pkcs11js) is not installed or did not build: ${(err as Error).message}`);
    }
    const p11 = new k.PKCS11();
    try {
      p11.load(config.module);
    } catch (err) {
      throw new Pkcs11Error(`cannot load the PKCS#11 library ${config.module}: ${(err as Error).message}`);
    }
    try {
      p11.C_Initialize();
    } catch (err) {
      // Another store in this process initialised the library already.
      if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((err as Error).message)) throw err;
    }
    const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === config.tokenLabel);
    if (!slot) throw new Pkcs11Error(`no PKCS#11 token labelled "${config.tokenLabel}" in ${config.module}`);
    const session = p11.C_OpenSession(slot, k.CKF_SERIAL_SESSION | k.CKF_RW_SESSION);
    try {
      p11.C_Login(session, k.CKU_USER, config.pin);
    } catch (err) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test((err as Error).message)) throw new Pkcs11Error(`the token refused the PIN: ${(err as Error).message}`);
    }
    let deriveKey: DeriveKeyFn;
    try {
      deriveKey = deriveKeyFunction(config.module, (rv) => returnValueNames(k).get(rv) ?? `CKR 0x${rv.toString(16)}`);
    } catch (err) {
      throw new Pkcs11Error(`cannot bind C_DeriveKey of ${config.module} (npm package koffi): ${(err as Error).message}`);
    }
    return new Pkcs11Token(p11, k, session, deriveKey);
  }

  close(): void {
    this.p11.C_CloseSession(this.session);
  }

  find(label: string, cls: number = this.k.CKO_SECRET_KEY): Handle | undefined {
    this.p11.C_FindObjectsInit(this.session, [
      { type: this.k.CKA_CLASS, value: cls },
      { type: this.k.CKA_LABEL, value: label },
    ]);
    try {
      return this.p11.C_FindObjects(this.session) ?? undefined;
    } finally {
      this.p11.C_FindObjectsFinal(this.session);
    }
  }

  destroy(handle: Handle): void {
    this.p11.C_DestroyObject(this.session, handle);
  }

  /** The key-transport key pair (RSA-2048, made inside the token on first use): its public key as PEM. */
  transportPublicKeyPem(): string {
    const k = this.k;
    let pub = this.find(TRANSPORT_KEY_LABEL, k.CKO_PUBLIC_KEY);
    if (!pub) {
      const made = this.p11.C_GenerateKeyPair(
        this.session,
        { mechanism: k.CKM_RSA_PKCS_KEY_PAIR_GEN },
        [
          { type: k.CKA_TOKEN, value: true },
          { type: k.CKA_LABEL, value: TRANSPORT_KEY_LABEL },
          { type: k.CKA_MODULUS_BITS, value: 2048 },
          { type: k.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: k.CKA_WRAP, value: true },
          { type: k.CKA_ENCRYPT, value: true },
        ],
        [
          { type: k.CKA_TOKEN, value: true },
          { type: k.CKA_LABEL, value: TRANSPORT_KEY_LABEL },
          { type: k.CKA_PRIVATE, value: true },
          { type: k.CKA_SENSITIVE, value: true },
          { type: k.CKA_EXTRACTABLE, value: false },
          { type: k.CKA_UNWRAP, value: true },
          { type: k.CKA_DECRYPT, value: false },
          { type: k.CKA_SIGN, value: false },
        ],
      );
      pub = made.publicKey;
    }
    const [n, e] = this.p11.C_GetAttributeValue(this.session, pub, [{ type: k.CKA_MODULUS }, { type: k.CKA_PUBLIC_EXPONENT }]);
    return createPublicKey({ key: { kty: 'RSA', n: (n!.value as Buffer).toString('base64url'), e: (e!.value as Buffer).toString('base64url') }, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
  }

  private oaep() {
    const k = this.k;
    // SoftHSM2 does OAEP with SHA-1 and MGF1-SHA-1 only.
    return { mechanism: k.CKM_RSA_PKCS_OAEP, parameter: { type: k.CK_PARAMS_RSA_OAEP, hashAlg: k.CKM_SHA_1, mgf: k.CKG_MGF1_SHA1, source: 1 /* CKZ_DATA_SPECIFIED */ } };
  }

  /**
   * Unwraps a 2-key 3DES master key into the token under `label`: sensitive, never extractable,
   * usable only to encrypt and derive (diversify). Throws if the blob does not unwrap under the transport key
   * (the token refuses a value that is not 16 bytes for a CKK_DES2 key).
   */
  unwrapDes2(wrapped: Buffer, label: string): Handle {
    const k = this.k;
    const ktk = this.find(TRANSPORT_KEY_LABEL, k.CKO_PRIVATE_KEY);
    if (!ktk) throw new Pkcs11Error('the token has no key-transport key: ask for its public key first');
    const handle = this.p11.C_UnwrapKey(this.session, this.oaep(), ktk, wrapped, [
      { type: k.CKA_CLASS, value: k.CKO_SECRET_KEY },
      { type: k.CKA_KEY_TYPE, value: k.CKK_DES2 },
      { type: k.CKA_TOKEN, value: true },
      { type: k.CKA_LABEL, value: label },
      { type: k.CKA_PRIVATE, value: true },
      { type: k.CKA_SENSITIVE, value: true },
      { type: k.CKA_EXTRACTABLE, value: false },
      // ENCRYPT: diversification by C_Encrypt (M1 sector keys, the TAC's card key); DERIVE: the card key inside the token.
      { type: k.CKA_ENCRYPT, value: true },
      { type: k.CKA_DERIVE, value: true },
      { type: k.CKA_DECRYPT, value: false },
      { type: k.CKA_WRAP, value: false },
      { type: k.CKA_UNWRAP, value: false },
    ]);
    return handle;
  }

  /**
   * Unwraps a key the token has no type for (SM4: SoftHSM2 has none) as a short-lived extractable
   * secret and returns its bytes: the caller seals them in software and they leave no object behind.
   */
  unwrapToSoftware(wrapped: Buffer): Buffer {
    const k = this.k;
    const ktk = this.find(TRANSPORT_KEY_LABEL, k.CKO_PRIVATE_KEY);
    if (!ktk) throw new Pkcs11Error('the token has no key-transport key: ask for its public key first');
    const handle = this.p11.C_UnwrapKey(this.session, this.oaep(), ktk, wrapped, [
      { type: k.CKA_CLASS, value: k.CKO_SECRET_KEY },
      { type: k.CKA_KEY_TYPE, value: k.CKK_GENERIC_SECRET },
      { type: k.CKA_TOKEN, value: false },
      { type: k.CKA_SENSITIVE, value: false },
      { type: k.CKA_EXTRACTABLE, value: true },
    ]);
    try {
      const [value] = this.p11.C_GetAttributeValue(this.session, handle, [{ type: k.CKA_VALUE }]);
      return Buffer.from(value!.value as Buffer);
    } finally {
      this.destroy(handle);
    }
  }

  /** 3DES-ECB under a key in the token (whole blocks). */
  encryptEcb(key: Handle, data: Buffer): Buffer {
    this.p11.C_EncryptInit(this.session, { mechanism: this.k.CKM_DES3_ECB }, key);
    return Buffer.from(this.p11.C_Encrypt(this.session, data, Buffer.alloc(data.length + 16)));
  }

  /**
   * A 2-key 3DES key derived inside the token: the value is 3DES-ECB(base, data) over whole blocks
   * (CKM_DES3_ECB_ENCRYPT_DATA), 16 bytes of data for one DES2 key. A session object (CKA_TOKEN
   * false: gone with the session even if this process dies), sensitive, never extractable; `use`
   * says what it may do. The caller destroys it when done.
   */
  deriveDes2(base: Handle, data: Buffer, use: 'derive' | 'encrypt'): Handle {
    const k = this.k;
    const template: DeriveAttribute[] = [
      { type: k.CKA_CLASS, value: k.CKO_SECRET_KEY },
      { type: k.CKA_KEY_TYPE, value: k.CKK_DES2 },
      { type: k.CKA_TOKEN, value: false },
      { type: k.CKA_PRIVATE, value: true },
      { type: k.CKA_SENSITIVE, value: true },
      { type: k.CKA_EXTRACTABLE, value: false },
      { type: k.CKA_DERIVE, value: use === 'derive' },
      { type: k.CKA_ENCRYPT, value: use === 'encrypt' },
      { type: k.CKA_DECRYPT, value: false },
      { type: k.CKA_SIGN, value: false },
      { type: k.CKA_WRAP, value: false },
      { type: k.CKA_UNWRAP, value: false },
    ];
    try {
      return this.deriveKey(this.session, k.CKM_DES3_ECB_ENCRYPT_DATA, base, data, template);
    } catch (err) {
      throw new Pkcs11Error(`the token did not derive a key: ${(err as Error).message}`);
    }
  }

  /** The last block of 3DES-CBC under a key in the token, zero IV, over data already padded to whole blocks. */
  cbcMacBlock(key: Handle, padded: Buffer): Buffer {
    this.p11.C_EncryptInit(this.session, { mechanism: this.k.CKM_DES3_CBC, parameter: Buffer.alloc(8) }, key);
    const out = this.p11.C_Encrypt(this.session, padded, Buffer.alloc(padded.length));
    return Buffer.from(out.subarray(out.length - 8));
  }

  /** Whether a key may be the base of a derivation (master keys imported before derivation moved into the token may not). */
  canDerive(key: Handle): boolean {
    const [derive] = this.p11.C_GetAttributeValue(this.session, key, [{ type: this.k.CKA_DERIVE }]);
    return flag(derive!);
  }

  /** Whether a key is a session object (gone with the session) rather than kept on the token. */
  isSessionObject(key: Handle): boolean {
    const [onToken] = this.p11.C_GetAttributeValue(this.session, key, [{ type: this.k.CKA_TOKEN }]);
    return !flag(onToken!);
  }

  /** How many objects this session sees, token and session ones: derived keys must not pile up. */
  objectCount(): number {
    this.p11.C_FindObjectsInit(this.session, []);
    try {
      let n = 0;
      while (this.p11.C_FindObjects(this.session)) n++;
      return n;
    } finally {
      this.p11.C_FindObjectsFinal(this.session);
    }
  }

  /** Whether the key's value can be read out of the token at all (it must not, for a master key). */
  extractable(key: Handle): boolean {
    const k = this.k;
    const [sensitive, extractable] = this.p11.C_GetAttributeValue(this.session, key, [{ type: k.CKA_SENSITIVE }, { type: k.CKA_EXTRACTABLE }]);
    return !flag(sensitive!) || flag(extractable!);
  }

  /** Tries to read a key's value (CKA_VALUE): what an attacker with the PIN would try. */
  readValue(key: Handle): Buffer {
    const [value] = this.p11.C_GetAttributeValue(this.session, key, [{ type: this.k.CKA_VALUE }]);
    return value!.value as Buffer;
  }
}

/** A boolean attribute as pkcs11js answers it (a one-byte Buffer). */
const flag = (a: { value?: unknown }) => (Buffer.isBuffer(a.value) ? a.value[0] === 1 : Boolean(a.value));

/** CKR_ names by value, from pkcs11js's constants, for errors from calls made around it. */
let rvNames: Map<number, string> | undefined;
function returnValueNames(k: Pkcs11Module): Map<number, string> {
  rvNames ??= new Map(Object.entries(k).filter(([name, value]) => name.startsWith('CKR_') && typeof value === 'number').map(([name, value]) => [value as number, name]));
  return rvNames;
}

type Pkcs11Js = InstanceType<Pkcs11Module['PKCS11']>;

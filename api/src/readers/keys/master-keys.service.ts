import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { tdesEcbEncrypt } from '../../cardcrypto/des.js';
import { sm4EcbEncrypt } from '../../cardcrypto/sm4.js';
import { DomainError } from '../../graphql/domain-error.js';
import { UserErrorCode } from '../../graphql/user-error.js';
import { seal, unseal } from '../../secrets/kek.js';
import { type CardAlgorithm, masterKeyLabel, type MasterKeyPurpose } from '../key-store.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/**
 * A card company's master keys, imported (docs/cardcrypto.md, "Key ceremony"): each 16-byte key
 * comes wrapped under the platform's key-transport key (RSA-OAEP with SHA-1 and MGF1-SHA-1, the
 * only OAEP SoftHSM2 unwraps), with its key check value (KCV: the first 3 bytes of the key
 * enciphering zeros). It is unwrapped where it will live (sealed in software, or inside the HSM),
 * its KCV recomputed there and compared, and it waits to be activated; a retired version serves no
 * session any more. Nothing here returns, logs or stores a key in clear: only the KCV identifies it.
 */

export type MasterKeyStatus = 'PENDING' | 'ACTIVE' | 'RETIRED';
export type StoredIn = 'SOFTWARE' | 'PKCS11';
export const MASTER_KEY_PURPOSES = ['LOAD', 'PURCHASE', 'TAC', 'M1'] as const;

export type MasterKeyRefusalCode = 'INVALID_INPUT' | 'KEY_NOT_UNWRAPPED' | 'KEY_CHECK_VALUE_MISMATCH' | 'KEY_VERSION_TAKEN' | 'NOT_FOUND' | 'INVALID_KEY_TRANSITION';

/** An import, activation or retirement refused; nothing was written. */
export class MasterKeyRefusal extends DomainError<MasterKeyRefusalCode> {
  override readonly name = 'MasterKeyRefusal';
  constructor(code: MasterKeyRefusalCode, message: string, field?: string) {
    super(code, message, UserErrorCode[code], field);
  }
}

/** What anyone may see of a master key version: never the key. */
export interface MasterKeyInfo {
  purpose: MasterKeyPurpose;
  keyVersion: number;
  algorithm: CardAlgorithm;
  keyCheckValue: string | null;
  storedIn: StoredIn;
  status: MasterKeyStatus;
  createdAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
}

/** The KCV: 3DES enciphers 8 zero bytes, SM4 16; the first 3 bytes, hex (the card industry's usual form). */
export function keyCheckValue(algorithm: CardAlgorithm, key: Buffer): string {
  const block = algorithm === 'SM4' ? sm4EcbEncrypt(key, Buffer.alloc(16)) : tdesEcbEncrypt(key, Buffer.alloc(8));
  return block.subarray(0, 3).toString('hex').toUpperCase();
}

const TRANSPORT_CONTEXT = 'card-key-transport-key';

/** Where imported keys go: software (sealed with the KEK), or a PKCS#11 token for 3DES keys. */
export interface KeyVault {
  kek: Buffer;
  token?: Pkcs11Token;
}

/** The key-transport key's public key (PEM), made on first use: a card company wraps its master keys with it. */
export async function keyTransportPublicKey(em: EntityManager, vault: KeyVault): Promise<{ publicKeyPem: string; storedIn: StoredIn }> {
  const storedIn: StoredIn = vault.token ? 'PKCS11' : 'SOFTWARE';
  const [row] = await em.execute<{ public_key_pem: string }[]>(`select public_key_pem from card_key_transport_key where stored_in = ?`, [storedIn]);
  if (vault.token) {
    const publicKeyPem = vault.token.transportPublicKeyPem();
    if (row?.public_key_pem !== publicKeyPem) {
      await em.execute(`insert into card_key_transport_key (stored_in, public_key_pem) values ('PKCS11', ?) on conflict (stored_in) do update set public_key_pem = excluded.public_key_pem, created_at = now()`, [publicKeyPem]);
    }
    return { publicKeyPem, storedIn };
  }
  if (row) return { publicKeyPem: row.public_key_pem, storedIn };
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  await em.execute(`insert into card_key_transport_key (stored_in, public_key_pem, sealed_private_key) values ('SOFTWARE', ?, ?) on conflict (stored_in) do nothing`, [
    pair.publicKey,
    seal(vault.kek, TRANSPORT_CONTEXT, Buffer.from(pair.privateKey)),
  ]);
  // Another process may have made it first: the stored one is the one.
  return keyTransportPublicKey(em, vault);
}

export interface ImportMasterKeyInput {
  cardCompanyId: string;
  purpose: string;
  keyVersion: number;
  algorithm: string;
  /** RSA-OAEP (SHA-1) of the 16 key bytes under the key-transport key. */
  wrappedKey: Buffer;
  keyCheckValue: string;
}

function checkInput(input: ImportMasterKeyInput): { purpose: MasterKeyPurpose; algorithm: CardAlgorithm; kcv: string } {
  if (!(MASTER_KEY_PURPOSES as readonly string[]).includes(input.purpose)) throw new MasterKeyRefusal('INVALID_INPUT', `purpose is one of ${MASTER_KEY_PURPOSES.join(', ')}`, 'purpose');
  if (!Number.isInteger(input.keyVersion) || input.keyVersion < 0 || input.keyVersion > 255) throw new MasterKeyRefusal('INVALID_INPUT', 'keyVersion is an integer from 0 to 255 (one byte on the card)', 'keyVersion');
  if (input.algorithm !== '3DES' && input.algorithm !== 'SM4') throw new MasterKeyRefusal('INVALID_INPUT', 'algorithm is 3DES or SM4', 'algorithm');
  if (input.purpose === 'M1' && input.algorithm !== '3DES') throw new MasterKeyRefusal('INVALID_INPUT', 'an M1 master key is 3DES (sector keys derive from it by 3DES)', 'algorithm');
  const kcv = input.keyCheckValue.replace(/\s+/g, '').toUpperCase();
  if (!/^[0-9A-F]{6}$/.test(kcv)) throw new MasterKeyRefusal('INVALID_INPUT', 'keyCheckValue is 3 bytes in hex (6 digits)', 'keyCheckValue');
  if (input.wrappedKey.length !== 256) throw new MasterKeyRefusal('INVALID_INPUT', 'wrappedKey is an RSA-2048 OAEP block (256 bytes) under the key-transport key', 'wrappedKey');
  return { purpose: input.purpose as MasterKeyPurpose, algorithm: input.algorithm, kcv };
}

/** Unwraps in software: the key exists in this process's memory only until it is sealed. */
async function unwrapInSoftware(em: EntityManager, vault: KeyVault, wrapped: Buffer): Promise<Buffer> {
  if (vault.token) return vault.token.unwrapToSoftware(wrapped);
  const [row] = await em.execute<{ sealed_private_key: string }[]>(`select sealed_private_key from card_key_transport_key where stored_in = 'SOFTWARE'`);
  if (!row) throw new MasterKeyRefusal('KEY_NOT_UNWRAPPED', 'no key-transport key has been issued yet: fetch its public key and wrap the key with it', 'wrappedKey');
  const privateKey = unseal(vault.kek, TRANSPORT_CONTEXT, row.sealed_private_key);
  try {
    return privateDecrypt({ key: privateKey.toString(), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, wrapped);
  } finally {
    privateKey.fill(0);
  }
}

/** Imports one master key version, PENDING until activated. */
export async function importMasterKey(em: EntityManager, vault: KeyVault, input: ImportMasterKeyInput): Promise<MasterKeyInfo> {
  const { purpose, algorithm, kcv } = checkInput(input);
  const label = masterKeyLabel(input.cardCompanyId, purpose, input.keyVersion);
  const [taken] = await em.execute(`select 1 from card_master_key where card_company_id = ? and purpose = ? and key_version = ?`, [input.cardCompanyId, purpose, input.keyVersion]);
  if (taken) throw new MasterKeyRefusal('KEY_VERSION_TAKEN', `${purpose} key version ${input.keyVersion} exists already: a new key takes a new version`, 'keyVersion');

  const inHsm = vault.token !== undefined && algorithm === '3DES';
  let sealed: string | null = null;
  let computed: string;
  let undo = () => {};
  try {
    if (inHsm) {
      if (vault.token!.find(label)) throw new MasterKeyRefusal('KEY_VERSION_TAKEN', `the HSM token already holds an object labelled for ${purpose} version ${input.keyVersion}`, 'keyVersion');
      const handle = vault.token!.unwrapDes2(input.wrappedKey, label);
      undo = () => vault.token!.destroy(handle);
      computed = vault.token!.encryptEcb(handle, Buffer.alloc(8)).subarray(0, 3).toString('hex').toUpperCase();
    } else {
      const key = await unwrapInSoftware(em, vault, input.wrappedKey);
      try {
        if (key.length !== 16) throw new MasterKeyRefusal('KEY_NOT_UNWRAPPED', `the unwrapped key is ${key.length} bytes; a master key is 16`, 'wrappedKey');
        computed = keyCheckValue(algorithm, key);
        sealed = seal(vault.kek, label, key);
      } finally {
        key.fill(0);
      }
    }
  } catch (err) {
    undo();
    if (err instanceof MasterKeyRefusal) throw err;
    // The token's or OpenSSL's message says only that it failed; it holds no key bytes.
    throw new MasterKeyRefusal('KEY_NOT_UNWRAPPED', 'the wrapped key does not unwrap under the key-transport key', 'wrappedKey');
  }
  if (computed !== kcv) {
    undo();
    throw new MasterKeyRefusal('KEY_CHECK_VALUE_MISMATCH', `the key unwrapped has check value ${computed}, not ${kcv}: it was not imported (a wrong key, or a wrong check value)`, 'keyCheckValue');
  }
  try {
    await em.execute(
      `insert into card_master_key (card_company_id, purpose, key_version, algorithm, sealed_key, stored_in, key_check_value, activated_at) values (?, ?, ?, ?, ?, ?, ?, null)`,
      [input.cardCompanyId, purpose, input.keyVersion, algorithm, sealed, inHsm ? 'PKCS11' : 'SOFTWARE', kcv],
    );
  } catch (err) {
    undo();
    // Two imports of one version at once: both passed the check above, the key row lets one in.
    if (err instanceof UniqueConstraintViolationException) throw new MasterKeyRefusal('KEY_VERSION_TAKEN', `${purpose} key version ${input.keyVersion} exists already: a new key takes a new version`, 'keyVersion');
    throw err;
  }
  return (await listMasterKeys(em, input.cardCompanyId)).find((k) => k.purpose === purpose && k.keyVersion === input.keyVersion)!;
}

/** PENDING → ACTIVE (sessions use it) → RETIRED (they no longer do). */
export async function changeMasterKeyStatus(em: EntityManager, input: { cardCompanyId: string; purpose: string; keyVersion: number; to: 'ACTIVE' | 'RETIRED' }): Promise<MasterKeyInfo> {
  const current = (await listMasterKeys(em, input.cardCompanyId)).find((k) => k.purpose === input.purpose && k.keyVersion === input.keyVersion);
  if (!current) throw new MasterKeyRefusal('NOT_FOUND', `no ${input.purpose} master key version ${input.keyVersion} for this card company`);
  const from = input.to === 'ACTIVE' ? 'PENDING' : 'ACTIVE';
  if (current.status !== from) throw new MasterKeyRefusal('INVALID_KEY_TRANSITION', `${input.purpose} version ${input.keyVersion} is ${current.status}: only a ${from} key can become ${input.to}`);
  const column = input.to === 'ACTIVE' ? 'activated_at' : 'retired_at';
  await em.execute(`update card_master_key set ${column} = now() where card_company_id = ? and purpose = ? and key_version = ? and ${column} is null`, [input.cardCompanyId, input.purpose, input.keyVersion]);
  return (await listMasterKeys(em, input.cardCompanyId)).find((k) => k.purpose === input.purpose && k.keyVersion === input.keyVersion)!;
}

/** Every master key version of a card company, described: purpose, version, algorithm, KCV, where, status. */
export async function listMasterKeys(em: EntityManager, cardCompanyId: string): Promise<MasterKeyInfo[]> {
  const rows = await em.execute<
    { purpose: MasterKeyPurpose; key_version: number; algorithm: CardAlgorithm; key_check_value: string | null; stored_in: StoredIn; created_at: Date; activated_at: Date | null; retired_at: Date | null }[]
  >(`select purpose, key_version, algorithm, key_check_value, stored_in, created_at, activated_at, retired_at from card_master_key where card_company_id = ? order by purpose, key_version`, [cardCompanyId]);
  return rows.map((r) => ({
    purpose: r.purpose,
    keyVersion: r.key_version,
    algorithm: r.algorithm,
    keyCheckValue: r.key_check_value,
    storedIn: r.stored_in,
    status: r.retired_at ? 'RETIRED' : r.activated_at && new Date(r.activated_at) <= new Date() ? 'ACTIVE' : 'PENDING',
    createdAt: new Date(r.created_at),
    activatedAt: r.activated_at ? new Date(r.activated_at) : null,
    retiredAt: r.retired_at ? new Date(r.retired_at) : null,
  }));
}

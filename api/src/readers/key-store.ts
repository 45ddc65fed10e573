import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ALG_3DES, ALG_SM4 } from '../cardcrypto/algorithm.js';
import { diversifyKey } from '../cardcrypto/diversify.js';
import { seal, unseal } from '../secrets/kek.js';

export type KeyPurpose = 'LOAD' | 'PURCHASE' | 'TAC';
export type CardAlgorithm = '3DES' | 'SM4';

/**
 * Where card keys live (DESIGN.md §6). The host never keeps a card's own key: it diversifies the
 * card company's master key by the card's ASN when a session needs it. A PKCS#11 HSM can stand in
 * for the software store below behind the same interface.
 */
export interface KeyStore {
  cardKey(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asn: Buffer }): Promise<{ key: Buffer; algorithm: CardAlgorithm }>;
}

const context = (companyId: string, purpose: KeyPurpose, version: number) => `card-master-key:${companyId}:${purpose}:${version}`;

/** Master keys sealed with the key-encryption key in `card_master_key`. */
export class SoftwareKeyStore implements KeyStore {
  constructor(
    private readonly em: EntityManager,
    private readonly kek: Buffer,
  ) {}

  async cardKey(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asn: Buffer }) {
    const [row] = await this.em.execute<{ sealed_key: string; algorithm: CardAlgorithm }[]>(
      `select sealed_key, algorithm from card_master_key where card_company_id = ? and purpose = ? and key_version = ?`,
      [req.cardCompanyId, req.purpose, req.keyVersion],
    );
    if (!row) throw new Error(`no ${req.purpose} master key version ${req.keyVersion}`);
    const master = unseal(this.kek, context(req.cardCompanyId, req.purpose, req.keyVersion), row.sealed_key);
    return { key: diversifyKey(row.algorithm === 'SM4' ? ALG_SM4 : ALG_3DES, master, req.asn), algorithm: row.algorithm };
  }
}

/** Stores a card company's master keys (a key ceremony's output, or fresh random ones for a demo). */
export async function storeMasterKeys(
  em: EntityManager,
  kek: Buffer,
  input: { cardCompanyId: string; keyVersion: number; algorithm: CardAlgorithm; keys?: Partial<Record<KeyPurpose, Buffer>> },
): Promise<Record<KeyPurpose, Buffer>> {
  const keys = {} as Record<KeyPurpose, Buffer>;
  for (const purpose of ['LOAD', 'PURCHASE', 'TAC'] as const) {
    const key = input.keys?.[purpose] ?? randomBytes(16);
    keys[purpose] = key;
    await em.execute(`insert into card_master_key (card_company_id, purpose, key_version, algorithm, sealed_key) values (?, ?, ?, ?, ?)`, [
      input.cardCompanyId,
      purpose,
      input.keyVersion,
      input.algorithm,
      seal(kek, context(input.cardCompanyId, purpose, input.keyVersion), key),
    ]);
  }
  return keys;
}

import { createHash, randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { NoticedCache } from '../db/noticed-cache.js';
import { ALG_3DES, ALG_SM4, type AlgorithmId } from '../cardcrypto/algorithm.js';
import { diversifyKey, diversifyKeys } from '../cardcrypto/diversify.js';
import { sessionKeyFrom, sessionMac, tacOver } from '../cardcrypto/epurse.js';
import { seal, unseal } from '../secrets/kek.js';
import { m1SectorKeyB } from './m1/m1-script.js';

export type KeyPurpose = 'LOAD' | 'PURCHASE' | 'TAC';

/** The card names a key the card company does not have (an unknown key version, or no M1 key). */
export class UnknownCardKeyError extends Error {}
/** M1 cards: the master key their sector keys are derived from (by UID). */
export type MasterKeyPurpose = KeyPurpose | 'M1';
export type CardAlgorithm = '3DES' | 'SM4';

/** Which card key: the card company's master key for a purpose and version, diversified by the card's ASN. */
export interface CardKeyRequest {
  cardCompanyId: string;
  purpose: KeyPurpose;
  keyVersion: number;
  asn: Buffer;
}

/**
 * Where card keys live (DESIGN.md §6). The host never keeps a card's own key: it diversifies the
 * card company's master key by the card's ASN when a session needs it. A PKCS#11 HSM can stand in
 * for the software store below behind the same interface. The card session engine asks for MACs,
 * not keys (`sessionMacs`, `tac`), so a store that can compute them inside its HSM never hands a
 * card key or a session key to the process (docs/cardcrypto.md, "Keys in an HSM").
 */
export interface KeyStore {
  /** Key B of an M1 card's sector, derived from the card company's M1 master key and the card's UID. */
  m1SectorKey(req: { cardCompanyId: string; keyVersion: number; uid: Buffer; sector: number }): Promise<Buffer>;
  /** The card's key itself: only where a computation has no way to stay in the store (offline TAC batches). */
  cardKey(req: CardKeyRequest): Promise<{ key: Buffer; algorithm: CardAlgorithm }>;
  /**
   * MAC1 / MAC2 (4 bytes each) over `messages` under the session key the card's LOAD or PURCHASE key
   * derives from `sessionInput` (cardcrypto's `loadSessionInput` / `purchaseSessionInput`).
   */
  sessionMacs(req: CardKeyRequest & { purpose: 'LOAD' | 'PURCHASE'; sessionInput: Buffer; messages: Buffer[] }): Promise<{ algorithm: CardAlgorithm; macs: Buffer[] }>;
  /** The TAC (4 bytes) over `message` (cardcrypto's `loadTacMessage` / `purchaseTacMessage`) under the card's DTK. */
  tac(req: Omit<CardKeyRequest, 'purpose'> & { message: Buffer }): Promise<{ algorithm: CardAlgorithm; tac: Buffer }>;
  /** The same key for many cards of one card company (an offline batch): the master key is asked for once. */
  cardKeys(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asns: Buffer[] }): Promise<{ key: Buffer; algorithm: CardAlgorithm }[]>;
}

export const algorithmIdOf = (algorithm: CardAlgorithm): AlgorithmId => (algorithm === 'SM4' ? ALG_SM4 : ALG_3DES);

/** The name a master key goes by: the sealing context in software, the object's label in an HSM. */
export const masterKeyLabel = (companyId: string, purpose: MasterKeyPurpose, version: number) => `card-master-key:${companyId}:${purpose}:${version}`;
const context = masterKeyLabel;

/** A master key version in use: activated, not retired (docs/cardcrypto.md, "Key lifecycle"). */
export const ACTIVE_MASTER_KEY = `activated_at is not null and activated_at <= now() and retired_at is null`;

export interface MasterKeyRow {
  sealed_key: string | null;
  algorithm: CardAlgorithm;
  stored_in: 'SOFTWARE' | 'PKCS11';
}

/**
 * The active master key row, or UnknownCardKeyError (none, not yet active, or retired). With
 * `reads` (the card-session requests' cache, readers/session/session-reads.ts), an active row is
 * read once per process: activating, retiring or adding a version writes card_master_key, whose
 * notice empties every process's cache at commit. A row not active yet (or missing) is not kept:
 * it is asked again next time, so a key becomes usable when its activation time comes.
 */
export async function activeMasterKeyRow(em: EntityManager, cardCompanyId: string, purpose: MasterKeyPurpose, keyVersion: number, reads?: NoticedCache): Promise<MasterKeyRow> {
  const read = async () => {
    const [row] = await em.execute<MasterKeyRow[]>(
      `select sealed_key, algorithm, stored_in from card_master_key where card_company_id = ? and purpose = ? and key_version = ? and ${ACTIVE_MASTER_KEY}`,
      [cardCompanyId, purpose, keyVersion],
    );
    if (!row) throw new UnknownCardKeyError(`no active ${purpose} master key version ${keyVersion} for this card company`);
    return { value: row, keep: true };
  };
  return reads ? reads.get(`master-key:${cardCompanyId}:${purpose}:${keyVersion}`, read) : (await read()).value;
}

/** More master keys than any installation holds (3 purposes × a few versions × its card companies). */
const MAX_UNSEALED = 1_000;
/**
 * Master keys as unsealed, by key-encryption key, name and sealed bytes: unsealing is the cost
 * saved, not the row's read, since activation and retirement change the row (whether a key may be
 * used is asked every time). A card session needs one in two of its three messages.
 */
const unsealedMasters = new Map<string, { key: Buffer; algorithm: CardAlgorithm }>();
const kekIds = new WeakMap<Buffer, string>();
function kekId(kek: Buffer): string {
  let id = kekIds.get(kek);
  if (!id) kekIds.set(kek, (id = createHash('sha256').update(kek).digest('hex')));
  return id;
}

/** Master keys sealed with the key-encryption key in `card_master_key`. */
export class SoftwareKeyStore implements KeyStore {
  constructor(
    protected readonly em: EntityManager,
    private readonly kek: Buffer,
    /** Active master key rows kept between requests (activeMasterKeyRow); none: read every time. */
    protected readonly reads?: NoticedCache,
  ) {}

  private async master(cardCompanyId: string, purpose: MasterKeyPurpose, keyVersion: number) {
    // A key retired or not yet active is refused at once: the row is read every time, or kept only
    // until its lifecycle changes it (the change notice). The unsealing is remembered by the sealed bytes.
    const row = await activeMasterKeyRow(this.em, cardCompanyId, purpose, keyVersion, this.reads);
    if (row.stored_in !== 'SOFTWARE' || !row.sealed_key) throw new UnknownCardKeyError(`the ${purpose} master key version ${keyVersion} is kept in a PKCS#11 HSM, and this process has none configured`);
    const name = context(cardCompanyId, purpose, keyVersion);
    const cacheKey = `${kekId(this.kek)}:${name}:${row.sealed_key}`;
    const known = unsealedMasters.get(cacheKey);
    if (known) return known;
    const master = { key: unseal(this.kek, name, row.sealed_key), algorithm: row.algorithm };
    if (unsealedMasters.size >= MAX_UNSEALED) unsealedMasters.delete(unsealedMasters.keys().next().value!);
    unsealedMasters.set(cacheKey, master);
    return master;
  }

  async m1SectorKey(req: { cardCompanyId: string; keyVersion: number; uid: Buffer; sector: number }) {
    const { key } = await this.master(req.cardCompanyId, 'M1', req.keyVersion);
    return m1SectorKeyB(key, req.uid, req.sector);
  }

  async cardKey(req: CardKeyRequest) {
    const { key: master, algorithm } = await this.master(req.cardCompanyId, req.purpose, req.keyVersion);
    return { key: diversifyKey(algorithmIdOf(algorithm), master, req.asn), algorithm };
  }

  // Both in software, on whatever cardKey gives (the sealed master here; the HSM's diversification in
  // Pkcs11KeyStore where the token cannot derive session keys). Card and session keys are wiped after use.
  async sessionMacs(req: CardKeyRequest & { sessionInput: Buffer; messages: Buffer[] }) {
    const { key, algorithm } = await this.cardKey(req);
    const id = algorithmIdOf(algorithm);
    const sessionKey = sessionKeyFrom(id, key, req.sessionInput);
    try {
      return { algorithm, macs: req.messages.map((m) => sessionMac(id, sessionKey, m)) };
    } finally {
      key.fill(0);
      sessionKey.fill(0);
    }
  }

  async tac(req: Omit<CardKeyRequest, 'purpose'> & { message: Buffer }) {
    const { key, algorithm } = await this.cardKey({ ...req, purpose: 'TAC' });
    try {
      return { algorithm, tac: tacOver(algorithmIdOf(algorithm), key, req.message) };
    } finally {
      key.fill(0);
    }
  }

  async cardKeys(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asns: Buffer[] }) {
    const { key: master, algorithm } = await this.master(req.cardCompanyId, req.purpose, req.keyVersion);
    // One cipher for all the cards (diversifyKeys), not two per card: an offline batch's (issue 23).
    return diversifyKeys(algorithmIdOf(algorithm), master, req.asns).map((key) => ({ key, algorithm }));
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

/** Stores a card company's M1 master key (3DES, 16 bytes): its cards' sector keys derive from it. */
export async function storeM1MasterKey(em: EntityManager, kek: Buffer, input: { cardCompanyId: string; keyVersion: number; key?: Buffer }): Promise<Buffer> {
  const key = input.key ?? randomBytes(16);
  await em.execute(`insert into card_master_key (card_company_id, purpose, key_version, algorithm, sealed_key) values (?, 'M1', ?, '3DES', ?)`, [
    input.cardCompanyId,
    input.keyVersion,
    seal(kek, context(input.cardCompanyId, 'M1', input.keyVersion), key),
  ]);
  return key;
}

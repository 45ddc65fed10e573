import type { EntityManager } from '@mikro-orm/postgresql';
import { diversificationData } from '../../cardcrypto/diversify.js';
import { notBytes } from '../../cardcrypto/bytes.js';
import { activeMasterKeyRow, type KeyPurpose, type KeyStore, masterKeyLabel, type MasterKeyPurpose, SoftwareKeyStore, UnknownCardKeyError } from '../key-store.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/**
 * The KeyStore with 3DES master keys inside a PKCS#11 HSM (DESIGN.md §6): a row of
 * `card_master_key` stored in `PKCS11` names an object of the token by its label; the key itself
 * never leaves the token. Diversification by the card's ASN (or M1 UID) is a 3DES-ECB encryption
 * under the master key, done by the token. SM4 master keys, which SoftHSM2 cannot hold, and keys
 * written before the HSM was configured are the software store's (`stored_in = SOFTWARE`).
 */
export class Pkcs11KeyStore extends SoftwareKeyStore implements KeyStore {
  constructor(
    em: EntityManager,
    kek: Buffer,
    private readonly token: Pkcs11Token,
  ) {
    super(em, kek);
  }

  /** The token's handle of an active master key kept in it, or undefined when the key is the software store's. */
  private async inToken(cardCompanyId: string, purpose: MasterKeyPurpose, keyVersion: number) {
    const row = await activeMasterKeyRow(this.em, cardCompanyId, purpose, keyVersion);
    if (row.stored_in !== 'PKCS11') return undefined;
    const handle = this.token.find(masterKeyLabel(cardCompanyId, purpose, keyVersion));
    if (!handle) throw new UnknownCardKeyError(`the ${purpose} master key version ${keyVersion} is registered but missing from the HSM token`);
    return handle;
  }

  override async cardKey(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asn: Buffer }) {
    const master = await this.inToken(req.cardCompanyId, req.purpose, req.keyVersion);
    if (!master) return super.cardKey(req);
    // diversify.ts for 3DES: E(MK, d) || E(MK, ~d), both halves in one ECB call inside the token.
    const d = diversificationData(req.asn);
    return { key: this.token.encryptEcb(master, Buffer.concat([d, notBytes(d)])), algorithm: '3DES' as const };
  }

  override async cardKeys(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asns: Buffer[] }) {
    const master = await this.inToken(req.cardCompanyId, req.purpose, req.keyVersion);
    if (!master) return super.cardKeys(req);
    return req.asns.map((asn) => {
      const d = diversificationData(asn);
      return { key: this.token.encryptEcb(master, Buffer.concat([d, notBytes(d)])), algorithm: '3DES' as const };
    });
  }

  override async m1SectorKey(req: { cardCompanyId: string; keyVersion: number; uid: Buffer; sector: number }) {
    const master = await this.inToken(req.cardCompanyId, 'M1', req.keyVersion);
    if (!master) return super.m1SectorKey(req);
    if (req.uid.length !== 4) throw new RangeError('an M1 UID is 4 bytes');
    // m1-script.ts m1SectorKeyB: the left 6 bytes of 3DES-ECB(M1 master, UID || sector || 0B || 0000).
    return this.token.encryptEcb(master, Buffer.concat([req.uid, Buffer.from([req.sector, 0x0b, 0x00, 0x00])])).subarray(0, 6);
  }
}

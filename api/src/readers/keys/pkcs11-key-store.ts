import type { EntityManager } from '@mikro-orm/postgresql';
import type { NoticedCache } from '../../db/noticed-cache.js';
import { notBytes, requireLength } from '../../cardcrypto/bytes.js';
import { diversificationData } from '../../cardcrypto/diversify.js';
import { sessionKeyFrom, sessionMac } from '../../cardcrypto/epurse.js';
import { ALG_3DES } from '../../cardcrypto/algorithm.js';
import { mac4, padIso9797M2 } from '../../cardcrypto/mac.js';
import { activeMasterKeyRow, type CardKeyRequest, type KeyPurpose, type KeyStore, masterKeyLabel, type MasterKeyPurpose, SoftwareKeyStore, UnknownCardKeyError } from '../key-store.js';
import type { Pkcs11Token } from './pkcs11-token.js';

/** A caller asked for a card's load or purchase key, which the HSM store computes with inside the token and never hands out. */
export class CardKeyStaysInHsmError extends Error {
  override readonly name = 'CardKeyStaysInHsmError';
}

type Handle = Buffer;

/**
 * The KeyStore with 3DES master keys inside a PKCS#11 HSM (DESIGN.md §6): a row of
 * `card_master_key` stored in `PKCS11` names an object of the token by its label; the key itself
 * never leaves the token. MAC1 and MAC2 are computed inside it too: the card's load or purchase key
 * and its session key are derived there as session objects, used, and destroyed (`sessionMacs`).
 * The TAC is not: its key is DTK_left XOR DTK_right, and the token has no mechanism that XORs two
 * keys, so the card's DTK is diversified by the token and the TAC computed in software
 * (docs/cardcrypto.md, "Keys in an HSM"). SM4 master keys, which SoftHSM2 cannot hold, and keys
 * written before the HSM was configured are the software store's (`stored_in = SOFTWARE`).
 */
export class Pkcs11KeyStore extends SoftwareKeyStore implements KeyStore {
  constructor(
    em: EntityManager,
    kek: Buffer,
    private readonly token: Pkcs11Token,
    reads?: NoticedCache,
  ) {
    super(em, kek, reads);
  }

  /** The token's handle of an active master key kept in it, or undefined when the key is the software store's. */
  private async inToken(cardCompanyId: string, purpose: MasterKeyPurpose, keyVersion: number) {
    const row = await activeMasterKeyRow(this.em, cardCompanyId, purpose, keyVersion, this.reads);
    if (row.stored_in !== 'PKCS11') return undefined;
    const handle = this.token.find(masterKeyLabel(cardCompanyId, purpose, keyVersion));
    if (!handle) throw new UnknownCardKeyError(`the ${purpose} master key version ${keyVersion} is registered but missing from the HSM token`);
    return handle;
  }

  /** diversify.ts for 3DES, E(MK, d) || E(MK, ~d), both halves in one ECB call inside the token; the result comes out. */
  private diversifiedOut(master: Handle, asn: Buffer): Buffer {
    const d = diversificationData(asn);
    return this.token.encryptEcb(master, Buffer.concat([d, notBytes(d)]));
  }

  /** Only the TAC's card key (DTK) leaves the token: load and purchase keys are used inside it (`sessionMacs`). */
  override async cardKey(req: CardKeyRequest) {
    const master = await this.inToken(req.cardCompanyId, req.purpose, req.keyVersion);
    if (!master) return super.cardKey(req);
    refuseUnlessTac(req.purpose);
    return { key: this.diversifiedOut(master, req.asn), algorithm: '3DES' as const };
  }

  override async cardKeys(req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asns: Buffer[] }) {
    const master = await this.inToken(req.cardCompanyId, req.purpose, req.keyVersion);
    if (!master) return super.cardKeys(req);
    refuseUnlessTac(req.purpose);
    return req.asns.map((asn) => ({ key: this.diversifiedOut(master, asn), algorithm: '3DES' as const }));
  }

  override async sessionMacs(req: CardKeyRequest & { purpose: 'LOAD' | 'PURCHASE'; sessionInput: Buffer; messages: Buffer[] }) {
    const master = await this.inToken(req.cardCompanyId, req.purpose, req.keyVersion);
    if (!master) return super.sessionMacs(req);
    requireLength('3DES session input', req.sessionInput, 8);
    if (!this.token.canDerive(master)) return this.sessionMacsOutside(master, req);
    // Nothing is awaited from here on: the token's session is not shared with another request mid-chain.
    const d = diversificationData(req.asn);
    const cardKey = this.token.deriveDes2(master, Buffer.concat([d, notBytes(d)]), 'derive');
    try {
      // PBOC's session key is single DES, 3DES-ECB(card key, input): derived over input || input it
      // is K || K, a DES2 key under which 3DES is single DES, so CKM_DES3_CBC gives desCbcMac.
      const sessionKey = this.token.deriveDes2(cardKey, Buffer.concat([req.sessionInput, req.sessionInput]), 'encrypt');
      try {
        return { algorithm: '3DES' as const, macs: req.messages.map((m) => mac4(this.token.cbcMacBlock(sessionKey, padIso9797M2(m)))) };
      } finally {
        this.token.destroy(sessionKey);
      }
    } finally {
      this.token.destroy(cardKey);
    }
  }

  /**
   * A master key imported before derivation moved into the token has no CKA_DERIVE: its card key is
   * diversified by the token and the session computed in software, as before. Re-import it as a
   * new version to keep the session inside (docs/cardcrypto.md, "Keys in an HSM").
   */
  private sessionMacsOutside(master: Handle, req: { asn: Buffer; sessionInput: Buffer; messages: Buffer[] }) {
    const cardKey = this.diversifiedOut(master, req.asn);
    const sessionKey = sessionKeyFrom(ALG_3DES, cardKey, req.sessionInput);
    try {
      return { algorithm: '3DES' as const, macs: req.messages.map((m) => sessionMac(ALG_3DES, sessionKey, m)) };
    } finally {
      cardKey.fill(0);
      sessionKey.fill(0);
    }
  }

  override async m1SectorKey(req: { cardCompanyId: string; keyVersion: number; uid: Buffer; sector: number }) {
    const master = await this.inToken(req.cardCompanyId, 'M1', req.keyVersion);
    if (!master) return super.m1SectorKey(req);
    if (req.uid.length !== 4) throw new RangeError('an M1 UID is 4 bytes');
    // m1-script.ts m1SectorKeyB: the left 6 bytes of 3DES-ECB(M1 master, UID || sector || 0B || 0000).
    return this.token.encryptEcb(master, Buffer.concat([req.uid, Buffer.from([req.sector, 0x0b, 0x00, 0x00])])).subarray(0, 6);
  }
}

function refuseUnlessTac(purpose: KeyPurpose): void {
  if (purpose !== 'TAC') throw new CardKeyStaysInHsmError(`a card's ${purpose} key is used inside the HSM (sessionMacs) and never handed out`);
}

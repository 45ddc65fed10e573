/**
 * Card company master keys imported under the key-transport key, into SoftHSM2 (PKCS#11) and into the
 * sealed software store, then used: both stores give the same card keys, hence the same MAC1, MAC2
 * and TAC, on the reference's vectors; the key inside the HSM cannot be read out; a wrong key check
 * value, a retired or not yet active version are refused. Needs softhsm2 (.ci/run installs it).
 */
import { constants, createCipheriv, publicEncrypt } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALG_3DES } from '../../cardcrypto/algorithm.js';
import { loadMac1, loadMac2, loadSessionKey, loadTac, purchaseMac1, purchaseMac2, purchaseSessionKey, purchaseTac, tacKey, TransactionType } from '../../cardcrypto/epurse.js';
import { createCity } from '../../tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../../test/support/database.js';
import { softHsmToken, type TestToken } from '../../../test/support/softhsm.js';
import { TEST_KEK } from '../../../test/support/server.js';
import { type KeyPurpose, masterKeyLabel, SoftwareKeyStore, UnknownCardKeyError } from '../key-store.js';
import { m1SectorKeyB } from '../m1/m1-script.js';
import { changeMasterKeyStatus, importMasterKey, keyCheckValue, keyTransportPublicKey, listMasterKeys, MasterKeyRefusal, type KeyVault } from './master-keys.service.js';
import { Pkcs11KeyStore } from './pkcs11-key-store.js';
import { Pkcs11Token } from './pkcs11-token.js';

const kek = Buffer.from(TEST_KEK, 'base64url');
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const HEX = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
/** CARD-PROTOCOL.md §7's key, here as the card company's master key for every purpose. */
const MASTER = hex('11223344556677888877665544332211');
const TERMINAL = hex('001122334455');
const ASNS = ['44010000000000012345', '58100000000000000001', '0000000000000000FFFF'].map(hex);

/** Written apart from cardcrypto: E(MK, d) || E(MK, ~d) with node:crypto, d the ASN's last 8 bytes. */
function referenceDiversify(master: Buffer, asn: Buffer): Buffer {
  const d = asn.subarray(asn.length - 8);
  const c = createCipheriv('des-ede-ecb', master, null).setAutoPadding(false);
  return Buffer.concat([c.update(Buffer.concat([d, Buffer.from(d.map((b) => ~b & 0xff))])), c.final()]);
}

let db: TestDatabase;
let hsm: TestToken;
let token: Pkcs11Token;
let hsmCompany: string;
let softwareCompany: string;
let hsmVault: KeyVault;
const softwareVault: KeyVault = { kek };

async function wrapFor(vault: KeyVault, key: Buffer): Promise<Buffer> {
  const { publicKeyPem } = await keyTransportPublicKey(db.orm.em.fork(), vault);
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key);
}

async function importAndActivate(vault: KeyVault, cardCompanyId: string, purpose: KeyPurpose | 'M1', key: Buffer, keyVersion = 1, algorithm: '3DES' | 'SM4' = '3DES') {
  const em = db.orm.em.fork();
  const imported = await importMasterKey(em, vault, { cardCompanyId, purpose, keyVersion, algorithm, wrappedKey: await wrapFor(vault, key), keyCheckValue: keyCheckValue(algorithm, key) });
  await changeMasterKeyStatus(em, { cardCompanyId, purpose, keyVersion, to: 'ACTIVE' });
  return imported;
}

beforeAll(async () => {
  hsm = softHsmToken();
  token = Pkcs11Token.open(hsm.config);
  hsmVault = { kek, token };
  db = await freshDatabase();
  const em = db.orm.em.fork();
  hsmCompany = (await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' })).cardCompany.id;
  softwareCompany = (await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Shenzhen Tong' })).cardCompany.id;
  for (const purpose of ['LOAD', 'PURCHASE', 'TAC', 'M1'] as const) {
    await importAndActivate(hsmVault, hsmCompany, purpose, MASTER);
    await importAndActivate(softwareVault, softwareCompany, purpose, MASTER);
  }
});

afterAll(async () => {
  token?.close();
  await db?.close();
  hsm?.remove();
});

const stores = () => ({ hsm: new Pkcs11KeyStore(db.orm.em.fork(), kek, token), software: new SoftwareKeyStore(db.orm.em.fork(), kek) });

describe('master keys imported into SoftHSM2 and into the software store', () => {
  it('are where they were sent: the 3DES keys in the token, the software ones sealed, both active with the KCV the card company gave', async () => {
    const kcv = keyCheckValue('3DES', MASTER);
    expect(await listMasterKeys(db.orm.em.fork(), hsmCompany)).toEqual(
      ['LOAD', 'M1', 'PURCHASE', 'TAC'].map((purpose) => expect.objectContaining({ purpose, keyVersion: 1, storedIn: 'PKCS11', status: 'ACTIVE', keyCheckValue: kcv })),
    );
    expect((await listMasterKeys(db.orm.em.fork(), softwareCompany)).every((k) => k.storedIn === 'SOFTWARE' && k.keyCheckValue === kcv)).toBe(true);
    const [row] = await db.orm.em.fork().execute<{ sealed_key: string | null }[]>(`select sealed_key from card_master_key where card_company_id = ? and purpose = 'LOAD'`, [hsmCompany]);
    expect(row!.sealed_key).toBeNull();
  });

  it('the HSM diversifies to the same card keys as the software path and an independent computation', async () => {
    const { hsm: inHsm, software } = stores();
    for (const asn of ASNS) {
      for (const purpose of ['LOAD', 'PURCHASE', 'TAC'] as const) {
        const a = await inHsm.cardKey({ cardCompanyId: hsmCompany, purpose, keyVersion: 1, asn });
        const b = await software.cardKey({ cardCompanyId: softwareCompany, purpose, keyVersion: 1, asn });
        expect(a).toEqual({ key: b.key, algorithm: '3DES' });
        expect(HEX(a.key)).toBe(HEX(referenceDiversify(MASTER, asn)));
      }
      const uid = asn.subarray(0, 4);
      expect(await inHsm.m1SectorKey({ cardCompanyId: hsmCompany, keyVersion: 1, uid, sector: 1 })).toEqual(m1SectorKeyB(MASTER, uid, 1));
    }
  });

  it('MAC1, MAC2 and the TAC of a load and a purchase agree between the stores on the vectors’ data (L1, P1 of CARD-PROTOCOL.md §7)', async () => {
    const { hsm: inHsm, software } = stores();
    const macs = async (store: SoftwareKeyStore, cardCompanyId: string, asn: Buffer) => {
      const key = async (purpose: KeyPurpose) => (await store.cardKey({ cardCompanyId, purpose, keyVersion: 1, asn })).key;
      const seslk = loadSessionKey({ algorithm: ALG_3DES, loadKey: await key('LOAD'), random: hex('11223344'), onlineCounter: 0 });
      const sespk = purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: await key('PURCHASE'), random: hex('11223344'), offlineCounter: 0, terminalSerial: 1 });
      const dtk = await key('TAC');
      const when = { terminalId: TERMINAL, date: '20111221', time: '214822' };
      return [
        loadMac1({ algorithm: ALG_3DES, sessionKey: seslk, oldBalance: 0, amount: 0x1000, transactionType: TransactionType.EDEPOSIT_LOAD, terminalId: TERMINAL }),
        loadMac2({ algorithm: ALG_3DES, sessionKey: seslk, amount: 0x1000, transactionType: TransactionType.EDEPOSIT_LOAD, ...when }),
        loadTac({ algorithm: ALG_3DES, tacKey: dtk, newBalance: 0x1000, onlineCounter: 0, amount: 0x1000, ...when }),
        purchaseMac1({ algorithm: ALG_3DES, sessionKey: sespk, amount: 0x100, ...when }),
        purchaseMac2({ algorithm: ALG_3DES, sessionKey: sespk, amount: 0x100 }),
        purchaseTac({ algorithm: ALG_3DES, tacKey: dtk, amount: 0x100, terminalSerial: 1, ...when }),
        tacKey(ALG_3DES, dtk),
      ].map(HEX);
    };
    for (const asn of ASNS) expect(await macs(inHsm, hsmCompany, asn)).toEqual(await macs(software, softwareCompany, asn));
  });

  it('the master key inside the HSM cannot be read out of it, even by a process holding the PIN', () => {
    const handle = token.find(masterKeyLabel(hsmCompany, 'LOAD', 1))!;
    expect(handle).toBeDefined();
    expect(token.extractable(handle)).toBe(false);
    expect(() => token.readValue(handle)).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
  });
});

describe('import refusals and the key lifecycle', () => {
  it('a key check value that does not match is refused, and leaves no row and no HSM object behind', async () => {
    const em = db.orm.em.fork();
    const other = Buffer.alloc(16, 0x42);
    for (const vault of [hsmVault, softwareVault]) {
      const attempt = importMasterKey(em, vault, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 9, algorithm: '3DES', wrappedKey: await wrapFor(vault, other), keyCheckValue: keyCheckValue('3DES', MASTER) });
      await expect(attempt).rejects.toMatchObject({ code: 'KEY_CHECK_VALUE_MISMATCH' });
    }
    expect((await listMasterKeys(em, hsmCompany)).some((k) => k.keyVersion === 9)).toBe(false);
    expect(token.find(masterKeyLabel(hsmCompany, 'LOAD', 9))).toBeUndefined();
  });

  it('a blob not wrapped under the transport key, a taken version, bad fields: refused with a code naming the field', async () => {
    const em = db.orm.em.fork();
    const base: { cardCompanyId: string; purpose: string; keyVersion: number; algorithm: string; wrappedKey: Buffer; keyCheckValue: string } = { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 3, algorithm: '3DES', wrappedKey: Buffer.alloc(256, 7), keyCheckValue: keyCheckValue('3DES', MASTER) };
    const cases: [Partial<typeof base>, string, string][] = [
      [{}, 'KEY_NOT_UNWRAPPED', 'wrappedKey'],
      [{ keyVersion: 1, wrappedKey: await wrapFor(hsmVault, MASTER) }, 'KEY_VERSION_TAKEN', 'keyVersion'],
      [{ purpose: 'OTHER' }, 'INVALID_INPUT', 'purpose'],
      [{ keyVersion: 256 }, 'INVALID_INPUT', 'keyVersion'],
      [{ algorithm: 'AES' }, 'INVALID_INPUT', 'algorithm'],
      [{ keyCheckValue: 'XYZ' }, 'INVALID_INPUT', 'keyCheckValue'],
      [{ wrappedKey: Buffer.alloc(16) }, 'INVALID_INPUT', 'wrappedKey'],
    ];
    for (const [change, code, field] of cases) {
      const refusal = await importMasterKey(em, hsmVault, { ...base, ...change }).catch((e: unknown) => e);
      expect(refusal, JSON.stringify(change)).toBeInstanceOf(MasterKeyRefusal);
      expect(refusal).toMatchObject({ code, field });
    }
  });

  it('a new version is PENDING (no session may use it) until activated; a retired one serves no session', async () => {
    const em = db.orm.em.fork();
    const next = Buffer.from('0123456789ABCDEFFEDCBA9876543210', 'hex');
    const imported = await importMasterKey(em, hsmVault, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, algorithm: '3DES', wrappedKey: await wrapFor(hsmVault, next), keyCheckValue: keyCheckValue('3DES', next) });
    expect(imported).toMatchObject({ status: 'PENDING', storedIn: 'PKCS11', keyCheckValue: keyCheckValue('3DES', next) });
    const store = new Pkcs11KeyStore(em, kek, token);
    const use = () => store.cardKey({ cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, asn: ASNS[0]! });
    await expect(use()).rejects.toBeInstanceOf(UnknownCardKeyError);
    await changeMasterKeyStatus(em, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, to: 'ACTIVE' });
    expect((await use()).key).toEqual(referenceDiversify(next, ASNS[0]!));
    await expect(changeMasterKeyStatus(em, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, to: 'ACTIVE' })).rejects.toMatchObject({ code: 'INVALID_KEY_TRANSITION' });
    await changeMasterKeyStatus(em, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, to: 'RETIRED' });
    await expect(use()).rejects.toBeInstanceOf(UnknownCardKeyError);
    await expect(changeMasterKeyStatus(em, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 7, to: 'ACTIVE' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('an SM4 master key sent to an HSM-backed platform stays in software (SoftHSM2 has no SM4), sealed, and works', async () => {
    const sm4 = Buffer.from('00112233445566778899AABBCCDDEEFF', 'hex');
    const imported = await importAndActivate(hsmVault, softwareCompany, 'LOAD', sm4, 5, 'SM4');
    expect(imported).toMatchObject({ storedIn: 'SOFTWARE', algorithm: 'SM4' });
    const { hsm: inHsm, software } = stores();
    const a = await inHsm.cardKey({ cardCompanyId: softwareCompany, purpose: 'LOAD', keyVersion: 5, asn: ASNS[1]! });
    expect(a).toEqual(await software.cardKey({ cardCompanyId: softwareCompany, purpose: 'LOAD', keyVersion: 5, asn: ASNS[1]! }));
    expect(a.algorithm).toBe('SM4');
  });
});

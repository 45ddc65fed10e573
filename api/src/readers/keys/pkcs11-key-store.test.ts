/**
 * Card company master keys imported under the key-transport key, into SoftHSM2 (PKCS#11) and into the
 * sealed software store, then used: both stores give the same MAC1, MAC2 and TAC on the reference's
 * vectors; in the HSM store the card's load and purchase keys and the session keys are derived inside
 * the token as session objects that cannot be read and do not pile up, and no software diversification
 * or session-key function runs; the key inside the HSM cannot be read out; a wrong key check value, a
 * retired or not yet active version are refused. Needs softhsm2 (.ci/run installs it).
 */
import { constants, createCipheriv, publicEncrypt } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Pkcs11js from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ALG_3DES } from '../../cardcrypto/algorithm.js';
import * as diversify from '../../cardcrypto/diversify.js';
import * as epurse from '../../cardcrypto/epurse.js';
import { mac4, padIso9797M2 } from '../../cardcrypto/mac.js';
import { createCity } from '../../tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from '../../../test/support/database.js';
import { softHsmToken, type TestToken } from '../../../test/support/softhsm.js';
import { TEST_KEK } from '../../../test/support/server.js';
import { type KeyPurpose, type KeyStore, masterKeyLabel, SoftwareKeyStore, UnknownCardKeyError } from '../key-store.js';
import { m1SectorKeyB } from '../m1/m1-script.js';
import { changeMasterKeyStatus, importMasterKey, keyCheckValue, keyTransportPublicKey, listMasterKeys, MasterKeyRefusal, type KeyVault } from './master-keys.service.js';
import { CardKeyStaysInHsmError, Pkcs11KeyStore } from './pkcs11-key-store.js';
import { Pkcs11Token } from './pkcs11-token.js';

// The software diversification and session functions, watched: the HSM store's MAC path must not call them.
vi.mock('../../cardcrypto/diversify.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../cardcrypto/diversify.js')>();
  return { ...real, diversifyKey: vi.fn(real.diversifyKey) };
});
vi.mock('../../cardcrypto/epurse.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../cardcrypto/epurse.js')>();
  return { ...real, sessionKeyFrom: vi.fn(real.sessionKeyFrom), sessionMac: vi.fn(real.sessionMac), tacOver: vi.fn(real.tacOver) };
});
const { loadMac1, loadMac1Message, loadMac2, loadMac2Message, loadSessionInput, loadSessionKey, loadTac, loadTacMessage, purchaseMac1, purchaseMac1Message, purchaseMac2, purchaseMac2Message, purchaseSessionInput, purchaseSessionKey, purchaseTac, purchaseTacMessage, TransactionType } = epurse;

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

const RANDOM = hex('11223344');
const L1 = { oldBalance: 0, amount: 0x1000, newBalance: 0x1000, onlineCounter: 0, transactionType: TransactionType.EDEPOSIT_LOAD, terminalId: TERMINAL, date: '20111221', time: '214822' };
const P1 = { amount: 0x1000, offlineCounter: 0, terminalSerial: 1, terminalId: TERMINAL, date: '20120229', time: '135100' };

/** Through a store, as the card-session engine asks: load MAC1, MAC2, TAC; purchase MAC1, MAC2, TAC. */
async function everyMac(store: KeyStore, cardCompanyId: string, asn: Buffer): Promise<Buffer[]> {
  const load = await store.sessionMacs({ cardCompanyId, purpose: 'LOAD', keyVersion: 1, asn, sessionInput: loadSessionInput({ random: RANDOM, onlineCounter: L1.onlineCounter }), messages: [loadMac1Message(L1), loadMac2Message(L1)] });
  const purchase = await store.sessionMacs({ cardCompanyId, purpose: 'PURCHASE', keyVersion: 1, asn, sessionInput: purchaseSessionInput({ random: RANDOM, ...P1 }), messages: [purchaseMac1Message(P1), purchaseMac2Message(P1)] });
  const loadTacAnswer = await store.tac({ cardCompanyId, keyVersion: 1, asn, message: loadTacMessage(L1) });
  const purchaseTacAnswer = await store.tac({ cardCompanyId, keyVersion: 1, asn, message: purchaseTacMessage(P1) });
  for (const answer of [load, purchase, loadTacAnswer, purchaseTacAnswer]) expect(answer.algorithm).toBe('3DES');
  return [...load.macs, loadTacAnswer.tac, ...purchase.macs, purchaseTacAnswer.tac];
}

const sessionMacsOf = (store: KeyStore, cardCompanyId: string, asn: Buffer) =>
  store.sessionMacs({ cardCompanyId, purpose: 'LOAD', keyVersion: 1, asn, sessionInput: loadSessionInput({ random: RANDOM, onlineCounter: 7 }), messages: [loadMac1Message(L1), loadMac2Message(L1)] });

/** The same MACs by cardcrypto on card keys diversified apart from it (referenceDiversify). */
function referenceMacs(asn: Buffer): Buffer[] {
  const card = referenceDiversify(MASTER, asn);
  const seslk = loadSessionKey({ algorithm: ALG_3DES, loadKey: card, random: RANDOM, onlineCounter: L1.onlineCounter });
  const sespk = purchaseSessionKey({ algorithm: ALG_3DES, purchaseKey: card, random: RANDOM, ...P1 });
  return [
    loadMac1({ algorithm: ALG_3DES, sessionKey: seslk, ...L1 }),
    loadMac2({ algorithm: ALG_3DES, sessionKey: seslk, ...L1 }),
    loadTac({ algorithm: ALG_3DES, tacKey: card, ...L1 }),
    purchaseMac1({ algorithm: ALG_3DES, sessionKey: sespk, ...P1 }),
    purchaseMac2({ algorithm: ALG_3DES, sessionKey: sespk, ...P1 }),
    purchaseTac({ algorithm: ALG_3DES, tacKey: card, ...P1 }),
  ];
}

/** Sets a boolean attribute of a token object with a session of the test's own (what a key custodian's tool would do). */
function setAttribute(label: string, attribute: 'CKA_DERIVE', value: boolean): void {
  const k = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11js;
  const p11 = new k.PKCS11();
  p11.load(hsm.config.module);
  try {
    p11.C_Initialize();
  } catch (err) {
    if (!/CKR_CRYPTOKI_ALREADY_INITIALIZED/.test((err as Error).message)) throw err;
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === hsm.config.tokenLabel)!;
  const session = p11.C_OpenSession(slot, k.CKF_SERIAL_SESSION | k.CKF_RW_SESSION);
  try {
    p11.C_FindObjectsInit(session, [{ type: k.CKA_LABEL, value: label }]);
    const handle = p11.C_FindObjects(session)!;
    p11.C_FindObjectsFinal(session);
    p11.C_SetAttributeValue(session, handle, [{ type: k[attribute], value }]);
  } finally {
    p11.C_CloseSession(session);
  }
}

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

  it('the HSM hands out the card’s TAC key (DTK) as the software path and an independent computation do, and never its load or purchase key', async () => {
    const { hsm: inHsm, software } = stores();
    for (const asn of ASNS) {
      const a = await inHsm.cardKey({ cardCompanyId: hsmCompany, purpose: 'TAC', keyVersion: 1, asn });
      expect(a).toEqual(await software.cardKey({ cardCompanyId: softwareCompany, purpose: 'TAC', keyVersion: 1, asn }));
      expect(HEX(a.key)).toBe(HEX(referenceDiversify(MASTER, asn)));
      expect(await inHsm.cardKeys({ cardCompanyId: hsmCompany, purpose: 'TAC', keyVersion: 1, asns: [asn] })).toEqual([a]);
      for (const purpose of ['LOAD', 'PURCHASE'] as const) {
        await expect(inHsm.cardKey({ cardCompanyId: hsmCompany, purpose, keyVersion: 1, asn })).rejects.toBeInstanceOf(CardKeyStaysInHsmError);
        await expect(inHsm.cardKeys({ cardCompanyId: hsmCompany, purpose, keyVersion: 1, asns: [asn] })).rejects.toBeInstanceOf(CardKeyStaysInHsmError);
      }
      const uid = asn.subarray(0, 4);
      expect(await inHsm.m1SectorKey({ cardCompanyId: hsmCompany, keyVersion: 1, uid, sector: 1 })).toEqual(m1SectorKeyB(MASTER, uid, 1));
    }
  });

  it('MAC1, MAC2 and the TAC of a load and a purchase agree between the stores and an independent computation on the vectors’ data (L1, P1 of CARD-PROTOCOL.md §7)', async () => {
    const { hsm: inHsm, software } = stores();
    for (const asn of ASNS) {
      const fromStore = async (store: KeyStore, cardCompanyId: string) => (await everyMac(store, cardCompanyId, asn)).map(HEX);
      const expected = referenceMacs(asn).map(HEX);
      expect(await fromStore(inHsm, hsmCompany)).toEqual(expected);
      expect(await fromStore(software, softwareCompany)).toEqual(expected);
    }
  });

  it('the token’s derivation chain gives the published L1 and P1 MACs: session key K ‖ K by ECB_ENCRYPT_DATA over input ‖ input, then a 3DES-CBC MAC', () => {
    // MASTER is the vectors' DLK/DPK: used as the card key, the token must give SESLK and SESPK's MACs as published.
    const cardKey = token.find(masterKeyLabel(hsmCompany, 'LOAD', 1))!;
    const macUnder = (input: Buffer, message: Buffer) => {
      const sessionKey = token.deriveDes2(cardKey, Buffer.concat([input, input]), 'encrypt');
      try {
        return HEX(mac4(token.cbcMacBlock(sessionKey, padIso9797M2(message))));
      } finally {
        token.destroy(sessionKey);
      }
    };
    const l1 = loadSessionInput({ random: hex('11223344'), onlineCounter: 0 });
    expect(macUnder(l1, loadMac1Message({ oldBalance: 0, amount: 0x1000, transactionType: TransactionType.EDEPOSIT_LOAD, terminalId: TERMINAL }))).toBe('2988AE5A');
    expect(macUnder(l1, loadMac2Message({ amount: 0x1000, transactionType: TransactionType.EDEPOSIT_LOAD, terminalId: TERMINAL, date: '20111221', time: '214822' }))).toBe('3A845BF0');
    const p1 = purchaseSessionInput({ random: hex('11223344'), offlineCounter: 0, terminalSerial: 1 });
    expect(macUnder(p1, purchaseMac1Message({ amount: 0x1000, terminalId: TERMINAL, date: '20120229', time: '135100' }))).toBe('F15CAB75');
    expect(macUnder(p1, purchaseMac2Message({ amount: 0x1000 }))).toBe('56988A13');
  });

  it('load and purchase MACs never put a card key or a session key in the process: no software diversification, session key or MAC, no diversification out of the token', async () => {
    const { hsm: inHsm, software } = stores();
    const leaks = [vi.mocked(diversify.diversifyKey), vi.mocked(epurse.sessionKeyFrom), vi.mocked(epurse.sessionMac)];
    const encryptOut = vi.spyOn(token, 'encryptEcb');
    try {
      await sessionMacsOf(software, softwareCompany, ASNS[0]!);
      // The spies are wired: the software store does call them.
      expect(leaks.map((f) => f.mock.calls.length > 0)).toEqual([true, true, true]);
      for (const f of leaks) f.mockClear();
      for (const asn of ASNS) await sessionMacsOf(inHsm, hsmCompany, asn);
      expect(leaks.map((f) => f.mock.calls.length)).toEqual([0, 0, 0]);
      expect(encryptOut).not.toHaveBeenCalled();
    } finally {
      encryptOut.mockRestore();
    }
  });

  it('keys derived in the token are session objects that cannot be read, even with the PIN, and none is left behind after MACs, even refused ones', async () => {
    const master = token.find(masterKeyLabel(hsmCompany, 'PURCHASE', 1))!;
    const d = hex('0000000000012345');
    const cardKey = token.deriveDes2(master, Buffer.concat([d, Buffer.from(d.map((b) => ~b & 0xff))]), 'derive');
    const sessionKey = token.deriveDes2(cardKey, hex('1122334400000001 1122334400000001'), 'encrypt');
    for (const derived of [cardKey, sessionKey]) {
      expect(token.isSessionObject(derived)).toBe(true);
      expect(token.extractable(derived)).toBe(false);
      expect(() => token.readValue(derived)).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
    }
    token.destroy(sessionKey);
    token.destroy(cardKey);

    const before = token.objectCount();
    const { hsm: inHsm } = stores();
    for (const asn of ASNS) await sessionMacsOf(inHsm, hsmCompany, asn);
    const refused = inHsm.sessionMacs({ cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 1, asn: ASNS[0]!, sessionInput: Buffer.alloc(7), messages: [Buffer.alloc(4)] });
    await expect(refused).rejects.toThrow(/session input must be 8 bytes/);
    // The token failing once both keys exist (here: the MAC's C_Encrypt) still destroys them.
    const failing = vi.spyOn(token, 'cbcMacBlock').mockImplementation(() => {
      throw new Error('CKR_DEVICE_ERROR');
    });
    try {
      await expect(sessionMacsOf(inHsm, hsmCompany, ASNS[0]!)).rejects.toThrow(/CKR_DEVICE_ERROR/);
      expect(failing).toHaveBeenCalled();
    } finally {
      failing.mockRestore();
    }
    expect(token.objectCount()).toBe(before);
  });

  it('a master key imported before derivation moved into the token (no CKA_DERIVE) still gives the same MACs, through the previous path', async () => {
    const legacy = Buffer.from('A1B2C3D4E5F60718293A4B5C6D7E8F90', 'hex');
    await importAndActivate(hsmVault, hsmCompany, 'PURCHASE', legacy, 4);
    await importAndActivate(softwareVault, softwareCompany, 'PURCHASE', legacy, 4);
    setAttribute(masterKeyLabel(hsmCompany, 'PURCHASE', 4), 'CKA_DERIVE', false);
    const handle = token.find(masterKeyLabel(hsmCompany, 'PURCHASE', 4))!;
    expect(token.canDerive(handle)).toBe(false);
    const { hsm: inHsm, software } = stores();
    const req = { purpose: 'PURCHASE' as const, keyVersion: 4, asn: ASNS[1]!, sessionInput: hex('1122334400000001'), messages: [hex('00001000'), hex('00000100')] };
    const a = await inHsm.sessionMacs({ cardCompanyId: hsmCompany, ...req });
    expect(a).toEqual(await software.sessionMacs({ cardCompanyId: softwareCompany, ...req }));
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
    const request = { purpose: 'LOAD' as const, keyVersion: 2, asn: ASNS[0]!, sessionInput: hex('1122334400008000'), messages: [hex('0000000000001000')] };
    const use = () => store.sessionMacs({ cardCompanyId: hsmCompany, ...request });
    await expect(use()).rejects.toBeInstanceOf(UnknownCardKeyError);
    await changeMasterKeyStatus(em, { cardCompanyId: hsmCompany, purpose: 'LOAD', keyVersion: 2, to: 'ACTIVE' });
    const seslk = epurse.sessionKeyFrom(ALG_3DES, referenceDiversify(next, ASNS[0]!), request.sessionInput);
    expect((await use()).macs).toEqual([epurse.sessionMac(ALG_3DES, seslk, request.messages[0]!)]);
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

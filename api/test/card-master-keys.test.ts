/**
 * A card company imports its master keys over the API into the platform's HSM (SoftHSM2 through
 * PKCS#11, configured as in production by ONECARD_PKCS11_*), activates them, and its cards load and
 * pay through card sessions whose MACs are computed inside the token (card and session keys derived
 * there): city-union cards (algorithm id 00) and T-Union ones (01). No API answer, no log line and no
 * database row ever shows a key, master or card: only its check value. Needs softhsm2 (.ci/run installs it).
 */
import { constants, publicEncrypt } from 'node:crypto';
import { Writable } from 'node:stream';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { ALG_3DES } from '../src/cardcrypto/algorithm.js';
import { diversifyKey } from '../src/cardcrypto/diversify.js';
import { keyCheckValue } from '../src/readers/keys/master-keys.service.js';
import { T_UNION_AID } from '../src/readers/session/card-profile.js';
import { createMerchant } from '../src/tenancy/tenancy.service.js';
import { addCity, apiClient, balanceOnCard, hex, issueCard, newReader, purseBalance, sessionsOf, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { softHsmToken } from './support/softhsm.js';

const token = softHsmToken();
/** Every log line the server writes, at every level. */
let logged = '';
const world = useCardSessionWorld({
  env: () => ({ ONECARD_PKCS11_MODULE: token.config.module, ONECARD_PKCS11_TOKEN: token.config.tokenLabel, ONECARD_PKCS11_PIN: token.config.pin }),
  log: () => pino({ level: 'trace' }, new Writable({ write: (chunk, _enc, done) => ((logged += String(chunk)), done()) })),
});

/** The card company's keys, as its key ceremony produced them. */
const MASTER = { LOAD: Buffer.from('0123456789ABCDEFFEDCBA9876543210', 'hex'), PURCHASE: Buffer.from('00112233445566778899AABBCCDDEEFF', 'hex'), TAC: Buffer.from('F0E1D2C3B4A5968778695A4B3C2D1E0F', 'hex') };
/** The card's own keys (DLK, DPK, DTK) of every card a test issued: they must not show either. */
const cardKeys: Buffer[] = [];
const issued = (card: VirtualCpuCard) => {
  for (const master of Object.values(MASTER)) cardKeys.push(diversifyKey(ALG_3DES, master, Buffer.from(card.asn, 'hex')));
  return card;
};
/** Every way a key could show: hex either case, base64. */
const shows = (text: string) => [...Object.values(MASTER), ...cardKeys].some((k) => text.includes(hex(k)) || text.toLowerCase().includes(k.toString('hex')) || text.includes(k.toString('base64')));

let hz: TestCity;
let counter: TestReader;
let till: TestReader;
let issuer: OneCardClient;
let merchant: OneCardClient;
const answers: string[] = [];
const request = async <T,>(query: string, variables?: Record<string, unknown>): Promise<T> => {
  const data = await issuer.request<T>(query, variables);
  answers.push(JSON.stringify(data));
  return data;
};

const KEYS = { load: hex(MASTER.LOAD), purchase: hex(MASTER.PURCHASE), tac: hex(MASTER.TAC) };

const IMPORT = `mutation($input: ImportCardMasterKeyInput!) { importCardMasterKey(input: $input) { masterKey { purpose keyVersion algorithm keyCheckValue storedIn status } userErrors { code field message } } }`;
const ACTIVATE = `mutation($input: CardMasterKeyRefInput!) { activateCardMasterKey(input: $input) { masterKey { purpose keyVersion status activatedAt } userErrors { code message } } }`;
const RETIRE = `mutation($input: CardMasterKeyRefInput!) { retireCardMasterKey(input: $input) { masterKey { status retiredAt } userErrors { code message } } }`;

beforeAll(async () => {
  hz = await addCity(world, { code: 'HZ', name: 'Hangzhou', cardCompanyName: 'Hangzhou Tong', cardCode: '3100' });
  counter = await newReader(world, 'HZ-COUNTER-1', hz);
  issuer = await apiClient(world, 'ISSUER', hz.cardCompanyId, ['cardkeys:manage', 'topups:write', 'readers:manage']);
  const shop = await createMerchant(world.db.orm.em.fork(), { cityId: hz.cityId, name: 'West Lake Tea House' });
  merchant = await apiClient(world, 'MERCHANT', shop.id, ['payments:write']);
  till = await newReader(world, 'HZ-TILL-1', hz, { kind: 'MERCHANT', id: shop.id });
});

describe('a card company’s master keys, imported into the HSM over the API', () => {
  it('imported wrapped under the transport key, PENDING, then ACTIVE: a card’s load is checked with them inside SoftHSM2', async () => {
    const { cardKeyTransportKey } = await request<{ cardKeyTransportKey: { publicKeyPem: string; wrapping: string; storedIn: string } }>(`{ cardKeyTransportKey { publicKeyPem wrapping storedIn } }`);
    expect(cardKeyTransportKey).toMatchObject({ storedIn: 'PKCS11', wrapping: 'RSA-OAEP, SHA-1, MGF1-SHA-1' });
    for (const [purpose, key] of Object.entries(MASTER)) {
      const wrappedKey = publicEncrypt({ key: cardKeyTransportKey.publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, key).toString('base64');
      const made = await request<any>(IMPORT, { input: { purpose, keyVersion: 1, algorithm: 'TDES', wrappedKey, keyCheckValue: keyCheckValue('3DES', key) } });
      expect(made.importCardMasterKey).toEqual({ masterKey: { purpose, keyVersion: 1, algorithm: 'TDES', keyCheckValue: keyCheckValue('3DES', key), storedIn: 'PKCS11', status: 'PENDING' }, userErrors: [] });
    }
    const card = issued(issueCard({ city: hz, keys: KEYS }));
    const desk = sessionsOf(issuer, () => counter);
    // Pending keys serve no session.
    expect((await desk.agent(card).run(await desk.open('LOAD', 800))).state).toBe('FAILED');

    for (const purpose of Object.keys(MASTER)) {
      const activated = await request<any>(ACTIVATE, { input: { purpose, keyVersion: 1 } });
      expect(activated.activateCardMasterKey).toMatchObject({ masterKey: { status: 'ACTIVE' }, userErrors: [] });
    }
    const done = await desk.agent(card).run(await desk.open('LOAD', 800));
    expect(done).toMatchObject({ state: 'COMPLETED', result: { asn: card.asn, newBalance: 800 } });
    expect(await balanceOnCard(card)).toBe(800);
    expect(await purseBalance(world, card.asn)).toBe(800n);

    const { cardMasterKeys } = await request<{ cardMasterKeys: { purpose: string; status: string; storedIn: string }[] }>(`{ cardMasterKeys { purpose keyVersion algorithm keyCheckValue storedIn status createdAt activatedAt retiredAt } }`);
    expect(cardMasterKeys.map((k) => `${k.purpose} ${k.status} ${k.storedIn}`).sort()).toEqual(['LOAD ACTIVE PKCS11', 'PURCHASE ACTIVE PKCS11', 'TAC ACTIVE PKCS11']);
  });

  it('the loaded card pays at a shop: MAC1 from the HSM, the card’s MAC2 and TAC checked against it; a card under other keys is refused', async () => {
    const card = issued(issueCard({ city: hz, keys: KEYS }));
    const desk = sessionsOf(issuer, () => counter);
    expect(await desk.agent(card).run(await desk.open('LOAD', 1000))).toMatchObject({ state: 'COMPLETED', result: { newBalance: 1000 } });
    const shop = sessionsOf(merchant, () => till);
    const paid = await shop.agent(card).run(await shop.open('PURCHASE', 350));
    expect(paid).toMatchObject({ state: 'COMPLETED', result: { asn: card.asn, oldBalance: 1000, newBalance: 650, amount: 350, offlineCounter: 1 } });
    expect(await balanceOnCard(card)).toBe(650);
    expect(await purseBalance(world, card.asn)).toBe(650n);

    // A card personalised under other master keys: its MAC1 does not verify against the HSM's, nothing moves.
    const other = { load: '0F1E2D3C4B5A69788796A5B4C3D2E1F0', purchase: '1F2E3D4C5B6A79889786A5B4C3D2E1F0', tac: '2F3E4D5C6B7A89988796A5B4C3D2E1F0' };
    const stranger = issueCard({ city: hz, keys: other });
    expect((await desk.agent(stranger).run(await desk.open('LOAD', 500))).state).toBe('FAILED');
    expect(await balanceOnCard(stranger)).toBe(0);
    expect(await purseBalance(world, stranger.asn)).toBeUndefined();
  });

  it('a T-Union card answering algorithm id 01 loads and pays through the HSM once its product profile accepts 01', async () => {
    const profile = await issuer.request<any>(`mutation($input: SetCardProfileInput!) { setCardProfile(input: $input) { profile { product acceptedAlgorithms { id cipher } } userErrors { code message } } }`, {
      input: { product: 'T-UNION', selection: [{ kind: 'AID', value: T_UNION_AID }], loadKeyIndex: 2, purchaseKeyIndex: 2, algorithmIds: [1] },
    });
    expect(profile.setCardProfile).toEqual({ profile: { product: 'T-UNION', acceptedAlgorithms: [{ id: 1, cipher: 'TDES' }] }, userErrors: [] });
    const card = issued(VirtualCpuCard.issue({ asn: '31040000000000000424', cityCode: hz.cardCode, masterKeys: KEYS, keyVersion: 1, keyIndex: 2, algorithm: '3DES', algorithmId: 0x01, aid: T_UNION_AID }));
    const desk = sessionsOf(issuer, () => counter);
    expect(await desk.agent(card).run(await desk.open('LOAD', 2000))).toMatchObject({ state: 'COMPLETED', result: { asn: card.asn, newBalance: 2000 } });
    const shop = sessionsOf(merchant, () => till);
    expect(await shop.agent(card).run(await shop.open('PURCHASE', 1200))).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 2000, newBalance: 800, amount: 1200 } });
    const chip = new VirtualCardTransport(card);
    await chip.transmit(Buffer.from(`00A4040008${T_UNION_AID}`, 'hex'));
    expect(Buffer.from(await chip.transmit(Buffer.from('805C000204', 'hex'))).readUInt32BE(0)).toBe(800);
    expect(await purseBalance(world, card.asn)).toBe(800n);
  });

  it('refusals are userErrors naming the field, and import nothing: a wrong check value, a blob not wrapped for us, a taken version', async () => {
    const { cardKeyTransportKey } = await request<any>(`{ cardKeyTransportKey { publicKeyPem } }`);
    const wrap = (k: Buffer) => publicEncrypt({ key: cardKeyTransportKey.publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, k).toString('base64');
    const cases: [Record<string, unknown>, string, string[]][] = [
      [{ purpose: 'LOAD', keyVersion: 2, wrappedKey: wrap(MASTER.LOAD), keyCheckValue: '000000' }, 'KEY_CHECK_VALUE_MISMATCH', ['input', 'keyCheckValue']],
      [{ purpose: 'LOAD', keyVersion: 2, wrappedKey: Buffer.alloc(256, 1).toString('base64'), keyCheckValue: keyCheckValue('3DES', MASTER.LOAD) }, 'KEY_NOT_UNWRAPPED', ['input', 'wrappedKey']],
      [{ purpose: 'LOAD', keyVersion: 1, wrappedKey: wrap(MASTER.LOAD), keyCheckValue: keyCheckValue('3DES', MASTER.LOAD) }, 'KEY_VERSION_TAKEN', ['input', 'keyVersion']],
      [{ purpose: 'LOAD', keyVersion: 2, wrappedKey: 'not base64!', keyCheckValue: keyCheckValue('3DES', MASTER.LOAD) }, 'INVALID_INPUT', ['input', 'wrappedKey']],
    ];
    for (const [input, code, field] of cases) {
      const made = await request<any>(IMPORT, { input: { algorithm: 'TDES', ...input } });
      expect(made.importCardMasterKey.masterKey, code).toBeNull();
      expect(made.importCardMasterKey.userErrors[0], code).toMatchObject({ code, field });
    }
    const { cardMasterKeys } = await request<any>(`{ cardMasterKeys { keyVersion } }`);
    expect(cardMasterKeys.every((k: { keyVersion: number }) => k.keyVersion === 1)).toBe(true);
  });

  it('two imports of one new version at once: one is PENDING, the other KEY_VERSION_TAKEN, one key kept', async () => {
    const { cardKeyTransportKey } = await request<any>(`{ cardKeyTransportKey { publicKeyPem } }`);
    const wrap = (k: Buffer) => publicEncrypt({ key: cardKeyTransportKey.publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, k).toString('base64');
    const input = { purpose: 'TAC', keyVersion: 7, algorithm: 'SM4', wrappedKey: wrap(MASTER.TAC), keyCheckValue: keyCheckValue('SM4', MASTER.TAC) };
    const both = await Promise.all([request<any>(IMPORT, { input }), request<any>(IMPORT, { input: { ...input, wrappedKey: wrap(MASTER.TAC) } })]);
    const outcomes = both.map((r) => r.importCardMasterKey.masterKey?.status ?? r.importCardMasterKey.userErrors[0]?.code).sort();
    expect(outcomes).toEqual(['KEY_VERSION_TAKEN', 'PENDING']);
    const { cardMasterKeys } = await request<any>(`{ cardMasterKeys { purpose keyVersion } }`);
    expect(cardMasterKeys.filter((k: { purpose: string; keyVersion: number }) => k.purpose === 'TAC' && k.keyVersion === 7)).toHaveLength(1);
  });

  it('a retired version serves no session any more', async () => {
    await request<any>(RETIRE, { input: { purpose: 'LOAD', keyVersion: 1 } });
    const again = await request<any>(RETIRE, { input: { purpose: 'LOAD', keyVersion: 1 } });
    expect(again.retireCardMasterKey.userErrors[0]).toMatchObject({ code: 'INVALID_KEY_TRANSITION' });
    const card = issued(issueCard({ city: hz, keys: KEYS }));
    const desk = sessionsOf(issuer, () => counter);
    expect((await desk.agent(card).run(await desk.open('LOAD', 100))).state).toBe('FAILED');
  });

  it('another card company, or a client without cardkeys:manage, cannot see or change these keys', async () => {
    const other = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['cardkeys:manage']);
    const theirs = await other.request<any>(`{ cardMasterKeys { purpose keyVersion } }`);
    expect(theirs.cardMasterKeys.every((k: { keyVersion: number }) => k.keyVersion === 1)).toBe(true);
    const changed = await other.request<any>(ACTIVATE, { input: { purpose: 'LOAD', keyVersion: 2 } });
    expect(changed.activateCardMasterKey.userErrors[0]).toMatchObject({ code: 'NOT_FOUND' });
    const noScope = await apiClient(world, 'ISSUER', hz.cardCompanyId, ['topups:write']);
    await expect(noScope.request(`{ cardMasterKeys { purpose } }`)).rejects.toThrow();
  });

  it('no API answer, no log line, no database row shows key material, master or card', async () => {
    expect(answers.length).toBeGreaterThan(5);
    expect(cardKeys.length).toBeGreaterThanOrEqual(12);
    expect(answers.filter(shows)).toEqual([]);
    expect(logged.length).toBeGreaterThan(0);
    expect(shows(logged)).toBe(false);
    const em = world.db.orm.em.fork();
    const tables = await em.execute<{ table_name: string }[]>(`select table_name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE'`);
    for (const { table_name } of tables) {
      const rows = await em.execute(`select * from "${table_name}"`);
      expect(shows(JSON.stringify(rows)), table_name).toBe(false);
    }
  });
});

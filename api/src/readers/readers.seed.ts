import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import forge from 'node-forge';
import { ALG_3DES } from '../cardcrypto/algorithm.js';
import { diversifyKey } from '../cardcrypto/diversify.js';
import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { storeM1MasterKey, storeMasterKeys } from './key-store.js';
import { issueNationalCertificate, registerReader } from './readers.service.js';

type SeedContext = Parameters<SeedStep['run']>[1];

/**
 * A certified demo reader: a device key made here, registered from its CSR (both certificates),
 * and written with its certificates to `file` in the data folder, as a real reader keeps them in
 * its secure element. Returns what demo.json lists of it.
 */
export async function registerDemoReader(
  em: Parameters<SeedStep['run']>[0],
  kek: SeedContext['kek'],
  config: SeedContext['config'],
  r: { serial: string; model: string; owner: Parameters<typeof registerReader>[2]['owner']; cityId: string; cityCode: string; file: string; extra?: Record<string, string> },
): Promise<{ id: string; serial: string; file: string } & Record<string, string>> {
  // A key pair per purpose: national (the hello), city (every later message), encryption (sealed commands).
  const [cityKey, nationalKey, encryptionKey] = [0, 1, 2].map(() => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey) as [string, string, string];
  const csrOf = (privateKey: string) => {
    const key = forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey;
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    csr.sign(key, forge.md.sha256.create());
    return forge.pki.certificationRequestToPem(csr);
  };
  const registered = await registerReader(em, kek, {
    serial: r.serial,
    model: r.model,
    owner: r.owner,
    cityId: r.cityId,
    cityCode: r.cityCode,
    nationalCsrPem: csrOf(nationalKey),
    cityCsrPem: csrOf(cityKey),
    encryptionCsrPem: csrOf(encryptionKey),
    publicUrl: config.publicUrl,
    nationalAuthority: false,
  });
  // The card company registered it; the national authority (the operator) issues its national certificate.
  const approved = await issueNationalCertificate(em, kek, registered.reader.id, config.publicUrl);
  const readerId = toGlobalId('Reader', registered.reader.id);
  await fs.mkdir(config.dataDir, { recursive: true });
  const file = path.join(config.dataDir, r.file);
  const stored = {
    readerId,
    serial: r.serial,
    ...r.extra,
    deviceKeyPem: cityKey,
    nationalKeyPem: nationalKey,
    encryptionKeyPem: encryptionKey,
    nationalCertificatePem: approved.nationalChainPem[0],
    cityCertificatePem: registered.cityChainPem[0],
    encryptionCertificatePem: registered.encryptionChainPem[0],
    // Pinned at install: host messages must chain to the root (through the reader's own city CA).
    trustedCertificatesPem: [registered.cityChainPem.at(-1)] };
  await fs.writeFile(file, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  return { id: readerId, serial: r.serial, ...r.extra, file };
}

/** The city codes cards of the demo cities carry in their issuer id (SFI 0x15 bytes 2–3). */
const CARD_CITY_CODES: Record<string, string> = { GZ: '5810', SZ: '5840' };

/**
 * Card keys for both demo card companies, the two cities accepting each other's cards (互联互通),
 * a counter reader of the Guangzhou card company (its device key in a file, as a real reader keeps
 * it in its secure element), and a virtual card to try it with.
 */
export const readersDemo: SeedStep = {
  name: 'readers-demo',
  async run(em, { earlier, config, kek }) {
    const tenants = earlier.tenants as { cities: Record<string, string>; cardCompanies: Record<string, string> };
    const city = (code: string) => fromGlobalId(tenants.cities[code]!, 'City').id;
    const company = (code: string) => fromGlobalId(tenants.cardCompanies[code]!, 'CardCompany').id;
    for (const [code, cardCode] of Object.entries(CARD_CITY_CODES)) await em.execute(`update city set card_city_code = ? where id = ?`, [cardCode, city(code)]);
    await em.execute(`insert into city_interoperation (card_city_id, reader_city_id) values (?, ?), (?, ?)`, [city('GZ'), city('SZ'), city('SZ'), city('GZ')]);
    const gzKeys = await storeMasterKeys(em, kek, { cardCompanyId: company('GZ'), keyVersion: 1, algorithm: '3DES' });
    await storeMasterKeys(em, kek, { cardCompanyId: company('SZ'), keyVersion: 1, algorithm: 'SM4' });
    // Guangzhou also runs M1 (MIFARE Classic) cards: their sector keys derive from this key and the UID.
    await storeM1MasterKey(em, kek, { cardCompanyId: company('GZ'), keyVersion: 1 });

    // The owner's own (Chinese) name goes into the reader's certificates, so the demo exercises UTF8String names.
    const [gzCompany] = await em.execute<{ name: string }[]>(`select name from card_company where id = ?`, [company('GZ')]);
    const counter = await registerDemoReader(em, kek, config, {
      serial: 'GZ-COUNTER-0001',
      model: 'OneCard virtual counter reader',
      owner: { kind: 'CARD_COMPANY', id: company('GZ'), name: gzCompany!.name },
      cityId: city('GZ'),
      cityCode: 'GZ',
      file: 'demo-reader.json',
    });

    // A card personalised as the card company would: only its own diversified keys go on it. The
    // file is `VirtualCpuCard.withKeys()` options (sdk-js), so the reader simulator can make the card.
    const asn = '00000000000000000001';
    const cardKey = (master: Buffer) => diversifyKey(ALG_3DES, master, Buffer.from(asn, 'hex')).toString('hex').toUpperCase();
    const personalisation = {
      asn,
      cityCode: CARD_CITY_CODES.GZ,
      algorithm: '3DES',
      keys: { load: [{ index: 1, version: 1, key: cardKey(gzKeys.LOAD) }], purchase: [{ index: 1, version: 1, key: cardKey(gzKeys.PURCHASE) }], tac: cardKey(gzKeys.TAC) },
    };
    const cardFile = path.join(config.dataDir, 'demo-card.json');
    await fs.writeFile(cardFile, `${JSON.stringify(personalisation, null, 2)}\n`, { mode: 0o600 });
    return { readers: { counter }, cards: { gz: { asn, file: cardFile } } };
  },
};

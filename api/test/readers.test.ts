import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ApolloServer } from '@apollo/server';
import forge from 'node-forge';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopesForKind } from '../src/auth/scopes.js';
import { createApolloServer } from '../src/apollo.js';
import type { GraphQLContext } from '../src/graphql/context.js';
import type { Principal, PrincipalKind } from '../src/auth/principal.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { Metrics } from '../src/http/metrics.js';
import { createWorkingCa, findIssued } from '../src/pki/pki.service.js';
import { initRootCa } from '../src/pki/root-ca.js';
import { generateRsaKey } from '../src/pki/x509.js';
import { createCity, createMerchant } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { TEST_KEK, testConfig } from './support/server.js';

let db: TestDatabase;
let apollo: ApolloServer<GraphQLContext>;
let dir: string;
const ids = { gz: '', sz: '', gzCompany: '', szCompany: '', shop: '', otherShop: '' };

const who = (kind: PrincipalKind, tenantId: string | null, scopes = scopesForKind(kind)): Principal => ({ kind, clientId: `t-${kind}`, tenantId, holderId: null, scopes });

beforeAll(async () => {
  db = await freshDatabase();
  apollo = await createApolloServer({ config: testConfig(), log: pino({ level: 'silent' }), metrics: new Metrics() });
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-readers-'));
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'GZ cards' });
  const sz = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'SZ cards' });
  const root = await initRootCa(path.join(dir, 'root.json'), 'a long root passphrase');
  const kek = Buffer.from(TEST_KEK, 'base64url');
  await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'National', publicUrl: 'http://127.0.0.1' });
  await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: gz.city.id, cityCode: 'GZ', name: 'GZ CA', publicUrl: 'http://127.0.0.1' });
  // Shenzhen has no working CA yet.
  const shop = await createMerchant(em, { cityId: gz.city.id, name: 'Shop' });
  const other = await createMerchant(em, { cityId: gz.city.id, name: 'Other shop' });
  Object.assign(ids, { gz: gz.city.id, sz: sz.city.id, gzCompany: gz.cardCompany.id, szCompany: sz.cardCompany.id, shop: shop.id, otherShop: other.id });
});
afterAll(async () => {
  await apollo.stop();
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
});

function csr(key = generateRsaKey(2048)): string {
  const request = forge.pki.createCertificationRequest();
  request.publicKey = forge.pki.setRsaPublicKey(key.privateKey.n, key.privateKey.e);
  request.setSubject([{ shortName: 'CN', value: 'reader' }]);
  request.sign(key.privateKey, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(request);
}

async function run(query: string, variables: Record<string, unknown>, principal: Principal | null) {
  const res = await apollo.executeOperation({ query, variables }, { contextValue: { em: db.orm.em.fork(), principal, requestId: 't', log: pino({ level: 'silent' }), config: testConfig() } });
  if (res.body.kind !== 'single') throw new Error('single');
  return JSON.parse(JSON.stringify(res.body.singleResult)) as { data?: any; errors?: any[] };
}

const REGISTER = `mutation($input: RegisterReaderInput!) { registerReader(input: $input) {
  reader { id serial status ownerKind owner city nationalCertificateSerial cityCertificateSerial }
  nationalCertificateChain cityCertificateChain encryptionCertificateChain userErrors { code field message } } }`;

function registration(serial: string, overrides: Record<string, unknown> = {}) {
  // A key pair per purpose: national (access), city (signing), encryption.
  return { serial, model: 'OC-R1', owner: toGlobalId('Merchant', ids.shop), city: toGlobalId('City', ids.gz), nationalCsr: csr(generateRsaKey(2048)), cityCsr: csr(generateRsaKey(2048)), encryptionCsr: csr(generateRsaKey(2048)), ...overrides };
}

describe('registering readers', () => {
  it('the GZ card company registers a reader for a GZ merchant: three certificates over three keys, each for its purpose', async () => {
    const { data } = await run(REGISTER, { input: registration('GZ-R-0001') }, who('ISSUER', ids.gzCompany));
    const out = data.registerReader;
    expect(out.userErrors).toEqual([]);
    expect(out.reader).toMatchObject({ serial: 'GZ-R-0001', status: 'ACTIVE', ownerKind: 'MERCHANT', owner: toGlobalId('Merchant', ids.shop) });
    // A card company's call alone issues no national certificate: the national authority (the operator) does.
    expect(out.reader.nationalCertificateSerial).toBeNull();
    expect(out.nationalCertificateChain).toEqual([]);
    expect(out.cityCertificateChain).toHaveLength(3);
    const APPROVE = `mutation($input: ReaderStatusInput!) { approveReaderNationalCertificate(input: $input) { reader { nationalCertificateSerial } nationalCertificateChain userErrors { code message } } }`;
    const byCompany = await run(APPROVE, { input: { reader: out.reader.id } }, who('ISSUER', ids.gzCompany));
    expect(byCompany.errors?.[0].extensions.code).toBe('FORBIDDEN');
    const approved = (await run(APPROVE, { input: { reader: out.reader.id } }, who('OPERATOR', null))).data.approveReaderNationalCertificate;
    expect(approved.userErrors).toEqual([]);
    expect(approved.nationalCertificateChain).toHaveLength(3);
    out.nationalCertificateChain = approved.nationalCertificateChain;
    out.reader.nationalCertificateSerial = approved.reader.nationalCertificateSerial;
    // Once is enough.
    expect((await run(APPROVE, { input: { reader: out.reader.id } }, who('OPERATOR', null))).data.approveReaderNationalCertificate.userErrors[0].message).toMatch(/already has/);
    expect(out.encryptionCertificateChain).toHaveLength(3);
    const [national, city, encryption] = [out.nationalCertificateChain[0], out.cityCertificateChain[0], out.encryptionCertificateChain[0]].map((pem: string) => forge.pki.certificateFromPem(pem));
    expect(new Set([national, city, encryption].map((c) => forge.pki.publicKeyToPem(c!.publicKey))).size).toBe(3);
    // Signing certificates sign only; the encryption certificate only wraps keys.
    for (const signing of [national, city]) expect(signing!.getExtension('keyUsage')).toMatchObject({ digitalSignature: true, keyEncipherment: false });
    expect(encryption!.getExtension('keyUsage')).toMatchObject({ digitalSignature: false, keyEncipherment: true });
    expect((await findIssued(db.orm.em.fork(), out.reader.nationalCertificateSerial))!.ca_id).toBe('national');
    expect((await findIssued(db.orm.em.fork(), out.reader.cityCertificateSerial))!.ca_id).toBe('city-gz');
  });

  it.each([
    ['one key for two purposes (the national CSR as the city CSR)', () => ((r) => ({ ...r, cityCsr: r.nationalCsr }))(registration('GZ-R-0002')), 'INVALID_INPUT', 'each carry a key of their own'],
    ['a garbled CSR', () => registration('GZ-R-0003', { nationalCsr: 'nope' }), 'INVALID_INPUT', 'nationalCsr'],
    ['a serial already registered', () => registration('GZ-R-0001'), 'INVALID_INPUT', 'is registered'],
    ['a city without a working CA', () => registration('SZ-R-0001', { city: toGlobalId('City', ids.sz), owner: toGlobalId('CardCompany', ids.szCompany) }), 'INVALID_INPUT', 'has no working CA'],
    ['an owner of another city', () => registration('GZ-R-0004', { owner: toGlobalId('CardCompany', ids.szCompany) }), 'INVALID_INPUT', 'another city'],
  ])('refuses %s, issuing no certificate', async (_name, input, code, message) => {
    const before = await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from issued_certificate`);
    const { data } = await run(REGISTER, { input: input() }, who('OPERATOR', null));
    expect(data.registerReader.reader).toBeNull();
    expect(data.registerReader.userErrors[0]).toMatchObject({ code });
    expect(data.registerReader.userErrors[0].message).toContain(message);
    expect(await db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from issued_certificate`)).toEqual(before);
  });

  it('another city’s card company cannot register readers here, nor can a merchant', async () => {
    const { data } = await run(REGISTER, { input: registration('GZ-R-0005') }, who('ISSUER', ids.szCompany));
    expect(data.registerReader.userErrors[0].code).toBe('NOT_FOUND');
    const merchant = await run(REGISTER, { input: registration('GZ-R-0006') }, who('MERCHANT', ids.shop));
    expect(merchant.errors?.[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('reader lifecycle and visibility', () => {
  it('suspend, activate, revoke (which revokes both certificates); revoked is final', async () => {
    const { data } = await run(REGISTER, { input: registration('GZ-R-0100') }, who('OPERATOR', null));
    const reader = data.registerReader.reader;
    const step = async (mutation: string) => (await run(`mutation($input: ReaderStatusInput!) { ${mutation}(input: $input) { reader { status } userErrors { code message } } }`, { input: { reader: reader.id } }, who('ISSUER', ids.gzCompany))).data[mutation];
    expect((await step('suspendReader')).reader.status).toBe('SUSPENDED');
    expect((await step('activateReader')).reader.status).toBe('ACTIVE');
    expect((await step('revokeReader')).reader.status).toBe('REVOKED');
    expect((await step('activateReader')).userErrors[0].message).toMatch(/cannot become ACTIVE/);
    for (const serial of [reader.nationalCertificateSerial, reader.cityCertificateSerial]) expect((await findIssued(db.orm.em.fork(), serial))!.status).toBe('REVOKED');
  });

  it('a merchant sees its own readers only; another merchant’s reader id answers null', async () => {
    const mine = (await run(REGISTER, { input: registration('GZ-R-0200') }, who('OPERATOR', null))).data.registerReader.reader;
    const theirs = (await run(REGISTER, { input: registration('GZ-R-0201', { owner: toGlobalId('Merchant', ids.otherShop) }) }, who('OPERATOR', null))).data.registerReader.reader;
    const shop = who('MERCHANT', ids.shop);
    const seen = (await run(`query($id: ID!) { reader(id: $id) { serial createdAt } }`, { id: mine.id }, shop)).data.reader;
    expect(seen.serial).toBe('GZ-R-0200');
    expect(seen.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect((await run(`query($id: ID!) { reader(id: $id) { serial } }`, { id: theirs.id }, shop)).data.reader).toBeNull();
    const listed = (await run(`{ readers(first: 100) { edges { node { serial } } } }`, {}, shop)).data.readers.edges.map((e: any) => e.node.serial);
    expect(listed).toContain('GZ-R-0200');
    expect(listed).not.toContain('GZ-R-0201');
    // The SZ card company sees none of GZ's readers.
    expect((await run(`{ readers(first: 100) { edges { node { serial } } } }`, {}, who('ISSUER', ids.szCompany))).data.readers.edges).toEqual([]);
  });
});

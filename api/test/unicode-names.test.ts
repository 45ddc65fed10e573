import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import type { OneCardClient } from '../../sdk-js/src/index.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { createWorkingCa } from '../src/pki/pki.service.js';
import { generateRsaKey } from '../src/pki/x509.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { addMasterKeys, apiClient, balanceOnCard, issueCard, kek, type MasterKeys, purseBalance, sessionsOf, type TestCity, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

// Every real card company has a Chinese name (DESIGN.md §6): it must survive into the certificates
// of its readers, be readable by openssl and node, and the reader must then work.
const OWNER = '佛山通 Foshan Tong';
const CA_NAME = '佛山市工作 CA';
const run = promisify(execFile);

const world = useCardSessionWorld();
let fs_: TestCity;
let keys: MasterKeys;
let issuer: OneCardClient;

beforeAll(async () => {
  const em = world.db.orm.em.fork();
  const made = await createCity(em, { code: 'FS', name: '佛山', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: OWNER });
  await em.execute(`update city set card_city_code = ? where id = ?`, ['5280', made.city.id]);
  await createWorkingCa(em, kek, world.root, { kind: 'CITY', cityId: made.city.id, cityCode: 'FS', name: CA_NAME, publicUrl: world.server.url });
  fs_ = { cityId: made.city.id, cardCompanyId: made.cardCompany.id, code: 'FS', cardCode: '5280' };
  keys = await addMasterKeys(world, fs_, '3DES');
  issuer = await apiClient(world, 'ISSUER', fs_.cardCompanyId, ['readers:manage', 'topups:write', 'cards:read']);
});

function csr(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const request = forge.pki.createCertificationRequest();
  request.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  request.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(request);
}

const REGISTER = `mutation($input: RegisterReaderInput!) { registerReader(input: $input) {
  reader { id serial } nationalCertificateChain cityCertificateChain encryptionCertificateChain userErrors { code message } } }`;

describe('a card company with a Chinese name', () => {
  let reader: TestReader;
  let chains: { national: string[]; city: string[]; encryption: string[] };

  it('registers a reader over the API: both certificates name it in UTF-8, and openssl and node read and verify them', async () => {
    const [nationalKey, cityKey, encryptionKey] = [0, 1, 2].map(() => generateRsaKey(2048).privateKeyPem) as [string, string, string];
    const data = await issuer.request<{ registerReader: { reader: { id: string; serial: string } | null; nationalCertificateChain: string[]; cityCertificateChain: string[]; encryptionCertificateChain: string[]; userErrors: unknown[] } }>(REGISTER, {
      input: { serial: 'FS-R-0001', model: 'OC-R1 柜台', owner: toGlobalId('CardCompany', fs_.cardCompanyId), city: toGlobalId('City', fs_.cityId), nationalCsr: csr(nationalKey), cityCsr: csr(cityKey), encryptionCsr: csr(encryptionKey) },
    });
    const out = data.registerReader;
    expect(out.userErrors).toEqual([]);
    // The national authority (the operator) issues the national certificate.
    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['readers:manage']);
    const approved = await operator.request<{ approveReaderNationalCertificate: { nationalCertificateChain: string[]; userErrors: unknown[] } }>(
      `mutation($input: ReaderStatusInput!) { approveReaderNationalCertificate(input: $input) { nationalCertificateChain userErrors { code message } } }`,
      { input: { reader: out.reader!.id } },
    );
    expect(approved.approveReaderNationalCertificate.userErrors).toEqual([]);
    out.nationalCertificateChain = approved.approveReaderNationalCertificate.nationalCertificateChain;
    chains = { national: out.nationalCertificateChain, city: out.cityCertificateChain, encryption: out.encryptionCertificateChain };
    reader = {
      id: out.reader!.id,
      serial: out.reader!.serial,
      deviceKeyPem: cityKey,
      nationalKeyPem: nationalKey,
      encryptionKeyPem: encryptionKey,
      nationalPem: chains.national[0]!,
      cityPem: chains.city[0]!,
      encryptionPem: chains.encryption[0]!,
      nationalSerial: '',
      trustedCertificatesPem: [chains.city[2]!],
    };

    const city = new X509Certificate(chains.city[0]!);
    expect(city.subject).toContain(`O=${OWNER}`);
    expect(city.subject).toContain('CN=FS-R-0001');
    expect(city.subject).toContain('OU=OC-R1 柜台');
    expect(city.issuer).toContain(`CN=${CA_NAME}`);
    expect(new X509Certificate(chains.national[0]!).subject).toContain(`O=${OWNER}`);

    for (const [name, chain] of Object.entries(chains)) {
      await fs.writeFile(path.join(world.dir, `${name}-leaf.pem`), chain[0]!);
      await fs.writeFile(path.join(world.dir, `${name}-ca.pem`), chain[1]!);
      await fs.writeFile(path.join(world.dir, `${name}-root.pem`), chain[2]!);
      const { stdout } = await run('openssl', ['verify', '-CAfile', `${name}-root.pem`, '-untrusted', `${name}-ca.pem`, `${name}-leaf.pem`], { cwd: world.dir });
      expect(stdout).toBe(`${name}-leaf.pem: OK\n`);
      const subject = await run('openssl', ['x509', '-in', `${name}-leaf.pem`, '-noout', '-subject', '-nameopt', 'utf8,sep_comma_plus_space'], { cwd: world.dir });
      expect(subject.stdout).toBe(`subject=C=CN, O=${OWNER}, OU=OC-R1 柜台, CN=FS-R-0001\n`);
      // Each certificate for its purpose, as openssl reads it: the national and city keys sign, the encryption key only wraps keys.
      const usage = await run('openssl', ['x509', '-in', `${name}-leaf.pem`, '-noout', '-ext', 'keyUsage'], { cwd: world.dir });
      expect(usage.stdout).toMatch(name === 'encryption' ? /critical\n\s+Key Encipherment\n/ : /critical\n\s+Digital Signature\n/);
    }
  });

  it('the reader then reads a card and loads it at the counter, booked in the ledger', async () => {
    const sessions = sessionsOf(issuer, () => reader);
    const c = issueCard({ city: fs_, keys, balance: 250 });
    expect(await sessions.agent(c).run(await sessions.open('BALANCE'))).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, balance: 250 } });
    const loaded = await sessions.agent(c).run(await sessions.open('LOAD', 1000));
    expect(loaded).toMatchObject({ state: 'COMPLETED', result: { oldBalance: 250, newBalance: 1250, amount: 1000 } });
    expect(await balanceOnCard(c)).toBe(1250);
    expect(await purseBalance(world, c.asn)).toBe(1000n);
  });
});

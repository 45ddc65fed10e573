/**
 * Each reader key for its purpose (issue 17, item 2): the hello proves the national certificate's
 * key (access), every later message is signed with the city certificate's key, and what the host
 * seals goes to the encryption certificate's key. A reader registered before the split (one key for
 * everything, SINGLE_KEY) still completes a session until it re-registers.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ReaderAgent, VirtualCardTransport } from '../../sdk-js/src/index.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { findCityCa, issueFromCsr } from '../src/pki/pki.service.js';
import { generateRsaKey } from '../src/pki/x509.js';
import { issueNationalCertificate, registerReader } from '../src/readers/readers.service.js';
import { apiClient, auditOf, balanceOnCard, csrFor, issueCard, kek, newReader, purseBalance, sessionsOf, type TestReader, useCardSessionWorld, readerAgentOptions } from './support/card-sessions.js';

const world = useCardSessionWorld();
let issuer: Awaited<ReturnType<typeof apiClient>>;
let reader: TestReader;

/**
 * A reader as registerReader made them before the key split: one device key under both
 * certificates, no encryption certificate; the migration leaves it SINGLE_KEY.
 */
async function singleKeyReader(serial: string): Promise<TestReader> {
  const em = world.db.orm.em.fork();
  const { privateKeyPem } = generateRsaKey(2048);
  const csrPem = csrFor(privateKeyPem);
  const common = { profile: 'reader' as const, subject: { commonName: serial, organization: 'owner', organizationalUnit: 'OC-R1', country: 'CN' }, validityDays: 730, publicUrl: world.server.url, csrPem };
  const national = await issueFromCsr(em, kek, 'national', common);
  const city = await issueFromCsr(em, kek, (await findCityCa(em, world.gz.cityId))!.id, common);
  const id = randomUUID();
  await em.execute(
    `insert into reader (id, serial, model, owner_kind, owner_id, city_id, national_certificate_serial, city_certificate_serial, public_key_fingerprint)
     values (?, ?, 'OC-R1', 'CARD_COMPANY', ?, ?, ?, ?, ?)`,
    [id, serial, world.gz.cardCompanyId, world.gz.cityId, national.row.serial, city.row.serial, city.row.public_key_fingerprint],
  );
  return {
    id: toGlobalId('Reader', id),
    serial,
    deviceKeyPem: privateKeyPem,
    nationalKeyPem: privateKeyPem,
    encryptionKeyPem: privateKeyPem,
    nationalPem: national.chainPem[0]!,
    cityPem: city.chainPem[0]!,
    nationalSerial: national.row.serial,
    trustedCertificatesPem: [city.chainPem.at(-1)!],
  };
}

beforeAll(async () => {
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  reader = await newReader(world, 'KEYS-COUNTER', world.gz);
});

describe('a reader with a key pair per purpose', () => {
  it('is registered SEPARATE_KEYS and completes a load: hello by the national key, messages by the city key, MAC2 sealed to the encryption key', async () => {
    const [row] = await world.db.orm.em.fork().execute<{ key_scheme: string }[]>(`select key_scheme from reader where serial = ?`, [reader.serial]);
    expect(row!.key_scheme).toBe('SEPARATE_KEYS');
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const s = sessionsOf(issuer, () => reader);
    expect(await s.agent(card).run(await s.open('LOAD', 700))).toMatchObject({ state: 'COMPLETED', result: { newBalance: 700 } });
    expect(await purseBalance(world, card.asn)).toBe(700n);
  });

  it('a hello signed with the city key instead of the national one is refused: only the national certificate’s key gives access', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const s = sessionsOf(issuer, () => reader);
    const session = await s.open('LOAD', 700);
    const agent = new ReaderAgent({ ...readerAgentOptions(reader), nationalKey: reader.deviceKeyPem, transport: new VirtualCardTransport(card), send: s.send });
    expect(await agent.run(session)).toMatchObject({ state: 'FAILED', refusal: 'BAD_SIGNATURE' });
    expect((await auditOf(world, session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'BAD_SIGNATURE' });
  });

  it('a hello without the encryption certificate is refused', async () => {
    const s = sessionsOf(issuer, () => reader);
    const m = await s.manual(issueCard({ city: world.gz, keys: world.gzMasterKeys }), 'BALANCE');
    const reply = await m.hello({ encryptionCertificate: undefined });
    expect(reply.userErrors[0]?.message).toMatch(/^CERTIFICATE_MISSING/);
    expect((await auditOf(world, m.session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'CERTIFICATE_MISSING' });
  });

  it('what the host seals opens only with the encryption key: a reader holding only its signing key cannot open MAC2, and the card is not credited', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const s = sessionsOf(issuer, () => reader);
    const agent = new ReaderAgent({ ...readerAgentOptions(reader), encryptionKey: reader.deviceKeyPem, transport: new VirtualCardTransport(card), send: s.send });
    await expect(agent.run(await s.open('LOAD', 700))).rejects.toThrow(/decoding error|oaep|decrypt|too large for modulus/i);
    expect(await balanceOnCard(card)).toBe(0);
    expect(await purseBalance(world, card.asn)).toBeUndefined();
  });
});

describe('the national certificate comes from the national authority', () => {
  it('a reader a card company registered opens no session until the operator issues its national certificate', async () => {
    const em = world.db.orm.em.fork();
    const [nationalKey, cityKey, encryptionKey] = [0, 1, 2].map(() => generateRsaKey(2048).privateKeyPem) as [string, string, string];
    const registered = await registerReader(em, kek, {
      serial: 'KEYS-PENDING-1',
      model: 'OC-R1',
      owner: { kind: 'CARD_COMPANY', id: world.gz.cardCompanyId, name: 'owner' },
      cityId: world.gz.cityId,
      cityCode: world.gz.code,
      nationalCsrPem: csrFor(nationalKey),
      cityCsrPem: csrFor(cityKey),
      encryptionCsrPem: csrFor(encryptionKey),
      publicUrl: world.server.url,
      nationalAuthority: false,
    });
    expect(registered.reader.national_certificate_serial).toBeNull();
    const pending = { id: toGlobalId('Reader', registered.reader.id) } as TestReader;
    const s = sessionsOf(issuer, () => pending);
    const refused = await s.openRaw('BALANCE');
    expect(refused.openCardSession.userErrors[0]).toMatchObject({ code: 'INVALID_INPUT' });
    expect(refused.openCardSession.userErrors[0]!.message).toMatch(/national certificate awaits/);

    const approved = await issueNationalCertificate(em, kek, registered.reader.id, world.server.url);
    const ready: TestReader = {
      id: pending.id,
      serial: 'KEYS-PENDING-1',
      deviceKeyPem: cityKey,
      nationalKeyPem: nationalKey,
      encryptionKeyPem: encryptionKey,
      nationalPem: approved.nationalChainPem[0]!,
      cityPem: registered.cityChainPem[0]!,
      encryptionPem: registered.encryptionChainPem[0]!,
      nationalSerial: approved.reader.national_certificate_serial!,
      trustedCertificatesPem: [registered.cityChainPem.at(-1)!],
    };
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const t = sessionsOf(issuer, () => ready);
    expect(await t.agent(card).run(await t.open('BALANCE'))).toMatchObject({ state: 'COMPLETED', result: { balance: 0 } });
  });
});

describe('a reader registered before the key split (one key for everything)', () => {
  it('still completes a load and a balance read with its one key (SINGLE_KEY, accepted until it re-registers)', async () => {
    const legacy = await singleKeyReader('KEYS-LEGACY-1');
    const [row] = await world.db.orm.em.fork().execute<{ key_scheme: string }[]>(`select key_scheme from reader where serial = ?`, [legacy.serial]);
    expect(row!.key_scheme).toBe('SINGLE_KEY');
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const s = sessionsOf(issuer, () => legacy);
    // As its software was written: one device key, no encryption certificate.
    const agent = new ReaderAgent({ deviceKey: legacy.deviceKeyPem, nationalCertificatePem: legacy.nationalPem, cityCertificatePem: legacy.cityPem, trustedCertificatesPem: legacy.trustedCertificatesPem, transport: new VirtualCardTransport(card), send: s.send });
    expect(await agent.run(await s.open('LOAD', 500))).toMatchObject({ state: 'COMPLETED', result: { newBalance: 500 } });
    expect(await agent.run(await s.open('BALANCE'))).toMatchObject({ state: 'COMPLETED', result: { balance: 500 } });
    expect(await purseBalance(world, card.asn)).toBe(500n);
  });
});

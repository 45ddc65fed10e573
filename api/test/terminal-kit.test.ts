/**
 * The terminal kit (issue 24 item 4), over real HTTP: the card company provisions a gate's software
 * PSAM through the API (its terminal number and purchase keys, sealed to the gate's encryption
 * certificate and signed by the city's host key), the gate takes fares offline from a virtual card
 * with MAC1/MAC2/TAC as a real gate does, and uploads its signed batch; the fares are booked.
 */
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import pino from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, offlinePurchase, OfflinePurchaseError, type OfflinePurchaseRecord, PsamPackageError, type PsamPackage, signOfflineBatch, SoftwarePsam, uploadOfflineBatch, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { credit, debit, openAccount, post } from '../src/ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../src/ledger/ledger-account.entity.js';
import { addCity, addMasterKeys, apiClient, balanceOnCard, issueCard, newReader, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';
import { balanceOf } from './support/settlement.js';

/** Every log line the server writes, at every level. */
let logged = '';
const world = useCardSessionWorld({ log: () => pino({ level: 'trace' }, new Writable({ write: (chunk, _enc, done) => ((logged += String(chunk)), done()) })) });

let gate: TestReader;
let otherGate: TestReader;
let szGate: TestReader;
let issuer: OneCardClient;
let szIssuer: OneCardClient;

const PROVISION = `mutation($input: ProvisionTerminalInput!) { provisionTerminal(input: $input) {
  terminal { id terminalNumber } psam { payload signature certificateChain } keyVersions userErrors { code field message } } }`;
type Provisioned = { provisionTerminal: { terminal: { id: string; terminalNumber: string } | null; psam: PsamPackage | null; keyVersions: number[]; userErrors: { code: string; field: string[]; message: string }[] } };

/** Everything the API answered while provisioning, as text: searched for key material. */
let answers = '';

async function provision(client: OneCardClient, terminal: TestReader): Promise<Provisioned['provisionTerminal']> {
  const data = await client.request<Provisioned>(PROVISION, { input: { terminal: terminal.id } });
  answers += JSON.stringify(data);
  return data.provisionTerminal;
}

async function installedPsam(terminal: TestReader): Promise<SoftwarePsam> {
  const { psam, userErrors } = await provision(issuer, terminal);
  expect(userErrors).toEqual([]);
  return SoftwarePsam.open(psam!, { encryptionKeyPem: terminal.encryptionKeyPem, terminal: terminal.id, trustedCertificatesPem: terminal.trustedCertificatesPem, cityCertificatePem: terminal.cityPem });
}

/** The card's application serial number, read as a terminal reads it (SFI 0x15, bytes 10–19). */
async function asnOf(card: VirtualCpuCard): Promise<string> {
  const t = new VirtualCardTransport(card);
  await t.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
  return Buffer.from(await t.transmit(Buffer.from('00B0950000', 'hex'))).subarray(10, 20).toString('hex').toUpperCase();
}

/** The card's value went through the ledger (as a load would have put it there). */
async function fundShadow(card: VirtualCpuCard, amount: number): Promise<string> {
  const asn = await asnOf(card);
  const em = world.db.orm.em.fork();
  const source = await openAccount(em, { code: 'test.terminal-kit.source.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
  const purse = await openAccount(em, { code: `card.${asn}.purse.CNY`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency: 'CNY', nonNegative: true });
  await post(em, { key: `test-fund:${asn}`, description: 'test funding', lines: [debit(source.id, BigInt(amount)), credit(purse.id, BigInt(amount))] });
  return asn;
}

function batchOf(terminal: TestReader, psam: SoftwarePsam, batchId: string, records: OfflinePurchaseRecord[], terminalNumber = psam.terminalNumber) {
  return signOfflineBatch({ terminal: terminal.id, batchId, terminalNumber, records, deviceKeyPem: terminal.deviceKeyPem, cityCertificatePem: terminal.cityPem });
}

const provisioned = async () => Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from psam_provisioning`))[0]!.n);
const offlineBatchRows = async () => Number((await world.db.orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from offline_batch`))[0]!.n);

beforeAll(async () => {
  gate = await newReader(world, 'GZ-METRO-GATE-T1', world.gz, undefined, '440100000101');
  otherGate = await newReader(world, 'GZ-METRO-GATE-T2', world.gz, undefined, '440100000102');
  szGate = await newReader(world, 'SZ-METRO-GATE-T1', world.sz, undefined, '440300000101');
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage', 'topups:write']);
  szIssuer = await apiClient(world, 'ISSUER', world.sz.cardCompanyId, ['readers:manage', 'topups:write']);
});

describe('the terminal kit: provision, ride offline, upload', () => {
  it('a provisioned gate takes three fares offline, uploads them, and the fares are booked', async () => {
    const psam = await installedPsam(gate);
    expect(psam.terminalNumber).toBe('440100000101');
    // The card company knows which terminal holds which key versions: a record of what was sent.
    const sent = await world.db.orm.em.fork().execute(`select terminal_number, key_versions, card_company_id from psam_provisioning where reader_id = (select id from reader where serial = 'GZ-METRO-GATE-T1')`);
    expect(sent).toEqual([{ terminal_number: '440100000101', key_versions: [1], card_company_id: world.gz.cardCompanyId }]);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await fundShadow(card, 1000);
    const revenue = `card-company.${world.gz.cardCompanyId}.transit-revenue.CNY`;
    const revenueBefore = await balanceOf(world.db.orm.em.fork(), revenue).catch(() => 0n);

    const rides: OfflinePurchaseRecord[] = [];
    for (const fare of [200, 300, 250]) rides.push(await offlinePurchase(new VirtualCardTransport(card), psam, { amount: fare }));
    expect(await balanceOnCard(card)).toBe(250);
    expect(rides.map((r) => r.offlineCounter)).toEqual([0, 1, 2]);
    expect(rides.map((r) => r.terminalSerial)).toEqual([1, 2, 3]);

    const answer = await uploadOfflineBatch(issuer, batchOf(gate, psam, 'GATE-T1-001', rides));
    expect(answer.userErrors).toEqual([]);
    expect(answer.batch!.records.map((r) => [r.amount, r.outcome])).toEqual([
      [200, 'ACCEPTED'],
      [300, 'ACCEPTED'],
      [250, 'ACCEPTED'],
    ]);
    expect(answer.batch!.records.every((r) => r.journalEntry)).toBe(true);
    expect(await purseBalance(world, asn)).toBe(250n);
    expect((await balanceOf(world.db.orm.em.fork(), revenue)) - revenueBefore).toBe(750n);

    // The same batch again (a lost answer) books nothing twice.
    const again = await uploadOfflineBatch(issuer, batchOf(gate, psam, 'GATE-T1-001', rides));
    expect(again.replayed).toBe(true);
    expect(await purseBalance(world, asn)).toBe(250n);
  });

  it('a batch with a forged TAC: that record is refused (BAD_TAC, not booked), the others are booked', async () => {
    const psam = await installedPsam(otherGate);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 1000 });
    const asn = await fundShadow(card, 1000);
    const honest = await offlinePurchase(new VirtualCardTransport(card), psam, { amount: 200 });
    const inflated = await offlinePurchase(new VirtualCardTransport(card), psam, { amount: 100 });
    // The terminal claims 900 for the second fare; the card's TAC proves 100, so the TAC is forged to match.
    const forged = { ...inflated, amount: 900, tac: ((parseInt(inflated.tac, 16) ^ 0x01) >>> 0).toString(16).toUpperCase().padStart(8, '0') };
    const answer = await uploadOfflineBatch(issuer, batchOf(otherGate, psam, 'GATE-T2-001', [honest, forged]));
    expect(answer.userErrors).toEqual([]);
    expect(answer.batch!.records.map((r) => [r.index, r.outcome, r.accepted])).toEqual([
      [0, 'ACCEPTED', true],
      [1, 'BAD_TAC', false],
    ]);
    expect(answer.batch!.records[1]!.journalEntry).toBeNull();
    expect(await purseBalance(world, asn)).toBe(800n);
  });

  it('a card short of the fare, one of another card company, or one keyed with a version the PSAM lacks is refused at the gate and leaves no record', async () => {
    const psam = await installedPsam(gate);
    const poor = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 100 });
    await expect(offlinePurchase(new VirtualCardTransport(poor), psam, { amount: 200 })).rejects.toMatchObject({ code: '9401' });
    expect(await balanceOnCard(poor)).toBe(100);
    // A card personalised with Shenzhen's keys under Guangzhou's city code: the card itself refuses the PSAM's MAC1.
    const foreign = issueCard({ city: world.gz, keys: world.szMasterKeys, balance: 1000 });
    await expect(offlinePurchase(new VirtualCardTransport(foreign), psam, { amount: 200 })).rejects.toBeInstanceOf(OfflinePurchaseError);
    expect(await balanceOnCard(foreign)).toBe(1000);
    // A card keyed with a purchase key version the card company never provisioned (2): the PSAM has no key for it.
    const newer = VirtualCpuCard.issue({ asn: '00000000000000099002', cityCode: world.gz.cardCode, masterKeys: world.gzMasterKeys, keyVersion: 2, algorithm: '3DES', balance: 1000 });
    await expect(offlinePurchase(new VirtualCardTransport(newer), psam, { amount: 200 })).rejects.toMatchObject({ code: 'NO_KEY' });
    expect(await balanceOnCard(newer)).toBe(1000);
  });

  it('a batch naming another city’s terminal number is refused whole, and nothing is recorded', async () => {
    const psam = await installedPsam(gate);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys, balance: 500 });
    await fundShadow(card, 500);
    const ride = await offlinePurchase(new VirtualCardTransport(card), psam, { amount: 200 });
    const before = await offlineBatchRows();
    const answer = await uploadOfflineBatch(issuer, batchOf(gate, psam, 'GATE-T1-SZ', [ride], szGate.terminalNumber));
    expect(answer.batch).toBeNull();
    expect(answer.userErrors).toEqual([{ code: 'OFFLINE_BATCH_REFUSED', field: ['input', 'body'], message: `TERMINAL_NUMBER_MISMATCH: the batch names terminal number 440300000101; this terminal is registered with 440100000101` }]);
    expect(await offlineBatchRows()).toBe(before);
  });

  it('a card company cannot provision a terminal of another city (NOT_FOUND), nor the operator any (FORBIDDEN)', async () => {
    const { psam, userErrors } = await provision(issuer, szGate);
    expect(psam).toBeNull();
    expect(userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    const operator = await apiClient(world, 'OPERATOR', null as unknown as string, ['readers:manage']);
    await expect(operator.request(PROVISION, { input: { terminal: gate.id } })).rejects.toMatchObject({ errors: [expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) })] });
    // Shenzhen's card company provisions its own gate: its number is Shenzhen's.
    const sz = await szIssuer.request<Provisioned>(PROVISION, { input: { terminal: szGate.id } });
    answers += JSON.stringify(sz);
    expect(sz.provisionTerminal.terminal!.terminalNumber).toBe('440300000101');
  });

  it('a card company whose PURCHASE key is kept in an HSM cannot provision a software PSAM (KEY_IN_HSM), and nothing is sent or recorded', async () => {
    const fs = await addCity(world, { code: 'FS', name: 'Foshan', cardCompanyName: 'Foshan Tong', cardCode: '5880' });
    await addMasterKeys(world, fs, '3DES');
    // Version 2 lives in the HSM (the row only names it): it never leaves, so no software PSAM can hold it.
    await world.db.orm.em.fork().execute(`insert into card_master_key (card_company_id, purpose, key_version, algorithm, sealed_key, stored_in) values (?, 'PURCHASE', 2, '3DES', null, 'PKCS11')`, [fs.cardCompanyId]);
    const fsGate = await newReader(world, 'FS-METRO-GATE-1', fs, undefined, '440600000001');
    const fsIssuer = await apiClient(world, 'ISSUER', fs.cardCompanyId, ['readers:manage']);
    const before = await provisioned();
    const { psam, userErrors } = await provision(fsIssuer, fsGate);
    expect(psam).toBeNull();
    expect(userErrors).toEqual([{ code: 'FORBIDDEN_OPERATION', field: ['input', 'terminal'], message: expect.stringMatching(/^KEY_IN_HSM: the PURCHASE master key version 2 is kept in an HSM/) }]);
    expect(await provisioned()).toBe(before);
  });

  it('a package opens only in its own terminal, and only as the host signed it', async () => {
    const { psam } = await provision(issuer, gate);
    const opts = { encryptionKeyPem: gate.encryptionKeyPem, terminal: gate.id, trustedCertificatesPem: gate.trustedCertificatesPem, cityCertificatePem: gate.cityPem };
    // Another terminal's key does not open it, nor does claiming to be that terminal.
    expect(() => SoftwarePsam.open(psam!, { ...opts, encryptionKeyPem: otherGate.encryptionKeyPem })).toThrow(PsamPackageError);
    expect(() => SoftwarePsam.open(psam!, { ...opts, terminal: otherGate.id })).toThrow(PsamPackageError);
    // A payload changed on the way (another terminal number) fails the host signature.
    const changed = { ...psam!, payload: psam!.payload.replace('440100000101', '440100000102') };
    expect(() => SoftwarePsam.open(changed, opts)).toThrow('the host signature over the package does not verify');
    // Signed by another city's host (Shenzhen's, chaining to the same root): a Guangzhou terminal refuses it.
    const { psam: szPackage } = (await szIssuer.request<Provisioned>(PROVISION, { input: { terminal: szGate.id } })).provisionTerminal;
    expect(() => SoftwarePsam.open(szPackage!, { ...opts, terminal: szGate.id })).toThrow('the host certificate is not from this terminal’s city CA');
    // Its own terminal installs it.
    expect(SoftwarePsam.open(szPackage!, { encryptionKeyPem: szGate.encryptionKeyPem, terminal: szGate.id, trustedCertificatesPem: szGate.trustedCertificatesPem, cityCertificatePem: szGate.cityPem }).terminalNumber).toBe('440300000101');
    // Guangzhou's package with Shenzhen's chain put in front: the signature is not Shenzhen's host's.
    expect(() => SoftwarePsam.open({ ...psam!, certificateChain: szPackage!.certificateChain }, opts)).toThrow(PsamPackageError);
  });

  it('the PSAM keys never appear in an API answer, a log line, the provisioning records, or the PSAM’s own printouts', async () => {
    const psam = await installedPsam(gate);
    const key = world.gzMasterKeys.purchase;
    const forms = [key.toUpperCase(), key.toLowerCase(), Buffer.from(key, 'hex').toString('base64'), Buffer.from(key, 'hex').toString('base64url')];
    const shows = (text: string) => forms.some((f) => text.includes(f));
    expect(answers.length).toBeGreaterThan(0);
    expect(shows(answers)).toBe(false);
    expect(logged).toContain('terminal PSAM provisioned');
    expect(shows(logged)).toBe(false);
    expect(shows(JSON.stringify(await world.db.orm.em.fork().execute(`select * from psam_provisioning`)))).toBe(false);
    expect(shows(JSON.stringify(psam)) || shows(inspect(psam, { showHidden: true, depth: 10 })) || shows(String(Object.keys(psam)))).toBe(false);
  });
});

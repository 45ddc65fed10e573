import { generateKeyPairSync, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_SESSION_MESSAGE, OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { createClient } from '../src/auth/clients.service.js';
import { toGlobalId } from '../src/graphql/global-id.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { storeMasterKeys } from '../src/readers/key-store.js';
import { registerReader } from '../src/readers/readers.service.js';
import { createWorkingCa, revokeCertificate } from '../src/pki/pki.service.js';
import { initRootCa } from '../src/pki/root-ca.js';
import { generateRsaKey, issueCertificate, newSerial, toPem } from '../src/pki/x509.js';
import { createCity } from '../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './support/database.js';
import { startTestServer, TEST_KEK, type TestServer } from './support/server.js';

const kek = Buffer.from(TEST_KEK, 'base64url');
let db: TestDatabase;
let server: TestServer;
let dir: string;
let issuer: OneCardClient;
let gzMasterKeys: { load: string; purchase: string; tac: string };
let szMasterKeys: { load: string; purchase: string; tac: string };

interface TestReader {
  id: string;
  serial: string;
  deviceKeyPem: string;
  nationalPem: string;
  cityPem: string;
  nationalSerial: string;
}
let reader: TestReader;

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

function csrFor(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

async function newReader(serial: string, cityId: string, cityCode: string, ownerId: string): Promise<TestReader> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const csr = csrFor(privateKey);
  const registered = await registerReader(db.orm.em.fork(), kek, { serial, model: 'OC-R1', owner: { kind: 'CARD_COMPANY', id: ownerId, name: 'cards' }, cityId, cityCode, nationalCsrPem: csr, cityCsrPem: csr, publicUrl: server.url });
  return { id: toGlobalId('Reader', registered.reader.id), serial, deviceKeyPem: privateKey, nationalPem: registered.nationalChainPem[0]!, cityPem: registered.cityChainPem[0]!, nationalSerial: registered.reader.national_certificate_serial };
}

let asnCounter = 0;
function card(opts: { city?: '5810' | '5840'; keys?: typeof gzMasterKeys; balance?: number } = {}) {
  return VirtualCpuCard.issue({
    asn: `0000000000000000${String(++asnCounter).padStart(4, '0')}`,
    cityCode: opts.city ?? '5810',
    masterKeys: opts.keys ?? gzMasterKeys,
    keyVersion: 1,
    algorithm: '3DES',
    balance: opts.balance ?? 0,
  });
}

beforeAll(async () => {
  db = await freshDatabase();
  server = await startTestServer(db.orm);
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-sessions-'));
  const em = db.orm.em.fork();
  const gz = await createCity(em, { code: 'GZ', name: 'Guangzhou', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Yangchengtong' });
  const sz = await createCity(em, { code: 'SZ', name: 'Shenzhen', timeZone: 'Asia/Shanghai', currency: 'CNY', cardCompanyName: 'Shenzhen Tong' });
  await em.execute(`update city set card_city_code = case code when 'GZ' then '5810' else '5840' end`);
  const root = await initRootCa(path.join(dir, 'root.json'), 'card session test root');
  await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'National', publicUrl: server.url });
  await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: gz.city.id, cityCode: 'GZ', name: 'GZ', publicUrl: server.url });
  await createWorkingCa(em, kek, root, { kind: 'CITY', cityId: sz.city.id, cityCode: 'SZ', name: 'SZ', publicUrl: server.url });
  const asHex = (k: Record<string, Buffer>) => ({ load: hex(k.LOAD!), purchase: hex(k.PURCHASE!), tac: hex(k.TAC!) });
  gzMasterKeys = asHex(await storeMasterKeys(em, kek, { cardCompanyId: gz.cardCompany.id, keyVersion: 1, algorithm: '3DES' }));
  szMasterKeys = asHex(await storeMasterKeys(em, kek, { cardCompanyId: sz.cardCompany.id, keyVersion: 1, algorithm: '3DES' }));
  reader = await newReader('GZ-COUNTER-1', gz.city.id, 'GZ', gz.cardCompany.id);
  const client = await createClient(em, { kind: 'ISSUER', tenantId: gz.cardCompany.id, name: 'GZ counter', scopes: ['readers:manage', 'topups:write', 'cards:read'] });
  issuer = new OneCardClient({ baseUrl: server.url, clientId: client.client.client_id, clientSecret: client.clientSecret!, scope: 'readers:manage topups:write cards:read' });
});
afterAll(async () => {
  await server.close();
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const OPEN = `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id state challenge nextSeq } userErrors { code message } } }`;

async function open(operation: 'BALANCE' | 'LOAD', amount?: number, on: TestReader = reader) {
  const data = await issuer.request<{ openCardSession: { session: { id: string; challenge: string }; userErrors: unknown[] } }>(OPEN, { input: { reader: on.id, operation, amount } });
  expect(data.openCardSession.userErrors).toEqual([]);
  return data.openCardSession.session;
}

const send = async (message: { session: string; seq: number; body: string; signature: string }) =>
  (await issuer.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage;

function agent(c: VirtualCpuCard, on: TestReader = reader, sender = send) {
  return new ReaderAgent({ deviceKey: on.deviceKeyPem, nationalCertificatePem: on.nationalPem, cityCertificatePem: on.cityPem, transport: new VirtualCardTransport(c), send: sender });
}

async function purseBalance(asn: string): Promise<bigint | undefined> {
  const [row] = await db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`card.${asn}.purse.CNY`]);
  return row ? BigInt(row.balance) : undefined;
}

async function auditOf(sessionGlobalId: string) {
  const id = Buffer.from(sessionGlobalId, 'base64url').toString().split(':')[1];
  return db.orm.em.fork().execute<{ step: string; outcome: string; refusal: string | null }[]>(`select step, outcome, refusal from card_session_audit where session_id = ? order by id`, [id]);
}

describe('card sessions through a running server', () => {
  it('reads the balance of a card', async () => {
    const c = card({ balance: 1234 });
    const session = await open('BALANCE');
    const done = await agent(c).run(session);
    expect(done).toMatchObject({ state: 'COMPLETED', result: { asn: c.asn, balance: 1234 } });
  });

  it('loads a card at the counter: MAC1 verified, MAC2 sealed to the reader, TAC verified, ledger posted', async () => {
    const c = card({ balance: 100 });
    const session = await open('LOAD', 5000);
    const done = await agent(c).run(session);
    expect(done.state).toBe('COMPLETED');
    expect(done.result).toMatchObject({ asn: c.asn, oldBalance: 100, newBalance: 5100, amount: 5000, onlineCounter: 1 });
    // The card itself now holds the value.
    const balance = new VirtualCardTransport(c);
    await balance.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
    expect(Buffer.from(await balance.transmit(Buffer.from('805C000204', 'hex'))).toString('hex')).toBe('000013ec9000');
    expect(await purseBalance(c.asn)).toBe(5000n);
    expect(await checkLedger(db.orm.em.fork())).toEqual([]);
    expect((await auditOf(session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'tacAnswer']);
  });
});

/** Drives a session by hand, so a test can tamper with what the reader says. */
async function manual(c: VirtualCpuCard, operation: 'BALANCE' | 'LOAD' = 'LOAD', on: TestReader = reader) {
  const session = await open(operation, operation === 'LOAD' ? 700 : undefined, on);
  const a = agent(c, on);
  const transport = new VirtualCardTransport(c);
  const message = (seq: number, body: unknown, tamper?: (text: string) => string) => {
    const text = JSON.stringify(body);
    return send({ session: session.id, seq, body: tamper ? tamper(text) : text, signature: a.sign(session.id, seq, text) });
  };
  const hello = (overrides: Record<string, unknown> = {}) => message(0, { challenge: session.challenge, nationalCertificate: on.nationalPem, cityCertificate: on.cityPem, ...overrides });
  const answer = async (seq: number, reply: SessionReply) => {
    const responses: string[] = [];
    for (const cmd of reply.commands) responses.push(Buffer.from(await transport.transmit(Buffer.from(cmd.apdu!, 'hex'))).toString('hex'));
    return responses;
  };
  return { session, message, hello, answer, agent: a };
}

async function expectRefused(reply: SessionReply, refusal: string, sessionId: string) {
  expect(reply.userErrors[0]?.code).toBe('CARD_SESSION_REFUSED');
  expect(reply.userErrors[0]?.message).toMatch(new RegExp(`^${refusal}`));
  expect(reply.session?.state).toBe('FAILED');
  expect(reply.commands).toEqual([]);
  const rows = await auditOf(sessionId);
  expect(rows.at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal });
}

describe('each refusal ends the session, changes no balance, and leaves an audit row', () => {
  it('a card whose MAC1 does not verify (keys of another card company)', async () => {
    const c = card({ keys: szMasterKeys });
    const m = await manual(c);
    const first = await m.hello();
    const reply = await m.message(1, { responses: await m.answer(1, first) });
    await expectRefused(reply, 'WRONG_MAC1', m.session.id);
    expect(await purseBalance(c.asn)).toBeUndefined();
  });

  it('a tampered reader signature', async () => {
    const m = await manual(card());
    await expectRefused(await m.hello().then(() => m.message(1, { responses: ['00'] }, (t) => t.replace('00', '01'))), 'BAD_SIGNATURE', m.session.id);
  });

  it('a reader whose certificate was revoked', async () => {
    const other = await newReader(`GZ-R-${randomUUID().slice(0, 8)}`, ...(await gzIds()));
    await revokeCertificate(db.orm.em.fork(), other.nationalSerial, 1);
    const m = await manual(card(), 'BALANCE', other);
    await expectRefused(await m.hello(), 'CERTIFICATE_REVOKED', m.session.id);
  });

  it('a certificate from an unknown CA', async () => {
    const key = generateRsaKey(2048);
    const rogueCa = issueCertificate({ subject: { commonName: 'Rogue CA' }, publicKey: forge.pki.setRsaPublicKey(key.privateKey.n, key.privateKey.e), serial: newSerial(), notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), profile: 'root-ca', selfKey: key.privateKey });
    const device = forge.pki.privateKeyFromPem(reader.deviceKeyPem) as forge.pki.rsa.PrivateKey;
    const rogue = issueCertificate({ subject: { commonName: reader.serial }, publicKey: forge.pki.setRsaPublicKey(device.n, device.e), serial: newSerial(), notBefore: new Date(), notAfter: new Date(Date.now() + 86_400_000), profile: 'reader', issuer: { certificate: rogueCa, privateKey: key.privateKey } });
    const m = await manual(card(), 'BALANCE');
    await expectRefused(await m.hello({ cityCertificate: toPem(rogue) }), 'UNKNOWN_CA', m.session.id);
  });

  it('a reader presenting only one of its two certificates', async () => {
    const m = await manual(card(), 'BALANCE');
    await expectRefused(await m.hello({ cityCertificate: undefined }), 'CERTIFICATE_MISSING', m.session.id);
  });

  it('a card of city B on a reader of city A without interoperation', async () => {
    const c = card({ city: '5840', keys: szMasterKeys });
    const m = await manual(c, 'BALANCE');
    const first = await m.hello();
    await expectRefused(await m.message(1, { responses: await m.answer(1, first) }), 'CROSS_CITY_NOT_ALLOWED', m.session.id);
  });

  it('a replayed message', async () => {
    const m = await manual(card(), 'BALANCE');
    expect((await m.hello()).session?.state).toBe('AUTHENTICATED');
    await expectRefused(await m.hello(), 'OUT_OF_ORDER', m.session.id);
  });

  it('a message out of order', async () => {
    const m = await manual(card(), 'BALANCE');
    await expectRefused(await m.message(1, { responses: [] }), 'OUT_OF_ORDER', m.session.id);
  });

  it('an expired session', async () => {
    const m = await manual(card(), 'BALANCE');
    await db.orm.em.fork().execute(`update card_session set expires_at = now() - interval '1 second' where id = ?`, [Buffer.from(m.session.id, 'base64url').toString().split(':')[1]]);
    await expectRefused(await m.hello(), 'SESSION_EXPIRED', m.session.id);
  });

  it('a second use of a finished session', async () => {
    const c = card();
    const m = await manual(c, 'BALANCE');
    const first = await m.hello();
    expect((await m.message(1, { responses: await m.answer(1, first) })).session?.state).toBe('COMPLETED');
    const again = await m.message(2, { responses: [] });
    expect(again.userErrors[0]?.message).toMatch(/^SESSION_FINISHED/);
    expect(again.session?.state).toBe('COMPLETED');
  });

  it('a card whose counter went backwards (a restored copy of an earlier state)', async () => {
    const c = card();
    const before = c.toJSON();
    expect((await agent(c).run(await open('LOAD', 300))).state).toBe('COMPLETED');
    const clone = VirtualCpuCard.fromJSON(before);
    const m = await manual(clone);
    const first = await m.hello();
    await expectRefused(await m.message(1, { responses: await m.answer(1, first) }), 'COUNTER_ROLLBACK', m.session.id);
    expect(await purseBalance(c.asn)).toBe(300n);
  });
});

async function gzIds(): Promise<[string, string, string]> {
  const [row] = await db.orm.em.fork().execute<{ city: string; company: string }[]>(`select c.id as city, cc.id as company from city c join card_company cc on cc.city_id = c.id where c.code = 'GZ'`);
  return [row!.city, 'GZ', row!.company];
}

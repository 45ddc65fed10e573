import { randomUUID } from 'node:crypto';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { type OneCardClient, VirtualCpuCard } from '../../sdk-js/src/index.js';
import { issueCard as registerCard, transitionCard } from '../src/cards/cards.service.js';
import { checkLedger } from '../src/ledger/ledger-check.js';
import { changeReaderStatus } from '../src/readers/readers.service.js';
import { revokeCertificate } from '../src/pki/pki.service.js';
import { generateRsaKey, issueCertificate, newSerial, toPem } from '../src/pki/x509.js';
import { addCity, addMasterKeys, apiClient, auditOf as auditIn, balanceOnCard, expectRefused as expectRefusedIn, issueCard, type MasterKeys, newReader, purseBalance as purseIn, sessionsOf, sessionUuid, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
let issuer: OneCardClient;
let reader: TestReader;

beforeAll(async () => {
  reader = await newReader(world, 'GZ-COUNTER-1', world.gz);
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['readers:manage', 'topups:write', 'cards:read']);
});

function card(opts: { city?: '5810' | '5840'; keys?: MasterKeys; balance?: number } = {}) {
  return issueCard({ city: opts.city === '5840' ? world.sz : world.gz, keys: opts.keys ?? world.gzMasterKeys, balance: opts.balance });
}

const sessions = () => sessionsOf(issuer, () => reader);
const open = (operation: 'BALANCE' | 'LOAD', amount?: number, on: TestReader = reader) => sessions().open(operation, amount, on);
const agent = (c: VirtualCpuCard, on: TestReader = reader) => sessions().agent(c, on);
const manual = (c: VirtualCpuCard, operation: 'BALANCE' | 'LOAD' = 'LOAD', on: TestReader = reader) => sessions().manual(c, operation, on);
const purseBalance = (asn: string) => purseIn(world, asn);
const auditOf = (sessionId: string) => auditIn(world, sessionId);
const expectRefused = (reply: Parameters<typeof expectRefusedIn>[1], refusal: string, sessionId: string) => expectRefusedIn(world, reply, refusal, sessionId);

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
    expect(await balanceOnCard(c)).toBe(0x13ec);
    expect(await purseBalance(c.asn)).toBe(5000n);
    expect(await checkLedger(world.db.orm.em.fork())).toEqual([]);
    expect((await auditOf(session.id)).map((a) => a.step)).toEqual(['open', 'hello', 'firstAnswers', 'tacAnswer']);
  });

  it('a reported balance that differs from the ledger shadow is recorded; one that agrees is not', async () => {
    const discrepancies = (asn: string) =>
      world.db.orm.em.fork().execute<{ card_balance: string; shadow_balance: string }[]>(`select card_balance, shadow_balance from card_balance_discrepancy where card_asn = ? order by id`, [asn]);
    // A card carrying value our ledger never issued (100 fen put on it elsewhere).
    const c = card({ balance: 100 });
    await agent(c).run(await open('BALANCE'));
    expect(await discrepancies(c.asn)).toEqual([{ card_balance: '100', shadow_balance: '0' }]);
    // After a load the card reports 600 and the shadow holds 500: still 100 apart, recorded again.
    await agent(c).run(await open('LOAD', 500));
    expect(await discrepancies(c.asn)).toHaveLength(2);
    // A card whose every fen went through the ledger: nothing to record.
    const clean = card();
    await agent(clean).run(await open('LOAD', 800));
    await agent(clean).run(await open('BALANCE'));
    expect(await discrepancies(clean.asn)).toEqual([]);
  });
});

describe('each refusal ends the session, changes no balance, and leaves an audit row', () => {
  it('a card whose MAC1 does not verify (keys of another card company)', async () => {
    const c = card({ keys: world.szMasterKeys });
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
    const other = await newReader(world, `GZ-R-${randomUUID().slice(0, 8)}`, world.gz);
    await revokeCertificate(world.db.orm.em.fork(), other.nationalSerial, 1);
    const m = await manual(card(), 'BALANCE', other);
    await expectRefused(await m.hello(), 'CERTIFICATE_REVOKED', m.session.id);
  });

  it('a reader revoked while its session was open (its certificates are revoked with it)', async () => {
    const other = await newReader(world, `GZ-R-${randomUUID().slice(0, 8)}`, world.gz);
    const m = await manual(card(), 'BALANCE', other);
    const [row] = await world.db.orm.em.fork().execute<{ id: string }[]>(`select id from reader where serial = ?`, [other.serial]);
    await changeReaderStatus(world.db.orm.em.fork(), row!.id, 'REVOKED');
    await expectRefused(await m.hello(), 'CERTIFICATE_REVOKED', m.session.id);
    // And it can open no new session.
    const reopened = await sessions().openRaw('BALANCE', undefined, other);
    expect(reopened.openCardSession.userErrors[0]?.message).toMatch(/REVOKED/);
  });

  it('a card naming a key version its card company does not have', async () => {
    const c = VirtualCpuCard.issue({ asn: '00000000000000009999', cityCode: world.gz.cardCode, masterKeys: world.gzMasterKeys, keyVersion: 7, algorithm: '3DES' });
    const m = await manual(c);
    const first = await m.hello();
    await expectRefused(await m.message(1, { responses: await m.answer(1, first) }), 'UNKNOWN_CARD_KEY', m.session.id);
  });

  it('another client relaying into a session: refused and audited, the session neither ended nor shown', async () => {
    const m = await manual(card(), 'BALANCE');
    const intruder = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
    const reply = await sessionsOf(intruder, () => reader).send({ session: m.session.id, seq: 0, body: '{}', signature: 'x' });
    expect(reply.session).toBeNull();
    expect(reply.userErrors[0]?.code).toBe('NOT_FOUND');
    expect((await auditOf(m.session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'NOT_THE_OPENER' });
    expect((await m.hello()).session?.state).toBe('AUTHENTICATED');
  });

  it('a card its card company blocked is refused online before any cryptogram leaves the host', async () => {
    const c = card({ balance: 500 });
    const em = world.db.orm.em.fork();
    const issued = await registerCard(em, world.gz.cardCompanyId, { cardNumber: '6214000000000000001', asn: c.asn, cardType: 'CPU', keyVersion: 1, issuedOn: '2026-01-01', expiresOn: '2031-01-01' });
    await em.transactional((tx) => transitionCard(tx, issued.id, 'BLOCKED', { reason: 'test', by: 'test' }));
    const m = await manual(c);
    const first = await m.hello();
    await expectRefused(await m.message(1, { responses: await m.answer(1, first) }), 'CARD_NOT_USABLE', m.session.id);
    expect(await balanceOnCard(c)).toBe(500);
  });

  it('a body that is JSON but not an object is refused as malformed', async () => {
    const m = await manual(card(), 'BALANCE');
    await expectRefused(await m.message(0, null), 'MALFORMED_MESSAGE', m.session.id);
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
    const c = card({ city: '5840', keys: world.szMasterKeys });
    const m = await manual(c, 'BALANCE');
    const first = await m.hello();
    await expectRefused(await m.message(1, { responses: await m.answer(1, first) }), 'CROSS_CITY_NOT_ALLOWED', m.session.id);
  });

  it('a card of a city with another currency is not loaded at this counter (one entry, one currency), before MAC2', async () => {
    const hk = await addCity(world, { code: 'HK', name: 'Hong Kong', cardCompanyName: 'Octopus', cardCode: '8520', currency: 'HKD' });
    const hkKeys = await addMasterKeys(world, hk, '3DES');
    await world.db.orm.em.fork().execute(`insert into city_interoperation (card_city_id, reader_city_id) values (?, ?)`, [hk.cityId, world.gz.cityId]);
    const c = issueCard({ city: hk, keys: hkKeys, balance: 100 });
    const done = await agent(c).run(await open('LOAD', 500));
    expect(done).toMatchObject({ state: 'FAILED', refusal: 'PURPOSE_REFUSED' });
    expect(await balanceOnCard(c)).toBe(100);
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
    await world.db.orm.em.fork().execute(`update card_session set expires_at = now() - interval '1 second' where id = ?`, [sessionUuid(m.session.id)]);
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

/**
 * Host → reader messages are signed (issue 17, item 1): the reader agent runs only what the host
 * key of its own city signed for this session, this reader and this message, and refuses anything
 * else before the card sees it. Each attack is made by the relay (the app between reader and
 * host, which holds the reader's certificate and so can seal to it): the reader refuses with a
 * HostMessageRefusedError, tells the host (an audit row HOST_MESSAGE_REFUSED, the session FAILED),
 * and no money moved, on the card or in the ledger.
 */
import { generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatM1Purse, readM1Purse } from '../../sdk-js/src/cards/m1-purse.js';
import { VirtualM1Card } from '../../sdk-js/src/cards/virtual-m1-card.js';
import { CARD_SESSION_MESSAGE, HostMessageRefusedError, type OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, type VirtualCpuCard } from '../../sdk-js/src/index.js';
import { ensureHostKey } from '../src/pki/host-key.js';
import { findCityCa } from '../src/pki/pki.service.js';
import { generateRsaKey, issueCertificate, issueForSubjectKey, newSerial, toPem } from '../src/pki/x509.js';
import { storeM1MasterKey } from '../src/readers/key-store.js';
import { M1_PURSE, m1SectorKeyB } from '../src/readers/m1/m1-script.js';
import * as apdu from '../src/readers/session/apdu.js';
import { sealForReader } from '../src/readers/session/envelope.js';
import { apiClient, auditOf, balanceOnCard, issueCard, kek, newReader, OPEN, purseBalance, type TestReader, useCardSessionWorld } from './support/card-sessions.js';

const world = useCardSessionWorld();
const run = promisify(execFile);

type Requester = Pick<OneCardClient, 'request'>;
type HostMessage = NonNullable<SessionReply['hostMessage']>;
let issuer: Requester;
let counter: TestReader;
let m1Master: Buffer;

/** What a relay can make on its own: a CA of its own and an EC host certificate from it. */
function relayersOwnSigner(): { key: KeyObject; chain: string[] } {
  const ca = generateRsaKey(2048);
  const now = Date.now();
  const caCert = issueCertificate({
    subject: { commonName: 'OneCard GZ City Working CA', organization: 'OneCard', country: 'CN' },
    publicKey: forge.pki.setRsaPublicKey(ca.privateKey.n, ca.privateKey.e),
    serial: newSerial(),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    profile: 'working-ca',
    selfKey: ca.privateKey,
  });
  const host = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const hostPem = issueForSubjectKey({
    subject: { commonName: 'GZ card session host', organization: 'OneCard', country: 'CN' },
    subjectPublicKeyInfoDer: host.publicKey.export({ type: 'spki', format: 'der' }),
    serial: newSerial(),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    profile: 'server',
    signingOnly: true,
    issuer: { certificate: caCert, privateKey: ca.privateKey },
  });
  return { key: host.privateKey, chain: [hostPem, toPem(caCert)] };
}

/** A host message as the relay writes it: the genuine one's fields, with its own changes, signed by `signer`. */
function rewrite(genuine: HostMessage, change: Record<string, unknown>, signer: { key: KeyObject; chain: string[] }): HostMessage {
  const payload = JSON.stringify({ ...JSON.parse(genuine.payload), ...change });
  return { payload, signature: sign('sha256', Buffer.from(payload), signer.key).toString('base64'), certificateChain: signer.chain };
}

/** The reader's encryption key as anyone holding its encryption certificate has it. */
const readerKeyOf = (reader: TestReader) => new X509Certificate(reader.encryptionPem!).publicKey.export({ type: 'spki', format: 'pem' }) as string;

type Relay = (seq: number, reply: SessionReply) => SessionReply | Promise<SessionReply>;

/** Opens a session and runs it through the SDK's reader agent, the relay free to change each host reply (seq: the message it answers). */
async function runThroughRelay(input: { reader: TestReader; operation: 'BALANCE' | 'LOAD'; amount?: number; cardType?: 'M1'; card: { transport: VirtualCardTransport } | { m1: VirtualM1Card }; relay: Relay }) {
  const opened = await issuer.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, {
    input: { reader: input.reader.id, operation: input.operation, amount: input.amount, cardType: input.cardType },
  });
  const session = opened.openCardSession.session;
  const agent = new ReaderAgent({
    deviceKey: input.reader.deviceKeyPem,
    nationalCertificatePem: input.reader.nationalPem,
    cityCertificatePem: input.reader.cityPem,
    trustedCertificatesPem: input.reader.trustedCertificatesPem, nationalKey: input.reader.nationalKeyPem, encryptionKey: input.reader.encryptionKeyPem, encryptionCertificatePem: input.reader.encryptionPem,
    ...input.card,
    send: async (message) => input.relay(message.seq, (await issuer.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage),
  });
  const outcome = await agent.run(session).then(
    (view) => ({ view, error: undefined }),
    (error: unknown) => ({ view: undefined, error }),
  );
  return { session, outcome };
}

/** The reader refused with `code`, told the host, and the host ended the session with an audit row. */
async function expectRefusedByReader(run: Awaited<ReturnType<typeof runThroughRelay>>, code: string) {
  expect(run.outcome.error).toBeInstanceOf(HostMessageRefusedError);
  expect((run.outcome.error as HostMessageRefusedError).code).toBe(code);
  expect((await auditOf(world, run.session.id)).at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal: 'HOST_MESSAGE_REFUSED' });
  const [row] = await world.db.orm.em.fork().execute<{ state: string; refusal: string }[]>(`select state, refusal from card_session where challenge = ?`, [run.session.challenge]);
  expect(row).toEqual({ state: 'FAILED', refusal: 'HOST_MESSAGE_REFUSED' });
}

let uidCounter = 0;
function m1Card(balance: number): VirtualM1Card {
  const uid = `C1A0${String(++uidCounter).padStart(4, '0')}`;
  const card = VirtualM1Card.create({ uid, sectorKeys: (sector, u) => ({ keyA: 'A0A1A2A3A4A5', keyB: m1SectorKeyB(m1Master, Buffer.from(u), sector) }) });
  card.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(m1Master, Buffer.from(uid, 'hex'), M1_PURSE.sector));
  formatM1Purse(card, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 }, balance);
  card.halt();
  return card;
}

/** What the M1 card's purse holds, read with its key B as its card company would. */
function m1Balance(card: VirtualM1Card): number {
  card.authenticate(M1_PURSE.valueBlock, 'B', m1SectorKeyB(m1Master, Buffer.from(card.uid, 'hex'), M1_PURSE.sector));
  const { balance } = readM1Purse(card, { sector: M1_PURSE.sector, valueBlock: 0, backupBlock: 1 });
  card.halt();
  return balance;
}

/** The relay's own M1 script: it counts on the sector the host's read script left open (no auth step). */
const relayersM1Script = [
  { op: 'increment', block: M1_PURSE.valueBlock, value: 5_000_000 },
  { op: 'transfer', block: M1_PURSE.valueBlock },
  { op: 'read', block: M1_PURSE.valueBlock },
];

beforeAll(async () => {
  m1Master = await storeM1MasterKey(world.db.orm.em.fork(), kek, { cardCompanyId: world.gz.cardCompanyId, keyVersion: 1 });
  issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write', 'cards:read']);
  counter = await newReader(world, 'HOSTSIG-COUNTER', world.gz);
});

describe('a relay’s own sealed script', () => {
  it('M1: its script, sealed to the reader and signed by its own CA’s host certificate, is refused after the host’s read script; the card is left halted', async () => {
    const card = m1Card(1_000);
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 100,
      cardType: 'M1',
      card: { m1: card },
      // Message 2 answered the host's read script (sector 1 opened with key B): the relay swaps the host's change script for its own.
      relay: (seq, reply) =>
        seq === 2
          ? { ...reply, hostMessage: rewrite(reply.hostMessage!, { commands: [{ sealedScript: sealForReader(readerKeyOf(counter), Buffer.from(JSON.stringify(relayersM1Script)), `${reply.session!.id}:3`) }] }, relayersOwnSigner()) }
          : reply,
    });
    await expectRefusedByReader(run, 'UNTRUSTED_CERTIFICATE');
    expect(m1Balance(card)).toBe(1_000);
    expect(await purseBalance(world, card.uid.toUpperCase())).toBeUndefined();
    // The read script ran and the reader halted the card after it: no sector is open for anyone.
    expect(() => card.read(M1_PURSE.valueBlock)).toThrow(/not authenticated/);
  });

  it('M1: the same script relayed without any host signature (as the commands field) is refused as unsigned', async () => {
    const card = m1Card(1_000);
    const run = await runThroughRelay({
      reader: counter,
      operation: 'BALANCE',
      cardType: 'M1',
      card: { m1: card },
      relay: (seq, reply) =>
        seq === 2
          ? { ...reply, commands: [{ sealedScript: sealForReader(readerKeyOf(counter), Buffer.from(JSON.stringify(relayersM1Script)), `${reply.session!.id}:3`) }], hostMessage: null }
          : reply,
    });
    expect(run.outcome.error).toBeInstanceOf(HostMessageRefusedError);
    expect((run.outcome.error as HostMessageRefusedError).code).toBe('UNSIGNED');
    expect(m1Balance(card)).toBe(1_000);
    // The balance read had completed at the host; the reader's report of the refusal is audited there too.
    expect((await auditOf(world, run.session.id)).at(-1)).toMatchObject({ step: 'refused', outcome: 'REFUSED' });
  });

  it('CPU: its own sealed APDU, signed by its own CA’s host certificate, never reaches the card', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 700,
      card: { transport: new VirtualCardTransport(card) },
      relay: (seq, reply) =>
        seq === 0 ? { ...reply, hostMessage: rewrite(reply.hostMessage!, { commands: [{ sealed: sealForReader(readerKeyOf(counter), apdu.selectApplication(), `${reply.session!.id}:1`) }] }, relayersOwnSigner()) } : reply,
    });
    await expectRefusedByReader(run, 'UNTRUSTED_CERTIFICATE');
    await expectNoMoneyMoved(card);
  });

  it('CPU: a message signed by another city’s genuine host key (it chains to the pinned root, not to this reader’s city CA) is refused', async () => {
    const szCa = await findCityCa(world.db.orm.em.fork(), world.sz.cityId);
    const sz = await ensureHostKey(world.db.orm.em.fork(), kek, szCa!.id, world.server.url);
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 700,
      card: { transport: new VirtualCardTransport(card) },
      relay: (seq, reply) => (seq === 0 ? { ...reply, hostMessage: rewrite(reply.hostMessage!, {}, { key: sz.privateKey, chain: sz.chainPem }) } : reply),
    });
    await expectRefusedByReader(run, 'UNTRUSTED_CERTIFICATE');
    await expectNoMoneyMoved(card);
  });
});

async function expectNoMoneyMoved(card: VirtualCpuCard) {
  expect(await balanceOnCard(card)).toBe(0);
  expect(await purseBalance(world, card.asn)).toBeUndefined();
}

describe('the host’s own messages, misused', () => {
  it('forged: the host’s payload changed (a larger load), its signature kept', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 700,
      card: { transport: new VirtualCardTransport(card) },
      relay: (seq, reply) => {
        if (seq !== 0) return reply;
        const genuine = reply.hostMessage!;
        // INITIALIZE FOR LOAD of 700 (0x2BC) becomes one of 100,000.00 (0x989680).
        const payload = genuine.payload.replace('805000020B01000002BC', '805000020B0100989680');
        expect(payload).not.toBe(genuine.payload);
        return { ...reply, hostMessage: { ...genuine, payload } };
      },
    });
    await expectRefusedByReader(run, 'BAD_SIGNATURE');
    await expectNoMoneyMoved(card);
  });

  it('replayed: the host’s genuine answer to message 0 handed back again in place of its answer to message 1', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    let first: HostMessage | undefined;
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 700,
      card: { transport: new VirtualCardTransport(card) },
      relay: (seq, reply) => {
        if (seq === 0) first = reply.hostMessage!;
        return seq === 1 ? { ...reply, hostMessage: first } : reply;
      },
    });
    await expectRefusedByReader(run, 'WRONG_SEQUENCE');
    await expectNoMoneyMoved(card);
  });

  it('from another session: the host’s genuine answer to another session’s hello on the same reader', async () => {
    const other = await issuer.request<{ openCardSession: { session: { id: string; challenge: string } } }>(OPEN, { input: { reader: counter.id, operation: 'LOAD', amount: 100_000 } });
    const otherSession = other.openCardSession.session;
    const signer = new ReaderAgent({ deviceKey: counter.deviceKeyPem, nationalCertificatePem: counter.nationalPem, cityCertificatePem: counter.cityPem, trustedCertificatesPem: counter.trustedCertificatesPem, nationalKey: counter.nationalKeyPem, encryptionKey: counter.encryptionKeyPem, encryptionCertificatePem: counter.encryptionPem, send: async () => ({}) as SessionReply });
    const hello = JSON.stringify({ challenge: otherSession.challenge, nationalCertificate: counter.nationalPem, cityCertificate: counter.cityPem, encryptionCertificate: counter.encryptionPem });
    const otherReply = (await issuer.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input: { session: otherSession.id, seq: 0, body: hello, signature: signer.sign(otherSession.id, 0, hello) } })).cardSessionMessage;
    expect(otherReply.hostMessage).toBeTruthy();

    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const run = await runThroughRelay({
      reader: counter,
      operation: 'LOAD',
      amount: 700,
      card: { transport: new VirtualCardTransport(card) },
      relay: (seq, reply) => (seq === 0 ? { ...reply, hostMessage: otherReply.hostMessage } : reply),
    });
    await expectRefusedByReader(run, 'WRONG_SESSION');
    await expectNoMoneyMoved(card);
  });

  it('untouched, the same relay path completes the load: the reader verified every host message and ran it', async () => {
    const card = issueCard({ city: world.gz, keys: world.gzMasterKeys });
    const run = await runThroughRelay({ reader: counter, operation: 'LOAD', amount: 700, card: { transport: new VirtualCardTransport(card) }, relay: (_seq, reply) => reply });
    expect(run.outcome.view).toMatchObject({ state: 'COMPLETED', result: { newBalance: 700 } });
    expect(await balanceOnCard(card)).toBe(700);
    expect(await purseBalance(world, card.asn)).toBe(700n);
  });
});

describe('the host certificate', () => {
  it('openssl verifies its chain to the root and reads it: an EC P-256 server certificate from the city CA that may only sign', async () => {
    const gzCa = await findCityCa(world.db.orm.em.fork(), world.gz.cityId);
    const host = await ensureHostKey(world.db.orm.em.fork(), kek, gzCa!.id, world.server.url);
    await fs.writeFile(path.join(world.dir, 'host.pem'), host.chainPem[0]!);
    await fs.writeFile(path.join(world.dir, 'host-ca.pem'), host.chainPem[1]!);
    await fs.writeFile(path.join(world.dir, 'host-root.pem'), counter.trustedCertificatesPem[0]!);
    const verified = await run('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', 'host-root.pem', '-untrusted', 'host-ca.pem', 'host.pem'], { cwd: world.dir });
    expect(verified.stdout).toBe('host.pem: OK\n');
    const { stdout: text } = await run('openssl', ['x509', '-in', 'host.pem', '-noout', '-text'], { cwd: world.dir });
    expect(text).toContain('id-ecPublicKey');
    expect(text).toContain('prime256v1');
    expect(text).toMatch(/X509v3 Key Usage: critical\s+Digital Signature\n/);
    expect(text).toMatch(/X509v3 Extended Key Usage:\s+TLS Web Server Authentication\n/);
    expect(text).toContain('CA:FALSE');
    // On record as the city CA issued it: revocable like every certificate it issues.
    const [row] = await world.db.orm.em.fork().execute<{ profile: string; ca_id: string }[]>(`select profile, ca_id from issued_certificate where certificate_pem = ?`, [host.chainPem[0]]);
    expect(row).toEqual({ profile: 'server', ca_id: gzCa!.id });
  });
});

/**
 * What the card-session tests share: a running server over a database of the file's own, a root CA
 * with a national and two city working CAs (GZ card code 5810, SZ 5840), card master keys for both
 * card companies, certified readers, virtual cards, and helpers to run a session through the SDK's
 * ReaderAgent or by hand (to tamper with what the reader says).
 */
import { M1_SETTLE_AFTER_EXPIRY_SECONDS } from '../../src/readers/session/m1-writes.js';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import type pino from 'pino';
import { afterAll, beforeAll, expect } from 'vitest';
import { type CardTransport, OneCardClient, ReaderAgent, type SessionReply, VirtualCardTransport, VirtualCpuCard } from '../../../sdk-js/src/index.js';
import { createCardholder } from '../../src/auth/cardholders.service.js';
import { createClient } from '../../src/auth/clients.service.js';
import { withLuhnCheckDigit } from '../../src/cards/cards.service.js';
import type { PrincipalKind } from '../../src/auth/principal.js';
import { toGlobalId } from '../../src/graphql/global-id.js';
import { ensureHostKey } from '../../src/pki/host-key.js';
import { createWorkingCa } from '../../src/pki/pki.service.js';
import { initRootCa, type RootCa } from '../../src/pki/root-ca.js';
import { type CardAlgorithm, storeMasterKeys } from '../../src/readers/key-store.js';
import { issueNationalCertificate, type ReaderOwnerKind, registerReader } from '../../src/readers/readers.service.js';
import { createCity, createMerchant } from '../../src/tenancy/tenancy.service.js';
import { freshDatabase, type TestDatabase } from './database.js';
import type { Orm } from '../../src/db/orm.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import { bearerClient, cardholderAccessToken } from './oauth.js';
import { startTestServer, TEST_KEK, type TestServer } from './server.js';

export const kek = Buffer.from(TEST_KEK, 'base64url');
export const hex = (b: Buffer) => b.toString('hex').toUpperCase();

export type MasterKeys = { load: string; purchase: string; tac: string };

export interface TestCity {
  cityId: string;
  cardCompanyId: string;
  /** The city's code (GZ) and the code its cards carry (5810). */
  code: string;
  cardCode: string;
}

export interface TestReader {
  id: string;
  serial: string;
  /** The city certificate's key: it signs the reader's messages after the hello. */
  deviceKeyPem: string;
  /** The national certificate's key (the hello) and the encryption certificate's (sealed commands); the device key for a SINGLE_KEY reader. */
  nationalKeyPem: string;
  encryptionKeyPem: string;
  nationalPem: string;
  cityPem: string;
  /** The encryption certificate; undefined for a SINGLE_KEY reader. */
  encryptionPem?: string;
  nationalSerial: string;
  /** The CA certificates the reader pins for host messages: the root. */
  trustedCertificatesPem: string[];
  /** Its registered terminal number (12 hex digits): the terminal field its card transactions carry. Unset where a test builds the reader by hand. */
  terminalNumber?: string;
}

export interface CardSessionWorld {
  db: TestDatabase;
  server: TestServer;
  dir: string;
  root: RootCa;
  gz: TestCity;
  sz: TestCity;
  gzMasterKeys: MasterKeys;
  szMasterKeys: MasterKeys;
}

/** Builds the world in beforeAll and tears it down in afterAll; the returned object is filled in by then. */
export function useCardSessionWorld(opts: { env?: () => Record<string, string>; log?: () => pino.Logger } = {}): CardSessionWorld {
  const world = {} as CardSessionWorld;
  beforeAll(async () => {
    Object.assign(world, await startWorld(opts.env?.() ?? {}, opts.log?.()));
  });
  afterAll(async () => {
    await world.server?.close();
    await world.db?.close();
    if (world.dir) await fs.rm(world.dir, { recursive: true, force: true });
  });
  return world;
}

async function startWorld(env: Record<string, string>, log?: pino.Logger): Promise<CardSessionWorld> {
  const db = await freshDatabase();
  const server = await startTestServer(db.orm, env, { log });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-sessions-'));
  const em = db.orm.em.fork();
  const root = await initRootCa(path.join(dir, 'root.json'), 'card session test root');
  await createWorkingCa(em, kek, root, { kind: 'NATIONAL', name: 'National', publicUrl: server.url });
  const world = { db, server, dir, root } as CardSessionWorld;
  world.gz = await addCity(world, { code: 'GZ', name: 'Guangzhou', cardCompanyName: 'Yangchengtong', cardCode: '5810' });
  world.sz = await addCity(world, { code: 'SZ', name: 'Shenzhen', cardCompanyName: 'Shenzhen Tong', cardCode: '5840' });
  world.gzMasterKeys = await addMasterKeys(world, world.gz, '3DES');
  world.szMasterKeys = await addMasterKeys(world, world.sz, '3DES');
  return world;
}

/** A city with its card company, the code its cards carry, and its working CA. */
export async function addCity(world: CardSessionWorld, input: { code: string; name: string; cardCompanyName: string; cardCode: string; currency?: string }): Promise<TestCity> {
  const em = world.db.orm.em.fork();
  const made = await createCity(em, { code: input.code, name: input.name, timeZone: 'Asia/Shanghai', currency: input.currency ?? 'CNY', cardCompanyName: input.cardCompanyName });
  await em.execute(`update city set card_city_code = ? where id = ?`, [input.cardCode, made.city.id]);
  const ca = await createWorkingCa(em, kek, world.root, { kind: 'CITY', cityId: made.city.id, cityCode: input.code, name: input.code, publicUrl: world.server.url });
  await ensureHostKey(em, kek, ca.id, world.server.url);
  return { cityId: made.city.id, cardCompanyId: made.cardCompany.id, code: input.code, cardCode: input.cardCode };
}

/** Fresh master keys for a card company (key version 1), returned as hex for the virtual cards. */
export async function addMasterKeys(world: CardSessionWorld, city: TestCity, algorithm: CardAlgorithm): Promise<MasterKeys> {
  const k = await storeMasterKeys(world.db.orm.em.fork(), kek, { cardCompanyId: city.cardCompanyId, keyVersion: 1, algorithm });
  return { load: hex(k.LOAD), purchase: hex(k.PURCHASE), tac: hex(k.TAC) };
}

const rsaKey = () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;

export function csrFor(privateKeyPem: string): string {
  const key = forge.pki.privateKeyFromPem(privateKeyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** A certified reader in a city, owned by its card company unless another owner is named. */
export async function newReader(world: CardSessionWorld, serial: string, city: TestCity, owner: { kind: ReaderOwnerKind; id: string } = { kind: 'CARD_COMPANY', id: city.cardCompanyId }, terminalNumber?: string): Promise<TestReader> {
  const [nationalKey, cityKey, encryptionKey] = [rsaKey(), rsaKey(), rsaKey()];
  const registered = await registerReader(world.db.orm.em.fork(), kek, {
    serial,
    model: 'OC-R1',
    owner: { ...owner, name: 'owner' },
    cityId: city.cityId,
    cityCode: city.code,
    terminalNumber,
    nationalCsrPem: csrFor(nationalKey),
    cityCsrPem: csrFor(cityKey),
    encryptionCsrPem: csrFor(encryptionKey),
    publicUrl: world.server.url,
    nationalAuthority: false,
  });
  // Both steps, as in the field: the card company registers, the national authority (the operator) issues the national certificate.
  const approved = await issueNationalCertificate(world.db.orm.em.fork(), kek, registered.reader.id, world.server.url);
  return {
    id: toGlobalId('Reader', registered.reader.id),
    serial,
    deviceKeyPem: cityKey,
    nationalKeyPem: nationalKey,
    encryptionKeyPem: encryptionKey,
    nationalPem: approved.nationalChainPem[0]!,
    cityPem: registered.cityChainPem[0]!,
    encryptionPem: registered.encryptionChainPem[0]!, nationalSerial: approved.reader.national_certificate_serial!, trustedCertificatesPem: [registered.cityChainPem.at(-1)!], terminalNumber: registered.reader.terminal_number };
}

/** An OAuth client of a tenant, talking to the server through the SDK. */
export async function apiClient(world: CardSessionWorld, kind: PrincipalKind, tenantId: string, scopes: string[]): Promise<OneCardClient> {
  const made = await createClient(world.db.orm.em.fork(), { kind, tenantId, name: `${kind} test client`, scopes });
  return new OneCardClient({ baseUrl: world.server.url, clientId: made.client.client_id, clientSecret: made.clientSecret!, scope: scopes.join(' ') });
}

let asnCounter = 0;

/** A virtual card of a city, issued with its card company's master keys (or others', to make one the host rejects). */
export function issueCard(opts: { city: TestCity; keys: MasterKeys; balance?: number; algorithm?: CardAlgorithm }): VirtualCpuCard {
  return VirtualCpuCard.issue({
    asn: `0000000000000000${String(++asnCounter).padStart(4, '0')}`,
    cityCode: opts.city.cardCode,
    masterKeys: opts.keys,
    keyVersion: 1,
    algorithm: opts.algorithm ?? '3DES',
    balance: opts.balance ?? 0,
  });
}

/** What the card itself says its e-purse holds. */
export async function balanceOnCard(c: VirtualCpuCard): Promise<number> {
  const t = new VirtualCardTransport(c);
  await t.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
  return Buffer.from(await t.transmit(Buffer.from('805C000204', 'hex'))).readUInt32BE(0);
}

export const OPEN = `mutation($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id state challenge nextSeq expiresAt } userErrors { code message } } }`;

export type Operation = 'BALANCE' | 'LOAD' | 'PURCHASE';

/**
 * The relay mutation, asking only for what CPU-card sessions use (the SDK's CARD_SESSION_MESSAGE
 * also asks for the M1 command fields, which these tests do not depend on), and the signed host
 * message the reader agent runs.
 */
const CARD_SESSION_MESSAGE = `mutation CardSessionMessage($input: CardSessionMessageInput!) {
  cardSessionMessage(input: $input) {
    session { id state challenge nextSeq result refusal }
    commands { apdu sealed { wrappedKey iv ciphertext tag } }
    hostMessage { payload signature certificateChain }
    userErrors { code message }
  }
}`;

/** Card sessions opened and relayed by one API client on its readers. */
export function sessionsOf(client: Pick<OneCardClient, 'request'>, defaultReader: () => TestReader) {
  const openRaw = (operation: Operation, amount?: number, on: TestReader = defaultReader()) =>
    client.request<{ openCardSession: { session: { id: string; challenge: string } | null; userErrors: { code: string; message: string }[] } }>(OPEN, { input: { reader: on.id, operation, amount } });

  async function open(operation: Operation, amount?: number, on: TestReader = defaultReader()) {
    const data = await openRaw(operation, amount, on);
    expect(data.openCardSession.userErrors).toEqual([]);
    return data.openCardSession.session!;
  }

  const send = async (message: { session: string; seq: number; body: string; signature: string }) =>
    (await client.request<{ cardSessionMessage: SessionReply }>(CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage;

  function agent(c: VirtualCpuCard, on: TestReader = defaultReader(), transport: CardTransport = new VirtualCardTransport(c)) {
    return new ReaderAgent({ deviceKey: on.deviceKeyPem, nationalCertificatePem: on.nationalPem, cityCertificatePem: on.cityPem, trustedCertificatesPem: on.trustedCertificatesPem, ...separateKeysOf(on), transport, send });
  }

  /** Drives a session by hand, so a test can tamper with what the reader says. */
  async function manual(c: VirtualCpuCard, operation: Operation = 'LOAD', on: TestReader = defaultReader(), amount = 700) {
    const session = await open(operation, operation === 'BALANCE' ? undefined : amount, on);
    const a = agent(c, on);
    const transport = new VirtualCardTransport(c);
    const message = (seq: number, body: unknown, tamper?: (text: string) => string) => {
      const text = JSON.stringify(body);
      return send({ session: session.id, seq, body: tamper ? tamper(text) : text, signature: a.sign(session.id, seq, text) });
    };
    const hello = (overrides: Record<string, unknown> = {}) => message(0, { challenge: session.challenge, nationalCertificate: on.nationalPem, cityCertificate: on.cityPem, ...(on.encryptionPem ? { encryptionCertificate: on.encryptionPem } : {}), ...overrides });
    const answer = async (_seq: number, reply: SessionReply) => {
      const responses: string[] = [];
      for (const cmd of reply.commands) responses.push(Buffer.from(await transport.transmit(Buffer.from(cmd.apdu!, 'hex'))).toString('hex'));
      return responses;
    };
    return { session, message, hello, answer, agent: a };
  }

  return { openRaw, open, send, agent, manual };
}

/** The ledger's shadow of a card's purse, or undefined if the card never went through the ledger. */
export async function purseBalance(world: CardSessionWorld, asn: string): Promise<bigint | undefined> {
  const [row] = await world.db.orm.em.fork().execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [`card.${asn}.purse.CNY`]);
  return row ? BigInt(row.balance) : undefined;
}

export const sessionUuid = (sessionGlobalId: string) => Buffer.from(sessionGlobalId, 'base64url').toString().split(':')[1]!;

export async function auditOf(world: CardSessionWorld, sessionGlobalId: string) {
  return world.db.orm.em.fork().execute<{ step: string; outcome: string; refusal: string | null }[]>(`select step, outcome, refusal from card_session_audit where session_id = ? order by id`, [sessionUuid(sessionGlobalId)]);
}

/** A refusal: the error names it, the session is FAILED with no commands, and the last audit row records it. */
export async function expectRefused(world: CardSessionWorld, reply: SessionReply, refusal: string, sessionId: string) {
  expect(reply.userErrors[0]?.code).toBe('CARD_SESSION_REFUSED');
  expect(reply.userErrors[0]?.message).toMatch(new RegExp(`^${refusal}`));
  expect(reply.session?.state).toBe('FAILED');
  expect(reply.commands).toEqual([]);
  const rows = await auditOf(world, sessionId);
  expect(rows.at(-1)).toEqual({ step: 'refused', outcome: 'REFUSED', refusal });
}

type Requester = Pick<OneCardClient, 'request'>;

/**
 * A relay whose connection breaks at message `seq`: `'request'` — the message never reaches the
 * host; `'answer'` — the host handles it but its answer never comes back (the card may have acted).
 */
export function brokenRelay(client: Requester, seq: number, lost: 'request' | 'answer', message = 'connection lost'): Requester {
  return {
    async request<T>(query: string, variables?: Record<string, unknown>): Promise<T> {
      const at = (variables as { input?: { seq?: number } } | undefined)?.input?.seq;
      if (at === seq && lost === 'request') throw new Error(message);
      const reply = await client.request<T>(query, variables);
      if (at === seq) throw new Error(message);
      return reply;
    },
  };
}

/** Ends a session's time now, as its 120 s running out would. */
export async function expireSession(world: CardSessionWorld, sessionGlobalId: string): Promise<void> {
  await world.db.orm.em.fork().execute(`update card_session set expires_at = now() - interval '1 second' where id = ?`, [sessionUuid(sessionGlobalId)]);
}

/**
 * A session that expired long enough ago for its unanswered M1 write to be settled from the card's
 * value (M1_SETTLE_AFTER_EXPIRY_SECONDS past its expiry): no reader runs its script any more.
 */
export async function expireSessionPastSettleWait(world: CardSessionWorld, sessionGlobalId: string): Promise<void> {
  await world.db.orm.em.fork().execute(`update card_session set expires_at = now() - make_interval(secs => ?) where id = ?`, [M1_SETTLE_AFTER_EXPIRY_SECONDS + 1, sessionUuid(sessionGlobalId)]);
}

/**
 * The three ways the last message of a CPU load or purchase (seq 2: the card's TAC after it acted)
 * is lost, by name: a relay corrupts it (the host refuses BAD_SIGNATURE), the app dies before sending
 * it, or the session's 120 s pass first (SESSION_EXPIRED). `tacHexDigits`: what precedes the card's
 * 9000 in the body: the TAC (8) of CREDIT FOR LOAD, the TAC and MAC2 (16) of DEBIT FOR PURCHASE.
 */
export function lastMessageLost(world: CardSessionWorld, tacHexDigits: 8 | 16): Record<string, (client: Requester) => Requester> {
  const answered = new RegExp(`"([0-9A-F]{${tacHexDigits}})9000"`);
  return {
    'the relay corrupts the last message': (client) => ({
      request: <T>(query: string, variables?: Record<string, unknown>) => {
        const input = (variables as { input?: { seq?: number; body?: string } } | undefined)?.input;
        if (input?.seq !== 2) return client.request<T>(query, variables);
        return client.request<T>(query, { input: { ...input, body: input.body!.replace(answered, `"${'0'.repeat(tacHexDigits)}9000"`) } });
      },
    }),
    'the app dies after the card answered': (client) => brokenRelay(client, 2, 'request', 'app died'),
    'the session limit passes': (client) => ({
      request: async <T>(query: string, variables?: Record<string, unknown>) => {
        const input = (variables as { input?: { seq?: number; session?: string } } | undefined)?.input;
        if (input?.seq === 2) await expireSession(world, input.session!);
        return client.request<T>(query, variables);
      },
    }),
  };
}

const cardNumbers = new Map<string, number>();

/** A valid test card number: `prefix` (12 digits), a running number, and the Luhn check digit. */
export function testCardNumber(prefix: string): string {
  const n = (cardNumbers.get(prefix) ?? 0) + 1;
  cardNumbers.set(prefix, n);
  return withLuhnCheckDigit(`${prefix}${String(n).padStart(15 - prefix.length, '0')}`);
}

/**
 * A cardholder and the card company's app signed in for them the way a real app is (authorization
 * code with PKCE, over HTTP): the holder's id and a GraphQL caller with the app's token.
 */
export async function cardholderApp(world: CardSessionWorld, username: string, scopes = ['card:read', 'card:topup']) {
  const em = world.db.orm.em.fork();
  const id = (await createCardholder(em, { username, password: `${username} password 1`, displayName: username })).id;
  const redirectUri = 'http://127.0.0.1:8799/callback';
  const { client } = await createClient(em, { kind: 'CARDHOLDER_APP', tenantId: world.gz.cardCompanyId, name: 'Card App', scopes, redirectUris: [redirectUri] });
  const token = await cardholderAccessToken(world.server.url, { clientId: client.client_id, redirectUri, username, password: `${username} password 1`, scope: scopes.join(' ') });
  return { id, app: bearerClient(world.server.url, token) };
}

/** A reader's national and encryption keys and its encryption certificate, as ReaderAgent options. */
export const separateKeysOf = (r: TestReader) => ({ nationalKey: r.nationalKeyPem, encryptionKey: r.encryptionKeyPem, encryptionCertificatePem: r.encryptionPem });

/** What the SDK's ReaderAgent needs of a test reader: its keys and certificates. */
export function readerAgentOptions(r: TestReader) {
  return {
    deviceKey: r.deviceKeyPem,
    nationalKey: r.nationalKeyPem,
    encryptionKey: r.encryptionKeyPem,
    nationalCertificatePem: r.nationalPem,
    cityCertificatePem: r.cityPem,
    encryptionCertificatePem: r.encryptionPem,
    trustedCertificatesPem: r.trustedCertificatesPem,
  };
}

/** Waits until some backend (asked through `orm`, a pool of its own) waits for a lock in a statement containing `fragment`. */
export async function waitForBlocked(orm: Orm, fragment: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const rows = await orm.em.fork().execute<{ n: string }[]>(`select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like ?`, [`%${fragment}%`]);
    if (Number(rows[0]!.n) > 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nobody waited for a lock in a statement with ${fragment}`);
}

/**
 * Another transaction (on `orm`, a pool of its own) that locks the ledger account `code` (a card's
 * purse), says so (`held`), waits for `goOn()`, then runs `then`: how the lock-order tests stand
 * an upload, or one side of a cycle, beside a card-session message. Its failure is kept, not thrown.
 * In a cycle, PostgreSQL ends whichever side's deadlock check fires first; this side checks only
 * after 30 s, so the message (which waited first) is always the one ended, however loaded the machine.
 */
export function holdAccountThen(orm: Orm, code: string, then: (tx: EntityManager) => Promise<unknown>) {
  let isHeld!: () => void;
  const held = new Promise<void>((r) => (isHeld = r));
  let goOn!: () => void;
  const mayGoOn = new Promise<void>((r) => (goOn = r));
  const other = { held, goOn, failure: undefined as unknown, done: Promise.resolve() };
  other.done = orm.em
    .fork()
    .transactional(async (tx) => {
      await tx.execute(`select id from ledger_account where code = ? for update`, [code]);
      await tx.execute(`set local deadlock_timeout = '30s'`);
      isHeld();
      await mayGoOn;
      await then(tx);
    })
    .catch((err: unknown) => {
      other.failure = err;
    });
  return other;
}

/**
 * The parties of a card-payment test, made in its `beforeAll` (never a payment there: code run in a
 * hook counts as run by every test under mutation testing, docs/testing.md): a merchant of the
 * Guangzhou world with its API client, the card company's client, a counter reader to load cards,
 * and a cardholder with their app and home reader. `tag` names them apart from other files'.
 */
export async function paymentParties(world: CardSessionWorld, opts: { tag: string; merchantName: string; merchantScopes?: string[] }) {
  const merchantId = (await createMerchant(world.db.orm.em.fork(), { cityId: world.gz.cityId, name: opts.merchantName })).id;
  const merchant = await apiClient(world, 'MERCHANT', merchantId, opts.merchantScopes ?? ['payments:write', 'payments:read']);
  const issuer = await apiClient(world, 'ISSUER', world.gz.cardCompanyId, ['topups:write']);
  const counter = await newReader(world, `${opts.tag.toUpperCase()}-COUNTER`, world.gz);
  const { id: holderId, app } = await cardholderApp(world, `${opts.tag}-holder`);
  const home = await newReader(world, `HOME-${opts.tag}-holder`, world.gz, { kind: 'CARDHOLDER', id: holderId });
  return { merchantId, merchant, issuer, counter, holderId, app, home };
}

/** A payment the merchant creates over GraphQL (no userErrors expected): its global id. */
export async function createPaymentAs(merchant: Pick<OneCardClient, 'request'>, amount: number, orderReference: string): Promise<string> {
  const made = await merchant.request<{ createPayment: { payment: { id: string }; userErrors: unknown[] } }>(
    `mutation($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id } userErrors { code field message } } }`,
    { input: { amount, currency: 'CNY', orderReference, idempotencyKey: `create-${orderReference}` } },
  );
  expect(made.createPayment.userErrors).toEqual([]);
  return made.createPayment.payment.id;
}

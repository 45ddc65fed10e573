import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import forge from 'node-forge';
import { ALG_3DES, ALG_SM4, type AlgorithmId, algorithmId } from '../../cardcrypto/algorithm.js';
import { loadMac1, loadMac2, loadSessionKey, loadTac, purchaseMac1, purchaseMac2, purchaseSessionKey, purchaseTac, verifyMac } from '../../cardcrypto/epurse.js';
import { findCardByAsn } from '../../cards/cards.service.js';
import { toGlobalId } from '../../graphql/global-id.js';
import { LedgerError, LedgerErrorCode } from '../../ledger/ledger.errors.js';
import { checkLeaf, findCityCa } from '../../pki/pki.service.js';
import { publicKeyFingerprint } from '../../pki/x509.js';
import { type KeyPurpose, type KeyStore, UnknownCardKeyError } from '../key-store.js';
import type { ReaderRow } from '../readers.service.js';
import * as apdu from './apdu.js';
import { m1StepFor } from './m1-steps.js';
import { cardPurseBalance } from './card-purse.js';
import { sealForReader, type SealedCommand, verifyReaderSignature } from './envelope.js';
import { SessionError, type SessionRefusal } from './session.errors.js';

export type CardOperation = 'BALANCE' | 'LOAD' | 'PURCHASE';
export type SessionState = 'OPEN' | 'AUTHENTICATED' | 'AWAITING_TAC' | 'AWAITING_PURSE' | 'AWAITING_WRITE' | 'COMPLETED' | 'FAILED';
/** A CPU (e-purse) card speaks APDUs and proves itself with MACs; an M1 card is driven by sealed scripts. */
export type CardType = 'CPU' | 'M1';

/** Sessions are short: a card is in the field for seconds (DESIGN.md §6 asks for at most 120 s). */
export const SESSION_TTL_SECONDS = 120;
/** The key index of the load and purchase keys the host asks the card to use. */
const KEY_INDEX = 1;
/** Amounts travel as 4 bytes on the wire (CARD-PROTOCOL.md: amounts are 4-byte big-endian fen). */
export const MAX_CARD_AMOUNT = 0xffff_ffffn;
/** A terminal transaction serial is 4 bytes; after the last one it starts again at 1. */
const MAX_TERMINAL_SERIAL = 0xffff_ffff;

export interface SessionRow {
  id: string;
  reader_id: string;
  operation: CardOperation;
  card_type: CardType;
  amount: string | null;
  state: SessionState;
  challenge: string;
  next_seq: number;
  expires_at: Date;
  opened_by_client: string;
  card_asn: string | null;
  context: SessionContext;
  result: Record<string, unknown> | null;
  refusal: SessionRefusal | null;
}

/** What INITIALIZE FOR LOAD told the host, kept for the TAC check. */
interface LoadInit {
  oldBalance: number;
  onlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  date: string;
  time: string;
}

/** What INITIALIZE FOR PURCHASE told the host and what the host sent with MAC1, kept for MAC2 and the TAC. */
interface PurchaseInit {
  balance: number;
  offlineCounter: number;
  keyVersion: number;
  algorithmId: number;
  /** The card's random, hex: SESPK is derived again from it rather than stored. */
  random: string;
  terminalSerial: number;
  date: string;
  time: string;
}

export interface SessionContext {
  /** Who finishes the operation's business side when the card is done (e.g. `counter-load`). */
  purpose?: string;
  purposeData?: Record<string, unknown>;
  publicKeyPem?: string;
  cardCompanyId?: string;
  cityCode?: string;
  /** The card's currency: the one of its card company's city. */
  currency?: string;
  init?: LoadInit;
  purchase?: PurchaseInit;
  /** M1: the purse before and (expected) after the script. */
  m1?: { oldValue: number; newValue: number };
}

/** A command for the reader: a plain APDU, or a sealed one carrying a secret. */
export interface ReaderCommand {
  apdu?: string;
  sealed?: SealedCommand;
  /** M1: ask the card's UID. */
  readUid?: boolean;
  /** M1: a script sealed to the reader. */
  sealedScript?: SealedCommand;
}

export interface CompletedOperation {
  session: SessionRow;
  reader: ReaderRow;
  cardCompanyId: string;
  asn: string;
  /** The card's currency (its city's): the purse shadow's. */
  currency: string;
  result: Record<string, unknown>;
}

/**
 * What other contexts plug in: when a session of their purpose completes, they record its
 * business effect (ledger entry, pending load marked loaded, ...) in the same transaction. A
 * SessionError (or a ledger refusing for want of funds, which becomes PURSE_MISMATCH) refuses the
 * step: nothing the step wrote stays.
 */
export type CompletionHandler = (em: EntityManager, done: CompletedOperation) => Promise<void>;
export const completionHandlers = new Map<string, CompletionHandler>();

/**
 * Told of every completed operation after its ledger entry, in the same transaction (e.g. to send
 * a low-balance event after a purchase). An observer must not refuse: the card has already acted.
 */
export type PurseObserver = (em: EntityManager, done: CompletedOperation) => Promise<void>;
export const purseObservers: PurseObserver[] = [];

export interface PendingDebit {
  session: SessionRow;
  reader: ReaderRow;
  cardCompanyId: string;
  asn: string;
  currency: string;
  amount: number;
  /** The balance the card reported in INITIALIZE FOR PURCHASE. */
  cardBalance: number;
  /**
   * A CPU card's offline counter before this purchase, the newest record of its log (null when
   * empty), and the terminal id, date and time MAC1 will bind (a debited card logs them). Null for
   * an M1 card, which has neither counter nor log.
   */
  offlineCounter: number | null;
  lastRecord: apdu.TransactionRecord | null;
  terminal: string | null;
  date: string | null;
  time: string | null;
  now: Date;
}

/**
 * What a purpose may check before the host lets the card pay (before MAC1 leaves the host), e.g.
 * that its merchant still takes payments in the card's currency. It refuses with a SessionError;
 * once the card has debited, refusing only leaves a card debited and nothing booked.
 */
export type DebitGuard = (em: EntityManager, pending: PendingDebit) => Promise<void>;
export const debitGuards = new Map<string, DebitGuard>();

export interface PendingCredit {
  session: SessionRow;
  reader: ReaderRow;
  card: CardIdentity;
  amount: number;
  /** What INITIALIZE FOR LOAD told the host; MAC1 has proven it. */
  oldBalance: number;
  onlineCounter: number;
  /** The newest record of the card's transaction log, or null when the log is empty. */
  lastRecord: apdu.TransactionRecord | null;
  /** The terminal id, date and time the host is about to bind into MAC2. */
  terminal: string;
  date: string;
  time: string;
  now: Date;
}

/**
 * What a purpose may check, and claim, before MAC2 leaves the host (after which the card can be
 * credited), e.g. that a pending load is still owed and no other session is writing it. It refuses
 * with a SessionError; work that must stand despite the refusal goes in the error's `keep`.
 */
export type CreditGuard = (em: EntityManager, pending: PendingCredit) => Promise<void>;
export const creditGuards = new Map<string, CreditGuard>();

/**
 * Told when a session of its purpose is refused, in the refusal's own transaction (after the
 * step's work rolled back), e.g. to count a payment's failed attempts.
 */
export type RefusalHandler = (em: EntityManager, session: SessionRow, refusal: SessionRefusal) => Promise<void>;
export const refusalHandlers = new Map<string, RefusalHandler>();

export interface SessionDeps {
  keyStore: KeyStore;
  now?: () => Date;
}

/** The 6-byte terminal id a reader's card transactions carry (offline uploads verify TACs with it too). */
export function terminalIdOf(reader: Pick<ReaderRow, 'serial'>): Buffer {
  return createHash('sha256').update(`terminal:${reader.serial}`).digest().subarray(0, 6);
}

/** Date and time on the card in the reader's city (all demo cities are UTC+8; Asia/Shanghai). */
function cardClock(now: Date): { date: string; time: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false })
      .formatToParts(now)
      .map((p) => [p.type, p.value]),
  );
  return { date: `${parts.year}${parts.month}${parts.day}`, time: `${parts.hour === '24' ? '00' : parts.hour}${parts.minute}${parts.second}` };
}

const hex = (b: Buffer) => b.toString('hex').toUpperCase();

async function audit(em: EntityManager, sessionId: string, seq: number | null, step: string, outcome: 'ACCEPTED' | 'REFUSED', refusal: SessionRefusal | null, detail: Record<string, unknown> = {}) {
  await em.execute(`insert into card_session_audit (session_id, seq, step, outcome, refusal, detail) values (?, ?, ?, ?, ?, ?)`, [sessionId, seq, step, outcome, refusal, JSON.stringify(detail)]);
}

/** Opens a session for one operation on one reader; the reader proves itself against the challenge. */
export async function openSession(
  em: EntityManager,
  input: { reader: ReaderRow; operation: CardOperation; cardType?: CardType; amount?: bigint; clientId: string; purpose?: string; purposeData?: Record<string, unknown>; now?: Date },
): Promise<SessionRow> {
  // The amount goes to the card in 4 bytes; a larger one would be silently cut by the encoder.
  if (input.amount !== undefined && (input.amount <= 0n || input.amount > MAX_CARD_AMOUNT)) throw new RangeError(`a card amount is 1 to ${MAX_CARD_AMOUNT}`);
  if (input.operation !== 'BALANCE' && input.amount === undefined) throw new RangeError(`a ${input.operation} session needs an amount`);
  const id = randomUUID();
  const now = input.now ?? new Date();
  const [row] = await em.execute<SessionRow[]>(
    `insert into card_session (id, reader_id, operation, card_type, amount, state, challenge, expires_at, opened_by_client, context)
     values (?, ?, ?, ?, ?, 'OPEN', ?, ?, ?, ?) returning *`,
    [
      id,
      input.reader.id,
      input.operation,
      input.cardType ?? 'CPU',
      input.amount?.toString() ?? null,
      randomBytes(32).toString('hex'),
      new Date(+now + SESSION_TTL_SECONDS * 1000),
      input.clientId,
      JSON.stringify({ purpose: input.purpose, purposeData: input.purposeData }),
    ],
  );
  await audit(em, id, null, 'open', 'ACCEPTED', null, { operation: input.operation, amount: input.amount?.toString() });
  return row!;
}

export interface IncomingMessage {
  sessionId: string;
  seq: number;
  body: string;
  signature: string;
  clientId: string;
}

export type MessageOutcome = { ok: true; session: SessionRow; commands: ReaderCommand[] } | { ok: false; session: SessionRow | null; refusal: SessionRefusal; message: string };

/**
 * One message from a reader. The checks run in this order, each with its own refusal: the session
 * exists, is the caller's, is neither finished nor expired, the sequence number is the next one,
 * the body parses; then the hello (certificates, reader, signature) or the step (signature, card
 * answers, card cryptograms). A refusal is audited, ends the session and changes no balance.
 */
export async function handleMessage(em: EntityManager, deps: SessionDeps, message: IncomingMessage): Promise<MessageOutcome> {
  const now = deps.now?.() ?? new Date();
  try {
    // A SessionError leaves this transaction by throwing, so everything the step wrote rolls back.
    const outcome = await em.transactional((tx) => runStep(tx, deps, now, message));
    if (outcome) return { ok: true, ...outcome };
    return { ok: false, session: null, refusal: 'SESSION_FINISHED', message: 'no such session' };
  } catch (err) {
    // A card that names a key its card company does not have is a refusal like any other.
    const refusal = err instanceof UnknownCardKeyError ? new SessionError('UNKNOWN_CARD_KEY', err.message) : err;
    if (!(refusal instanceof SessionError)) throw err;
    if (refusal.refusal === 'NOT_THE_OPENER') {
      // Someone else's session: audited, but neither ended nor shown to the caller.
      await audit(em, message.sessionId, message.seq, 'refused', 'REFUSED', 'NOT_THE_OPENER', { client: message.clientId });
      return { ok: false, session: null, refusal: refusal.refusal, message: refusal.message };
    }
    return recordRefusal(em, message, refusal);
  }
}

async function runStep(tx: EntityManager, deps: SessionDeps, now: Date, message: IncomingMessage): Promise<{ session: SessionRow; commands: ReaderCommand[] } | null> {
  const [session] = await tx.execute<SessionRow[]>(`select * from card_session where id = ? for update`, [message.sessionId]);
  if (!session) return null;
  const [reader] = await tx.execute<ReaderRow[]>(`select * from reader where id = ?`, [session.reader_id]);
  checkEnvelope(session, message, now);
  const body = parseBody(message.body);
  const step = stepFor(session);
  const result = await step(tx, deps, now, session, reader!, message, body);
  await audit(tx, session.id, message.seq, step.name, 'ACCEPTED', null, result.auditDetail);
  const [updated] = await tx.execute<SessionRow[]>(
    `update card_session set state = ?, next_seq = next_seq + 1, context = ?, card_asn = coalesce(?, card_asn), result = ?,
            finished_at = case when ? = 'COMPLETED' then now() end
      where id = ? returning *`,
    [result.state, JSON.stringify(result.context), result.asn ?? null, result.result ? JSON.stringify(result.result) : null, result.state, session.id],
  );
  return { session: updated!, commands: result.commands };
}

/** The checks every message passes before its content is looked at. */
function checkEnvelope(session: SessionRow, message: IncomingMessage, now: Date): void {
  if (session.opened_by_client !== message.clientId) throw new SessionError('NOT_THE_OPENER', 'only the client that opened a session may relay its messages');
  if (session.state === 'COMPLETED' || session.state === 'FAILED') throw new SessionError('SESSION_FINISHED', `the session is ${session.state}`);
  if (now > new Date(session.expires_at)) throw new SessionError('SESSION_EXPIRED', 'the session has expired');
  if (message.seq !== session.next_seq) throw new SessionError('OUT_OF_ORDER', `expected message ${session.next_seq}, got ${message.seq}`);
}

function parseBody(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new SessionError('MALFORMED_MESSAGE', 'the body is not JSON');
  }
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new SessionError('MALFORMED_MESSAGE', 'the body is a JSON object');
  return body as Record<string, unknown>;
}

/**
 * A card the card company has declared LOST, BLOCKED, REPLACED or EXPIRED is refused online at once,
 * before any cryptogram leaves the host. A card the registry does not know yet (issued before it
 * existed) is served as before.
 */
export async function refuseUnusableCard(em: EntityManager, asn: string): Promise<void> {
  const card = await findCardByAsn(em, asn);
  if (card && card.status !== 'ACTIVE') throw new SessionError('CARD_NOT_USABLE', `the card is ${card.status}`);
}

/** The refusal is written in its own transaction, after the step's work rolled back. */
function recordRefusal(em: EntityManager, message: IncomingMessage, err: SessionError): Promise<MessageOutcome> {
  return em.transactional(async (tx) => {
    const [session] = await tx.execute<SessionRow[]>(`select * from card_session where id = ? for update`, [message.sessionId]);
    if (!session) return { ok: false as const, session: null, refusal: 'SESSION_FINISHED' as const, message: 'no such session' };
    await audit(tx, session.id, message.seq, 'refused', 'REFUSED', err.refusal, { message: err.message, ...err.detail });
    await err.keep?.(tx);
    const onRefusal = session.context.purpose ? refusalHandlers.get(session.context.purpose) : undefined;
    await onRefusal?.(tx, session, err.refusal);
    // A finished session stays as it finished; anything else is over now.
    const [updated] =
      session.state === 'COMPLETED' || session.state === 'FAILED'
        ? [session]
        : await tx.execute<SessionRow[]>(`update card_session set state = 'FAILED', refusal = ?, finished_at = now() where id = ? returning *`, [err.refusal, session.id]);
    return { ok: false as const, session: updated!, refusal: err.refusal, message: err.message };
  });
}

export interface StepResult {
  state: SessionState;
  context: SessionContext;
  commands: ReaderCommand[];
  asn?: string;
  result?: Record<string, unknown>;
  auditDetail?: Record<string, unknown>;
}

export type Step = (em: EntityManager, deps: SessionDeps, now: Date, session: SessionRow, reader: ReaderRow, message: IncomingMessage, body: Record<string, unknown>) => Promise<StepResult>;

/** Which step a message is, from the session's state (and, for the last one, its operation). */
function stepFor(session: SessionRow): Step {
  if (session.state === 'OPEN') return hello;
  if (session.card_type === 'M1') return m1StepFor(session.state);
  if (session.state === 'AUTHENTICATED') return firstAnswers;
  return session.operation === 'PURCHASE' ? debitAnswer : tacAnswer;
}

/** Message 0: the reader proves itself with both chains and a signature over the challenge. */
const hello: Step = async (em, _deps, now, session, reader, message, body) => {
  if (body.challenge !== session.challenge) throw new SessionError('CHALLENGE_MISMATCH', 'the signed challenge is not this session’s');
  const nationalPem = typeof body.nationalCertificate === 'string' ? body.nationalCertificate : undefined;
  const cityPem = typeof body.cityCertificate === 'string' ? body.cityCertificate : undefined;
  if (!nationalPem || !cityPem) throw new SessionError('CERTIFICATE_MISSING', 'a reader presents both its national and its city certificate');
  const cityCa = await findCityCa(em, reader.city_id);
  const checks = [
    await checkLeaf(em, nationalPem, { caId: 'national', profile: 'reader', now }),
    cityCa ? await checkLeaf(em, cityPem, { caId: cityCa.id, profile: 'reader', now }) : ({ ok: false, refusal: 'UNKNOWN_CA' } as const),
  ];
  for (const check of checks) {
    if (!check.ok) {
      const refusal: SessionRefusal = check.refusal === 'REVOKED' ? 'CERTIFICATE_REVOKED' : check.refusal === 'EXPIRED' || check.refusal === 'NOT_YET_VALID' ? 'CERTIFICATE_EXPIRED' : 'UNKNOWN_CA';
      throw new SessionError(refusal, `a reader certificate was refused: ${check.refusal}`);
    }
  }
  const [national, city] = checks as { ok: true; certificate: forge.pki.Certificate; row: { serial: string } }[];
  if (national!.row.serial !== reader.national_certificate_serial || city!.row.serial !== reader.city_certificate_serial || publicKeyFingerprint(city!.certificate.publicKey) !== reader.public_key_fingerprint) {
    throw new SessionError('CERTIFICATE_NOT_THIS_READER', 'the certificates are not the ones registered for this reader');
  }
  if (reader.status !== 'ACTIVE') throw new SessionError('READER_NOT_ACTIVE', `the reader is ${reader.status}`);
  const publicKeyPem = forge.pki.publicKeyToPem(city!.certificate.publicKey);
  if (!verifyReaderSignature(publicKeyPem, toGlobalId('CardSession', session.id), message.seq, message.body, message.signature)) throw new SessionError('BAD_SIGNATURE', 'the reader signature does not verify');
  // An M1 card first tells its UID (its sector keys derive from it); a CPU card answers APDUs.
  const commands: ReaderCommand[] = session.card_type === 'M1' ? [{ readUid: true }] : firstCommands(session, reader).map((c) => ({ apdu: hex(c) }));
  return { state: 'AUTHENTICATED', context: { ...session.context, publicKeyPem }, commands };
};

/** SELECT, the card's identity (SFI 0x15), then what the operation asks first. */
function firstCommands(session: SessionRow, reader: ReaderRow): Buffer[] {
  const amount = Number(session.amount);
  const rest = {
    BALANCE: () => [apdu.getBalance()],
    // Loads and purchases also read the card's newest log record: it settles an operation whose answer was lost (CARD-PROTOCOL.md §8).
    LOAD: () => [apdu.readLastTransaction(), apdu.initializeForLoad(KEY_INDEX, amount, terminalIdOf(reader))],
    PURCHASE: () => [apdu.readLastTransaction(), apdu.initializeForPurchase(KEY_INDEX, amount, terminalIdOf(reader))],
  }[session.operation];
  return [apdu.selectApplication(), apdu.readPublicData(), ...rest()];
}

/** The card's newest transaction log record; an empty log (6A83) is null. */
function lastRecordOf(answer: string | undefined): apdu.TransactionRecord | null {
  return cardAnswer(() => {
    try {
      return apdu.parseTransactionRecord(apdu.ok(answer, 'READ RECORD'));
    } catch (err) {
      if (err instanceof apdu.CardAnswerError && err.statusWord === apdu.SW_RECORD_NOT_FOUND) return null;
      throw err;
    }
  });
}

export function verifyStepSignature(session: SessionRow, message: IncomingMessage): void {
  if (!verifyReaderSignature(session.context.publicKeyPem!, toGlobalId('CardSession', session.id), message.seq, message.body, message.signature)) throw new SessionError('BAD_SIGNATURE', 'the reader signature does not verify');
}

export function responsesOf(body: Record<string, unknown>, count: number): string[] {
  const responses = body.responses;
  if (!Array.isArray(responses) || responses.length !== count) throw new SessionError('MALFORMED_MESSAGE', `expected ${count} card responses`);
  return responses as string[];
}

/** Reads a card answer; a card refusing becomes CARD_ERROR, or the refusal its status word names. */
function cardAnswer<T>(read: () => T, byStatusWord: Record<string, SessionRefusal> = {}): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof apdu.CardAnswerError) throw new SessionError((err.statusWord && byStatusWord[err.statusWord]) || 'CARD_ERROR', err.message);
    throw err;
  }
}

/** The algorithm id a card reported, if we implement it; anything else is the card's fault. */
function supportedAlgorithm(id: number): AlgorithmId {
  try {
    return algorithmId(id);
  } catch {
    throw new SessionError('CARD_ERROR', `unsupported algorithm id ${id}`);
  }
}

/**
 * The card's key for one purpose, diversified by its ASN. The card says which algorithm it
 * computes with; the card company's master key says which it was issued with: they must agree,
 * or the host would compute MACs for a card under the wrong cipher.
 */
async function cardKeyFor(deps: SessionDeps, req: { cardCompanyId: string; purpose: KeyPurpose; keyVersion: number; asn: Buffer; algorithm: AlgorithmId }): Promise<Buffer> {
  const { key, algorithm } = await deps.keyStore.cardKey(req);
  if ((algorithm === 'SM4' ? ALG_SM4 : ALG_3DES) !== req.algorithm) throw new SessionError('CARD_ERROR', `the card reports algorithm id ${req.algorithm}, its card company's keys are ${algorithm}`);
  return key;
}

/** The highest counters each card has shown; a lower one now means a copy of an earlier card state. */
type CounterKind = 'online_counter' | 'offline_counter';

async function refuseCounterRollback(em: EntityManager, asn: string, kind: CounterKind, counter: number): Promise<void> {
  const [seen] = await em.execute<Record<CounterKind, number>[]>(`select ${kind} from card_counter where asn = ?`, [asn]);
  if (seen && counter < seen[kind]) throw new SessionError('COUNTER_ROLLBACK', `the card's ${kind.replace('_', ' ')} went back from ${seen[kind]} to ${counter}`);
}

async function recordCounter(em: EntityManager, asn: string, kind: CounterKind, counter: number): Promise<void> {
  await em.execute(
    `insert into card_counter (asn, ${kind}) values (?, ?)
     on conflict (asn) do update set ${kind} = greatest(card_counter.${kind}, excluded.${kind}), updated_at = now()`,
    [asn, counter],
  );
}

export interface CardIdentity {
  asn: string;
  asnBytes: Buffer;
  cityCode: string;
  cardCompanyId: string;
  currency: string;
}

/** Who issued the card (its city code names the card company whose keys it carries), and may it be used here. */
async function identifyCard(em: EntityManager, reader: ReaderRow, selected: string | undefined, publicData: string | undefined): Promise<CardIdentity> {
  const card = cardAnswer(() => {
    apdu.ok(selected, 'SELECT');
    return apdu.parsePublicData(apdu.ok(publicData, 'READ BINARY'));
  });
  const [issuer] = await em.execute<{ city_id: string; card_company_id: string; currency: string }[]>(
    `select c.id as city_id, cc.id as card_company_id, c.currency from city c join card_company cc on cc.city_id = c.id where c.card_city_code = ?`,
    [card.cityCode],
  );
  if (!issuer) throw new SessionError('UNKNOWN_CARD_ISSUER', `no card company for city code ${card.cityCode}`);
  if (issuer.city_id !== reader.city_id) {
    const [allowed] = await em.execute(`select 1 from city_interoperation where card_city_id = ? and reader_city_id = ?`, [issuer.city_id, reader.city_id]);
    if (!allowed) throw new SessionError('CROSS_CITY_NOT_ALLOWED', 'this reader’s city does not accept cards of the card’s city');
  }
  await refuseUnusableCard(em, hex(card.asn));
  return { asn: hex(card.asn), asnBytes: card.asn, cityCode: card.cityCode, cardCompanyId: issuer.card_company_id, currency: issuer.currency.trim() };
}

/** Everything the operation-specific half of message 1 works with. */
export interface FirstAnswer {
  em: EntityManager;
  deps: SessionDeps;
  now: Date;
  session: SessionRow;
  reader: ReaderRow;
  message: IncomingMessage;
  card: CardIdentity;
  context: SessionContext;
}

/** Message 1: the card's identity, then the answer to the operation's first command. */
const firstAnswers: Step = async (em, deps, now, session, reader, message, body) => {
  verifyStepSignature(session, message);
  const [selected, publicData, ...rest] = responsesOf(body, session.operation === 'BALANCE' ? 3 : 4);
  const card = await identifyCard(em, reader, selected, publicData);
  const context: SessionContext = { ...session.context, cardCompanyId: card.cardCompanyId, cityCode: card.cityCode, currency: card.currency };
  const start = { BALANCE: balanceRead, LOAD: loadInitialized, PURCHASE: purchaseInitialized }[session.operation];
  return start({ em, deps, now, session, reader, message, card, context }, rest);
};

/** A balance read completes at once: GET BALANCE answered 4 bytes. */
async function balanceRead(s: FirstAnswer, [answer]: string[]): Promise<StepResult> {
  const data = cardAnswer(() => apdu.ok(answer, 'GET BALANCE'));
  if (data.length !== 4) throw new SessionError('CARD_ERROR', `GET BALANCE answered ${data.length} bytes, expected 4`);
  const result = { asn: s.card.asn, balance: data.readUInt32BE(0) };
  await complete(s.em, s.session, s.reader, s.card, result);
  return { state: 'COMPLETED', context: s.context, commands: [], asn: s.card.asn, result, auditDetail: result };
}

/** A load: the card's MAC1 proves its load key; the host answers with MAC2, sealed to the reader. */
async function loadInitialized(s: FirstAnswer, [logAnswer, answer]: string[]): Promise<StepResult> {
  const { card, session, reader } = s;
  const lastRecord = lastRecordOf(logAnswer);
  const init = cardAnswer(() => apdu.parseInitializeForLoad(apdu.ok(answer, 'INITIALIZE FOR LOAD')));
  await refuseCounterRollback(s.em, card.asn, 'online_counter', init.onlineCounter);
  const algorithm = supportedAlgorithm(init.algorithmId);
  const dlk = await cardKeyFor(s.deps, { cardCompanyId: card.cardCompanyId, purpose: 'LOAD', keyVersion: init.keyVersion, asn: card.asnBytes, algorithm });
  const terminalId = terminalIdOf(reader);
  const sessionKey = loadSessionKey({ algorithm, loadKey: dlk, random: init.random, onlineCounter: init.onlineCounter });
  const amount = Number(session.amount);
  const expected = loadMac1({ algorithm, sessionKey, oldBalance: init.oldBalance, amount, terminalId });
  if (!verifyMac(expected, init.mac1)) throw new SessionError('WRONG_MAC1', 'MAC1 does not verify with the card’s load key');
  const { date, time } = cardClock(s.now);
  const guard = session.context.purpose ? creditGuards.get(session.context.purpose) : undefined;
  await guard?.(s.em, { session, reader, card, amount, oldBalance: init.oldBalance, onlineCounter: init.onlineCounter, lastRecord, terminal: hex(terminalId), date, time, now: s.now });
  const mac2 = loadMac2({ algorithm, sessionKey, amount, terminalId, date, time });
  const sealed = sealForReader(session.context.publicKeyPem!, apdu.creditForLoad(date, time, mac2), `${toGlobalId('CardSession', session.id)}:${s.message.seq + 1}`);
  return {
    state: 'AWAITING_TAC',
    context: { ...s.context, init: { oldBalance: init.oldBalance, onlineCounter: init.onlineCounter, keyVersion: init.keyVersion, algorithmId: algorithm, date, time } },
    commands: [{ sealed }],
    asn: card.asn,
    auditDetail: { asn: card.asn, oldBalance: init.oldBalance, onlineCounter: init.onlineCounter },
  };
}

/**
 * A purchase: the host plays the reader's PSAM (CARD-PROTOCOL.md §5). Before MAC1 leaves the host
 * (after which the card can pay), everything that could refuse the purchase is checked, so a
 * refusal never leaves a card debited with nothing booked.
 */
async function purchaseInitialized(s: FirstAnswer, [logAnswer, answer]: string[]): Promise<StepResult> {
  const { card, session, reader } = s;
  const lastRecord = lastRecordOf(logAnswer);
  const init = cardAnswer(() => apdu.parseInitializeForPurchase(apdu.ok(answer, 'INITIALIZE FOR PURCHASE')), { [apdu.SW_INSUFFICIENT_BALANCE]: 'INSUFFICIENT_BALANCE' });
  await refuseCounterRollback(s.em, card.asn, 'offline_counter', init.offlineCounter);
  const algorithm = supportedAlgorithm(init.algorithmId);
  const amount = Number(session.amount);
  const { date, time } = cardClock(s.now);
  // The purpose first: a payment whose earlier attempt the card took is settled, not charged again.
  await guardDebit(s, { amount, cardBalance: init.balance, offlineCounter: init.offlineCounter, lastRecord, terminal: hex(terminalIdOf(reader)), date, time });
  await refuseUncoveredPurse(s.em, card, amount, init.balance);
  const terminalSerial = await nextTerminalSerial(s.em, reader.id);
  const purchase: PurchaseInit = { balance: init.balance, offlineCounter: init.offlineCounter, keyVersion: init.keyVersion, algorithmId: algorithm, random: hex(init.random), terminalSerial, date, time };
  const sessionKey = await purchaseKeyFor(s.deps, card.cardCompanyId, card.asnBytes, purchase);
  const mac1 = purchaseMac1({ algorithm, sessionKey, amount, terminalId: terminalIdOf(reader), date, time });
  const sealed = sealForReader(session.context.publicKeyPem!, apdu.debitForPurchase(terminalSerial, date, time, mac1), `${toGlobalId('CardSession', session.id)}:${s.message.seq + 1}`);
  return {
    state: 'AWAITING_TAC',
    context: { ...s.context, purchase },
    commands: [{ sealed }],
    asn: card.asn,
    auditDetail: { asn: card.asn, balance: init.balance, offlineCounter: init.offlineCounter, terminalSerial },
  };
}

/**
 * Every value on a card went through our ledger (a load credits the purse shadow), so the shadow
 * must cover the purchase. If it does not, the card holds value we never issued (or spent offline
 * what we have not heard of yet): refuse before the card pays, rather than debit it and book nothing.
 */
export async function refuseUncoveredPurse(em: EntityManager, card: CardIdentity, amount: number, cardBalance: number): Promise<void> {
  const shadow = await cardPurseBalance(em, card.asn, card.currency);
  if (shadow < BigInt(amount)) {
    throw new SessionError('PURSE_MISMATCH', `the ledger's purse of card ${card.asn} holds ${shadow}, less than ${amount}`, { asn: card.asn, shadow: shadow.toString(), cardBalance, amount });
  }
}

/** The purpose's own checks before the card pays (see DebitGuard). */
export async function guardDebit(s: FirstAnswer, card: Pick<PendingDebit, 'amount' | 'cardBalance' | 'offlineCounter' | 'lastRecord' | 'terminal' | 'date' | 'time'>): Promise<void> {
  const guard = s.session.context.purpose ? debitGuards.get(s.session.context.purpose) : undefined;
  await guard?.(s.em, { session: s.session, reader: s.reader, cardCompanyId: s.card.cardCompanyId, asn: s.card.asn, currency: s.card.currency, now: s.now, ...card });
}

/** The reader's next terminal transaction serial: per reader, increasing, wrapping after FFFFFFFF. */
async function nextTerminalSerial(em: EntityManager, readerId: string): Promise<number> {
  const [row] = await em.execute<{ last_serial: string }[]>(
    `insert into reader_terminal_serial (reader_id, last_serial) values (?, 1)
     on conflict (reader_id) do update
       set last_serial = case when reader_terminal_serial.last_serial >= ? then 1 else reader_terminal_serial.last_serial + 1 end, updated_at = now()
     returning last_serial`,
    [readerId, MAX_TERMINAL_SERIAL],
  );
  return Number(row!.last_serial);
}

/** SESPK, derived from DPK each time it is needed: no session key is ever stored. */
async function purchaseKeyFor(deps: SessionDeps, cardCompanyId: string, asn: Buffer, p: PurchaseInit): Promise<Buffer> {
  const algorithm = p.algorithmId as AlgorithmId;
  const dpk = await cardKeyFor(deps, { cardCompanyId, purpose: 'PURCHASE', keyVersion: p.keyVersion, asn, algorithm });
  return purchaseSessionKey({ algorithm, purchaseKey: dpk, random: Buffer.from(p.random, 'hex'), offlineCounter: p.offlineCounter, terminalSerial: p.terminalSerial });
}

/** Message 2 of a load: CREDIT FOR LOAD's TAC proves the card took exactly this load. */
const tacAnswer: Step = async (em, deps, _now, session, reader, message, body) => {
  verifyStepSignature(session, message);
  const [credit] = responsesOf(body, 1);
  const tac = cardAnswer(() => apdu.ok(credit, 'CREDIT FOR LOAD'));
  const init = session.context.init!;
  const amount = Number(session.amount);
  const asnBytes = Buffer.from(session.card_asn!, 'hex');
  const algorithm = init.algorithmId as AlgorithmId;
  const dtk = await cardKeyFor(deps, { cardCompanyId: session.context.cardCompanyId!, purpose: 'TAC', keyVersion: init.keyVersion, asn: asnBytes, algorithm });
  const expected = loadTac({ algorithm, tacKey: dtk, newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId: terminalIdOf(reader), date: init.date, time: init.time });
  if (!verifyMac(expected, tac)) throw new SessionError('WRONG_TAC', 'the TAC does not prove this load');
  await recordCounter(em, session.card_asn!, 'online_counter', init.onlineCounter + 1);
  const result = { asn: session.card_asn!, oldBalance: init.oldBalance, newBalance: init.oldBalance + amount, amount, onlineCounter: init.onlineCounter + 1, tac: hex(tac) };
  await complete(em, session, reader, cardOf(session), result);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
};

/**
 * Message 2 of a purchase: DEBIT FOR PURCHASE answers TAC || MAC2. MAC2 proves the card holding
 * this session's SESPK debited; the TAC (under DTK, which the host alone shares with the card)
 * proves exactly this amount, terminal, serial, date and time. Only then is the purchase booked.
 */
const debitAnswer: Step = async (em, deps, _now, session, reader, message, body) => {
  verifyStepSignature(session, message);
  const [debit] = responsesOf(body, 1);
  const { tac, mac2 } = cardAnswer(() => apdu.parseDebitForPurchase(apdu.ok(debit, 'DEBIT FOR PURCHASE')));
  const p = session.context.purchase!;
  const card = cardOf(session);
  const amount = Number(session.amount);
  const algorithm = p.algorithmId as AlgorithmId;
  // What the card answered stays with a refusal: a card that debited and failed a check is a case to reconcile.
  const evidence = { asn: card.asn, amount, offlineCounter: p.offlineCounter, terminalSerial: p.terminalSerial, date: p.date, time: p.time, response: debit };
  const sessionKey = await purchaseKeyFor(deps, card.cardCompanyId, card.asnBytes, p);
  if (!verifyMac(purchaseMac2({ algorithm, sessionKey, amount }), mac2)) throw new SessionError('WRONG_MAC2', 'MAC2 does not verify with this session’s purchase key', evidence);
  const dtk = await cardKeyFor(deps, { cardCompanyId: card.cardCompanyId, purpose: 'TAC', keyVersion: p.keyVersion, asn: card.asnBytes, algorithm });
  const expected = purchaseTac({ algorithm, tacKey: dtk, amount, terminalId: terminalIdOf(reader), terminalSerial: p.terminalSerial, date: p.date, time: p.time });
  if (!verifyMac(expected, tac)) throw new SessionError('WRONG_TAC', 'the TAC does not prove this purchase', evidence);
  await recordCounter(em, card.asn, 'offline_counter', p.offlineCounter + 1);
  const result = { asn: card.asn, oldBalance: p.balance, newBalance: p.balance - amount, amount, offlineCounter: p.offlineCounter + 1, terminalSerial: p.terminalSerial, tac: hex(tac) };
  try {
    await complete(em, session, reader, card, result);
  } catch (err) {
    // The card proved it debited and moved its counter on; a copy of its earlier state must still be caught.
    if (err instanceof SessionError) err.keep = (tx) => recordCounter(tx, card.asn, 'offline_counter', p.offlineCounter + 1);
    throw err;
  }
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
};

/** The card as message 1 identified it, read back from the session. */
export function cardOf(session: SessionRow): CardIdentity {
  const c = session.context;
  return { asn: session.card_asn!, asnBytes: Buffer.from(session.card_asn!, 'hex'), cityCode: c.cityCode!, cardCompanyId: c.cardCompanyId!, currency: c.currency ?? 'CNY' };
}

/**
 * Hands the finished operation to its purpose. A purse shadow the ledger will not take below zero
 * (a card spending value we never booked, or a race with another session of the same card) refuses
 * the step as PURSE_MISMATCH: the whole step rolls back, and the audit row keeps what the card proved.
 */
export async function complete(em: EntityManager, session: SessionRow, reader: ReaderRow, card: CardIdentity, result: Record<string, unknown>): Promise<void> {
  const handler = session.context.purpose ? completionHandlers.get(session.context.purpose) : undefined;
  if (session.context.purpose && !handler) throw new Error(`no completion handler for ${session.context.purpose}`);
  try {
    await handler?.(em, { session, reader, cardCompanyId: card.cardCompanyId, asn: card.asn, currency: card.currency, result });
  } catch (err) {
    if (err instanceof LedgerError && err.code === LedgerErrorCode.INSUFFICIENT_FUNDS) throw new SessionError('PURSE_MISMATCH', `the ledger refused: ${err.message}`, result);
    throw err;
  }
  await compareWithShadow(em, session, card, result);
  const done = { session, reader, cardCompanyId: card.cardCompanyId, asn: card.asn, currency: card.currency, result };
  for (const observe of purseObservers) await observe(em, done);
}

/**
 * Every balance a card reports is held against the ledger's shadow of its purse (after this
 * session's own entry), and a difference is recorded for the card company to look into: value we
 * never issued, offline spending we have not heard of yet, or a write that went wrong.
 */
async function compareWithShadow(em: EntityManager, session: SessionRow, card: CardIdentity, result: Record<string, unknown>): Promise<void> {
  const reported = typeof result.balance === 'number' ? result.balance : typeof result.newBalance === 'number' ? result.newBalance : undefined;
  if (reported === undefined) return;
  const shadow = await cardPurseBalance(em, card.asn, card.currency);
  if (shadow === BigInt(reported)) return;
  await em.execute(
    `insert into card_balance_discrepancy (card_asn, session_id, currency, card_balance, shadow_balance) values (?, ?, ?, ?, ?)`,
    [card.asn, session.id, card.currency, reported, shadow.toString()],
  );
}

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import forge from 'node-forge';
import { type AlgorithmId, algorithmId } from '../../cardcrypto/algorithm.js';
import { loadMac1, loadMac2, loadSessionKey, loadTac, verifyMac } from '../../cardcrypto/epurse.js';
import { toGlobalId } from '../../graphql/global-id.js';
import { checkLeaf, findCityCa } from '../../pki/pki.service.js';
import { publicKeyFingerprint } from '../../pki/x509.js';
import type { KeyStore } from '../key-store.js';
import type { ReaderRow } from '../readers.service.js';
import * as apdu from './apdu.js';
import { sealForReader, type SealedCommand, verifyReaderSignature } from './envelope.js';
import { SessionError, type SessionRefusal } from './session.errors.js';

export type CardOperation = 'BALANCE' | 'LOAD';
export type SessionState = 'OPEN' | 'AUTHENTICATED' | 'AWAITING_TAC' | 'COMPLETED' | 'FAILED';

/** Sessions are short: a card is in the field for seconds (DESIGN.md §6 asks for at most 120 s). */
export const SESSION_TTL_SECONDS = 120;
/** The key index of the load and purchase keys the host asks the card to use. */
const KEY_INDEX = 1;

export interface SessionRow {
  id: string;
  reader_id: string;
  operation: CardOperation;
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

interface SessionContext {
  /** Who finishes the operation's business side when the card is done (e.g. `counter-load`). */
  purpose?: string;
  purposeData?: Record<string, unknown>;
  publicKeyPem?: string;
  cardCompanyId?: string;
  cityCode?: string;
  init?: { oldBalance: number; onlineCounter: number; keyVersion: number; algorithmId: number; date: string; time: string };
}

/** A command for the reader: a plain APDU, or a sealed one carrying a secret. */
export interface ReaderCommand {
  apdu?: string;
  sealed?: SealedCommand;
}

export interface CompletedOperation {
  session: SessionRow;
  reader: ReaderRow;
  cardCompanyId: string;
  asn: string;
  result: Record<string, unknown>;
}

/**
 * What other contexts plug in: when a session of their purpose completes, they record its
 * business effect (ledger entry, pending load marked loaded, ...) in the same transaction.
 */
export type CompletionHandler = (em: EntityManager, done: CompletedOperation) => Promise<void>;
export const completionHandlers = new Map<string, CompletionHandler>();

export interface SessionDeps {
  keyStore: KeyStore;
  now?: () => Date;
}

function terminalIdOf(reader: ReaderRow): Buffer {
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

async function audit(em: EntityManager, sessionId: string, seq: number | null, step: string, outcome: 'ACCEPTED' | 'REFUSED', refusal: SessionRefusal | null, detail: Record<string, unknown> = {}) {
  await em.execute(`insert into card_session_audit (session_id, seq, step, outcome, refusal, detail) values (?, ?, ?, ?, ?, ?)`, [sessionId, seq, step, outcome, refusal, JSON.stringify(detail)]);
}

/** Opens a session for one operation on one reader; the reader proves itself against the challenge. */
export async function openSession(
  em: EntityManager,
  input: { reader: ReaderRow; operation: CardOperation; amount?: bigint; clientId: string; purpose?: string; purposeData?: Record<string, unknown>; now?: Date },
): Promise<SessionRow> {
  const id = randomUUID();
  const now = input.now ?? new Date();
  const [row] = await em.execute<SessionRow[]>(
    `insert into card_session (id, reader_id, operation, amount, state, challenge, expires_at, opened_by_client, context)
     values (?, ?, ?, ?, 'OPEN', ?, ?, ?, ?) returning *`,
    [
      id,
      input.reader.id,
      input.operation,
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
  let refused: { refusal: SessionRefusal; message: string } | undefined;
  const outcome = await em.transactional(async (tx) => {
    const [session] = await tx.execute<SessionRow[]>(`select * from card_session where id = ? for update`, [message.sessionId]);
    if (!session) return null;
    const [reader] = await tx.execute<ReaderRow[]>(`select * from reader where id = ?`, [session.reader_id]);
    try {
      if (session.opened_by_client !== message.clientId) throw new SessionError('NOT_THE_OPENER', 'only the client that opened a session may relay its messages');
      if (session.state === 'COMPLETED' || session.state === 'FAILED') throw new SessionError('SESSION_FINISHED', `the session is ${session.state}`);
      if (now > new Date(session.expires_at)) throw new SessionError('SESSION_EXPIRED', 'the session has expired');
      if (message.seq !== session.next_seq) throw new SessionError('OUT_OF_ORDER', `expected message ${session.next_seq}, got ${message.seq}`);
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(message.body) as Record<string, unknown>;
      } catch {
        throw new SessionError('MALFORMED_MESSAGE', 'the body is not JSON');
      }
      const step = session.state === 'OPEN' ? hello : session.state === 'AUTHENTICATED' ? firstAnswers : tacAnswer;
      const result = await step(tx, deps, now, session, reader!, message, body);
      await audit(tx, session.id, message.seq, step.name, 'ACCEPTED', null, result.auditDetail);
      const [updated] = await tx.execute<SessionRow[]>(
        `update card_session set state = ?, next_seq = next_seq + 1, context = ?, card_asn = coalesce(?, card_asn), result = ?,
                finished_at = case when ? = 'COMPLETED' then now() end
          where id = ? returning *`,
        [result.state, JSON.stringify(result.context), result.asn ?? null, result.result ? JSON.stringify(result.result) : null, result.state, session.id],
      );
      return { session: updated!, commands: result.commands };
    } catch (err) {
      if (!(err instanceof SessionError)) throw err;
      refused = { refusal: err.refusal, message: err.message };
      return null;
    }
  });
  if (outcome) return { ok: true, ...outcome };
  // The refusal is written in its own transaction: the step's work (if any) rolled back above.
  return em.transactional(async (tx) => {
    const [session] = await tx.execute<SessionRow[]>(`select * from card_session where id = ? for update`, [message.sessionId]);
    if (!session) return { ok: false as const, session: null, refusal: 'SESSION_FINISHED' as const, message: 'no such session' };
    const { refusal, message: why } = refused!;
    await audit(tx, session.id, message.seq, 'refused', 'REFUSED', refusal, { message: why });
    // A finished session stays as it finished; anything else is over now.
    const [updated] =
      session.state === 'COMPLETED' || session.state === 'FAILED'
        ? [session]
        : await tx.execute<SessionRow[]>(`update card_session set state = 'FAILED', refusal = ?, finished_at = now() where id = ? returning *`, [refusal, session.id]);
    return { ok: false as const, session: updated!, refusal, message: why };
  });
}

interface StepResult {
  state: SessionState;
  context: SessionContext;
  commands: ReaderCommand[];
  asn?: string;
  result?: Record<string, unknown>;
  auditDetail?: Record<string, unknown>;
}

type Step = (em: EntityManager, deps: SessionDeps, now: Date, session: SessionRow, reader: ReaderRow, message: IncomingMessage, body: Record<string, unknown>) => Promise<StepResult>;

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

  const commands = [apdu.selectApplication(), apdu.readPublicData(), session.operation === 'LOAD' ? apdu.initializeForLoad(KEY_INDEX, Number(session.amount), terminalIdOf(reader)) : apdu.getBalance()];
  return { state: 'AUTHENTICATED', context: { ...session.context, publicKeyPem }, commands: commands.map((c) => ({ apdu: c.toString('hex').toUpperCase() })) };
};

function verifyStepSignature(session: SessionRow, message: IncomingMessage): void {
  if (!verifyReaderSignature(session.context.publicKeyPem!, toGlobalId('CardSession', session.id), message.seq, message.body, message.signature)) throw new SessionError('BAD_SIGNATURE', 'the reader signature does not verify');
}

function responsesOf(body: Record<string, unknown>, count: number): string[] {
  const responses = body.responses;
  if (!Array.isArray(responses) || responses.length !== count) throw new SessionError('MALFORMED_MESSAGE', `expected ${count} card responses`);
  return responses as string[];
}

function cardAnswer<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof apdu.CardAnswerError) throw new SessionError('CARD_ERROR', err.message);
    throw err;
  }
}

/** Message 1: the card's identity (and, for a load, its INITIALIZE FOR LOAD answer with MAC1). */
const firstAnswers: Step = async (em, deps, now, session, reader, message, body) => {
  verifyStepSignature(session, message);
  const [selected, publicData, third] = responsesOf(body, 3);
  const card = cardAnswer(() => {
    apdu.ok(selected, 'SELECT');
    return apdu.parsePublicData(apdu.ok(publicData, 'READ BINARY'));
  });
  const asn = card.asn.toString('hex').toUpperCase();
  // The card's city and its card company: the one whose keys the card carries.
  const [issuer] = await em.execute<{ city_id: string; card_company_id: string }[]>(
    `select c.id as city_id, cc.id as card_company_id from city c join card_company cc on cc.city_id = c.id where c.card_city_code = ?`,
    [card.cityCode],
  );
  if (!issuer) throw new SessionError('UNKNOWN_CARD_ISSUER', `no card company for city code ${card.cityCode}`);
  if (issuer.city_id !== reader.city_id) {
    const [allowed] = await em.execute(`select 1 from city_interoperation where card_city_id = ? and reader_city_id = ?`, [issuer.city_id, reader.city_id]);
    if (!allowed) throw new SessionError('CROSS_CITY_NOT_ALLOWED', 'this reader’s city does not accept cards of the card’s city');
  }
  const context: SessionContext = { ...session.context, cardCompanyId: issuer.card_company_id, cityCode: card.cityCode };

  if (session.operation === 'BALANCE') {
    const balance = cardAnswer(() => apdu.ok(third, 'GET BALANCE')).readUInt32BE(0);
    const result = { asn, balance };
    await complete(em, session, reader, issuer.card_company_id, asn, result);
    return { state: 'COMPLETED', context, commands: [], asn, result, auditDetail: result };
  }

  const init = cardAnswer(() => apdu.parseInitializeForLoad(apdu.ok(third, 'INITIALIZE FOR LOAD')));
  const [seen] = await em.execute<{ online_counter: number }[]>(`select online_counter from card_counter where asn = ?`, [asn]);
  if (seen && init.onlineCounter < seen.online_counter) throw new SessionError('COUNTER_ROLLBACK', `the card's online counter went back from ${seen.online_counter} to ${init.onlineCounter}`);
  const algorithm = cardAnswer(() => {
    try {
      return algorithmId(init.algorithmId);
    } catch {
      throw new apdu.CardAnswerError(`unsupported algorithm id ${init.algorithmId}`);
    }
  });
  const { key: dlk } = await deps.keyStore.cardKey({ cardCompanyId: issuer.card_company_id, purpose: 'LOAD', keyVersion: init.keyVersion, asn: card.asn });
  const terminalId = terminalIdOf(reader);
  const sessionKey = loadSessionKey({ algorithm, loadKey: dlk, random: init.random, onlineCounter: init.onlineCounter });
  const amount = Number(session.amount);
  const expected = loadMac1({ algorithm, sessionKey, oldBalance: init.oldBalance, amount, terminalId });
  if (!verifyMac(expected, init.mac1)) throw new SessionError('WRONG_MAC1', 'MAC1 does not verify with the card’s load key');
  const { date, time } = cardClock(now);
  const mac2 = loadMac2({ algorithm, sessionKey, amount, terminalId, date, time });
  const sealed = sealForReader(session.context.publicKeyPem!, apdu.creditForLoad(date, time, mac2), `${toGlobalId('CardSession', session.id)}:${message.seq + 1}`);
  return {
    state: 'AWAITING_TAC',
    context: { ...context, init: { oldBalance: init.oldBalance, onlineCounter: init.onlineCounter, keyVersion: init.keyVersion, algorithmId: algorithm, date, time } },
    commands: [{ sealed }],
    asn,
    auditDetail: { asn, oldBalance: init.oldBalance, onlineCounter: init.onlineCounter },
  };
};

/** Message 2 of a load: CREDIT FOR LOAD's TAC proves the card took exactly this load. */
const tacAnswer: Step = async (em, deps, _now, session, reader, message, body) => {
  verifyStepSignature(session, message);
  const [credit] = responsesOf(body, 1);
  const tac = cardAnswer(() => apdu.ok(credit, 'CREDIT FOR LOAD'));
  const init = session.context.init!;
  const amount = Number(session.amount);
  const asnBytes = Buffer.from(session.card_asn!, 'hex');
  const { key: dtk } = await deps.keyStore.cardKey({ cardCompanyId: session.context.cardCompanyId!, purpose: 'TAC', keyVersion: init.keyVersion, asn: asnBytes });
  const algorithm = init.algorithmId as AlgorithmId;
  const expected = loadTac({ algorithm, tacKey: dtk, newBalance: init.oldBalance + amount, onlineCounter: init.onlineCounter, amount, terminalId: terminalIdOf(reader), date: init.date, time: init.time });
  if (!verifyMac(expected, tac)) throw new SessionError('WRONG_TAC', 'the TAC does not prove this load');
  await em.execute(
    `insert into card_counter (asn, online_counter) values (?, ?)
     on conflict (asn) do update set online_counter = greatest(card_counter.online_counter, excluded.online_counter), updated_at = now()`,
    [session.card_asn, init.onlineCounter + 1],
  );
  const result = { asn: session.card_asn!, oldBalance: init.oldBalance, newBalance: init.oldBalance + amount, amount, onlineCounter: init.onlineCounter + 1, tac: tac.toString('hex').toUpperCase() };
  await complete(em, session, reader, session.context.cardCompanyId!, session.card_asn!, result);
  return { state: 'COMPLETED', context: session.context, commands: [], result, auditDetail: result };
};

async function complete(em: EntityManager, session: SessionRow, reader: ReaderRow, cardCompanyId: string, asn: string, result: Record<string, unknown>): Promise<void> {
  const handler = session.context.purpose ? completionHandlers.get(session.context.purpose) : undefined;
  if (session.context.purpose && !handler) throw new Error(`no completion handler for ${session.context.purpose}`);
  await handler?.(em, { session, reader, cardCompanyId, asn, result });
}

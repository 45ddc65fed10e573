import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { PendingCharge } from '../../graphql/cost-throttle.js';
import { UnknownCardKeyError } from '../key-store.js';
import type { ReaderRow } from '../readers.service.js';
import { parseBody } from './checks/body.js';
import { type HostMessage, signHostMessage } from './envelope.js';
import { toGlobalId } from '../../graphql/global-id.js';
import { ENVELOPE, ENVELOPE_CHECKS, PRE_STEP_CHECKS, stepFor } from './pipeline.js';
import { keepingLateReport } from './steps/m1.js';
import type { CardSessionPurpose, CardStatusLookup, PurseObserver } from './purpose.js';
import { type CardOperation, type CardType, type IncomingMessage, MAX_CARD_AMOUNT, type ReaderCommand, SESSION_TTL_SECONDS, type SessionRow } from './session.model.js';
import type { ProvedValueReturn, SessionDeps } from './step.js';
import { auditRow, recordAudit } from './audit.js';
import { NOW, sql, transition } from '../../lifecycle/machine.js';
import { sessionMachine } from './session-machine.js';
import { SessionError, type SessionRefusal } from './session.errors.js';
import { runRetryingConflicts } from '../../db/transaction-conflicts.js';

/**
 * The card-session engine: opens sessions, and runs each reader message through the pipeline
 * (pipeline.ts) inside one transaction. What the session is for comes from the purposes the
 * composition root hands in (api/src/card-sessions.ts); the engine knows none of them.
 */
export interface CardSessionEngine {
  /** The purpose an openCardSession request opens: the first whose operation and field match, else the operation's plain one. */
  purposeFor(input: { operation: string; payment?: string | null; billPayment?: string | null; topUp?: string | null; pendingLoads?: readonly string[] | null }): CardSessionPurpose | undefined;
  handleMessage(em: EntityManager, keys: Pick<SessionDeps, 'keyStore' | 'now' | 'hostKey' | 'charge' | 'reads'>, message: IncomingMessage): Promise<MessageOutcome>;
}

export function createCardSessionEngine(setup: { purposes: readonly CardSessionPurpose[]; observers?: readonly PurseObserver[]; cardStatus: CardStatusLookup; returnProvedValue: ProvedValueReturn }): CardSessionEngine {
  const purposes = new Map(setup.purposes.map((p) => [p.name, p]));
  if (purposes.size !== setup.purposes.length) throw new Error('two card-session purposes share a name');
  const observers = setup.observers ?? [];
  return {
    purposeFor(input) {
      const ofOperation = setup.purposes.filter((p) => p.opens.operation === input.operation);
      return ofOperation.find((p) => p.opens.by !== null && input[p.opens.by] != null) ?? ofOperation.find((p) => p.opens.by === null);
    },
    handleMessage: (em, keys, message) => handleMessage(em, { ...keys, purposes, observers, cardStatus: setup.cardStatus, returnProvedValue: setup.returnProvedValue }, message),
  };
}


/** Opens a session for one operation on one reader; the reader proves itself against the challenge. */
export async function openSession(
  em: EntityManager,
  input: {
    reader: ReaderRow;
    operation: CardOperation;
    cardType?: CardType;
    amount?: bigint;
    clientId: string;
    purpose?: string;
    purposeData?: Record<string, unknown>;
    now?: Date;
    /** The openCardSession request's cost charge (graphql/cost-throttle.ts): taken in the session's own statement, which opens nothing when it is refused (THROTTLED). */
    charge?: PendingCharge;
  },
): Promise<SessionRow> {
  // The amount goes to the card in 4 bytes; a larger one would be silently cut by the encoder.
  if (input.amount !== undefined && (input.amount <= 0n || input.amount > MAX_CARD_AMOUNT)) throw new RangeError(`a card amount is 1 to ${MAX_CARD_AMOUNT}`);
  if (input.operation !== 'BALANCE' && input.amount === undefined) throw new RangeError(`a ${input.operation} session needs an amount`);
  const id = randomUUID();
  const now = input.now ?? new Date();
  // The session, its audit row and the request's cost charge in one statement: one commit, never a
  // session without its audit, and none opened when the charge is refused.
  const charge = input.charge?.statement();
  const [row] = await em.execute<(SessionRow & { charge: { available: number; last_charged: boolean } | null })[]>(
    `with ${charge ? `charge as (${charge.sql}), ` : ''}opened as (
       insert into card_session (id, reader_id, operation, card_type, amount, state, challenge, expires_at, opened_by_client, context)
       select ?::uuid, ?::uuid, ?, ?, ?::bigint, 'OPEN', ?, ?::timestamptz, ?, ?::jsonb ${charge ? 'where (select last_charged from charge)' : ''} returning *
     ), audited as (
       insert into card_session_audit (session_id, seq, step, outcome, refusal, detail) select id, null, 'open', 'ACCEPTED', null, ? from opened
     )
     select opened.*, ${charge ? '(select to_jsonb(c) from charge c)' : 'null'} as charge from ${charge ? 'charge left join opened on true' : 'opened'}`,
    [
      ...(charge?.params ?? []),
      id,
      input.reader.id,
      input.operation,
      input.cardType ?? 'CPU',
      input.amount?.toString() ?? null,
      randomBytes(32).toString('hex'),
      new Date(+now + SESSION_TTL_SECONDS * 1000),
      input.clientId,
      JSON.stringify({ purpose: input.purpose, purposeData: input.purposeData }),
      JSON.stringify({ operation: input.operation, amount: input.amount?.toString() }),
    ],
  );
  const { charge: charged, ...session } = row!;
  if (charge) input.charge!.settle(charged ?? undefined);
  return session as SessionRow;
}

export type MessageOutcome = { ok: true; session: SessionRow; commands: ReaderCommand[]; hostMessage: HostMessage } | { ok: false; session: SessionRow | null; refusal: SessionRefusal; message: string };

/**
 * One message from a reader, through the pipeline: the envelope checks, the body, then the step
 * the session's card type, operation and state call for (pipeline.ts). A refusal is audited with
 * the check that refused, ends the session and changes no balance.
 */
export async function handleMessage(em: EntityManager, deps: SessionDeps, message: IncomingMessage): Promise<MessageOutcome> {
  const now = deps.now?.() ?? new Date();
  try {
    // A SessionError leaves this transaction by throwing, so everything the step wrote rolls back.
    const outcome = await runRetryingConflicts(() => chargedOnce(deps, () => em.transactional((tx) => runStep(tx, deps, now, message))), MESSAGE_ATTEMPTS);
    if (outcome) return { ok: true, ...outcome };
    return { ok: false, session: null, refusal: 'SESSION_FINISHED', message: 'no such session' };
  } catch (err) {
    // A card that names a key its card company does not have is a refusal like any other.
    const refusal = err instanceof UnknownCardKeyError ? new SessionError('UNKNOWN_CARD_KEY', err.message).at('card-answers') : err;
    if (!(refusal instanceof SessionError)) throw err;
    if (refusal.refusal === 'NOT_THE_OPENER') {
      // Someone else's session: audited, but neither ended nor shown to the caller.
      await recordAudit(em, message.sessionId, message.seq, 'refused', 'REFUSED', 'NOT_THE_OPENER', { client: message.clientId });
      return { ok: false, session: null, refusal: refusal.refusal, message: refusal.message };
    }
    return recordRefusal(em, deps, message, refusal);
  }
}

/**
 * How often a message's transaction (and a refusal's) is run when PostgreSQL ends it to break a
 * deadlock or a serialization conflict: nothing of it was written, and the card is still in the
 * field waiting for the answer.
 */
const MESSAGE_ATTEMPTS = 3;

/**
 * One attempt of a message's transaction: when it rolls back after its move took the request's
 * charge, the charge went with it, and the next attempt (or, failing all, the write behind) takes it.
 */
async function chargedOnce<T>(deps: SessionDeps, attempt: () => Promise<T>): Promise<T> {
  const chargedBefore = deps.charge?.taken ?? false;
  try {
    return await attempt();
  } catch (err) {
    if (!chargedBefore) deps.charge?.rolledBack();
    throw err;
  }
}

async function runStep(tx: EntityManager, deps: SessionDeps, now: Date, message: IncomingMessage): Promise<{ session: SessionRow; commands: ReaderCommand[]; hostMessage: HostMessage } | null> {
  const loaded = await lockSessionWithReader(tx, message.sessionId);
  if (!loaded) return null;
  const { session, reader } = loaded;
  try {
    for (const check of ENVELOPE) ENVELOPE_CHECKS[check](session, message, now);
  } catch (err) {
    // An M1 write's signed report after its session ended still says what the card holds.
    throw keepingLateReport(err, deps, session, reader, message);
  }
  const body = parseBody(message.body);
  const step = stepFor(session);
  for (const check of step.before) PRE_STEP_CHECKS[check](session, message, body);
  let result;
  try {
    result = await step.step({ em: tx, deps, now, session, reader, message, body });
  } catch (err) {
    if (err instanceof SessionError) err.at(step.name);
    throw err;
  }
  // Read before the move, so that the move (which takes the request's charge and so locks its cost
  // bucket) is the transaction's last statement.
  const hostKey = await deps.hostKey(tx, reader);
  // The step's audit row and the request's cost charge go in the session's move, one statement.
  const charge = deps.charge?.statement();
  const updated = await transition(
    tx,
    sessionMachine,
    session,
    result.state,
    {
      next_seq: sql('next_seq + 1'),
      context: JSON.stringify(result.context),
      card_asn: sql('coalesce(?, card_asn)', result.asn ?? null),
      result: result.result ? JSON.stringify(result.result) : null,
      finished_at: result.state === 'COMPLETED' ? NOW : null,
    },
    {
      alongside: auditRow(session.id, message.seq, step.name, 'ACCEPTED', null, result.auditDetail),
      besides: charge && { statement: sql(charge.sql, ...charge.params), returned: (row) => deps.charge!.settle(row as { available: number; last_charged: boolean } | undefined) },
    },
  );
  // Both directions are signed (DESIGN.md §6): the reader runs nothing this message does not carry, signed.
  const hostMessage = signHostMessage(hostKey, {
    session: toGlobalId('CardSession', session.id),
    reader: reader.serial,
    seq: message.seq,
    state: updated!.state,
    commands: result.commands,
    result: updated!.result,
    expiresAt: new Date(updated!.expires_at).toISOString(),
  });
  return { session: updated!, commands: result.commands, hostMessage };
}

/**
 * The session, locked for this message, and its reader as it is now: one statement. The reader is
 * read afresh every message (its status and registration may change mid-session), never cached.
 */
async function lockSessionWithReader(tx: EntityManager, sessionId: string): Promise<{ session: SessionRow; reader: ReaderRow } | null> {
  const [row] = await tx.execute<(SessionRow & { reader_row: ReaderRow })[]>(
    `select s.*, to_jsonb(r) as reader_row from card_session s join reader r on r.id = s.reader_id where s.id = ? for update of s for share of r`,
    [sessionId],
  );
  if (!row) return null;
  const { reader_row: reader, ...session } = row;
  // to_jsonb gives timestamps as text; the row as `select * from reader` reads it has dates.
  return { session, reader: { ...reader, created_at: new Date(reader.created_at), status_changed_at: new Date(reader.status_changed_at) } };
}

/** The refusal is written in its own transaction, after the step's work rolled back. */
function recordRefusal(em: EntityManager, deps: SessionDeps, message: IncomingMessage, err: SessionError): Promise<MessageOutcome> {
  return runRetryingConflicts(() => em.transactional(async (tx) => {
    const [session] = await tx.execute<SessionRow[]>(`select * from card_session where id = ? for update`, [message.sessionId]);
    if (!session) return { ok: false as const, session: null, refusal: 'SESSION_FINISHED' as const, message: 'no such session' };
    await recordAudit(tx, session.id, message.seq, 'refused', 'REFUSED', err.refusal, { message: err.message, refusedBy: err.step, ...err.detail });
    await err.keep?.(tx);
    const purpose = session.context.purpose ? deps.purposes.get(session.context.purpose) : undefined;
    await purpose?.onRefusal?.(tx, session, err.refusal);
    // A finished session stays as it finished; anything else is over now.
    const [updated] =
      session.state === 'COMPLETED' || session.state === 'FAILED'
        ? [session]
        : [await transition(tx, sessionMachine, session, 'FAILED', { refusal: err.refusal, finished_at: NOW })];
    return { ok: false as const, session: updated!, refusal: err.refusal, message: err.message };
  }), MESSAGE_ATTEMPTS);
}

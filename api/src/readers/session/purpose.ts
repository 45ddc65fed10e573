import type { EntityManager } from '@mikro-orm/postgresql';
import type { GraphQLContext } from '../../graphql/context.js';
import type { UserErrorCode } from '../../graphql/user-error.js';
import type { ReaderRow } from '../readers.service.js';
import type { TransactionRecord } from './apdu.js';
import type { OpenCardSessionInput } from './card-session.types.js';
import type { CardIdentity, SessionRow } from './session.model.js';
import type { SessionRefusal } from './session.errors.js';

/**
 * A card session's business: what the card's load or purchase is for. Declared by the context
 * that owns the business (a merchant payment in payments/, a pending load in topups/, ...) and
 * handed to the engine at the composition root (api/src/card-sessions.ts); nothing registers
 * itself by being imported. The engine proves what the card did; the purpose says what it means.
 */
export interface CardSessionPurpose {
  /** Stored in the session, named in the audit trail and the docs (e.g. `payment`). */
  readonly name: string;
  /**
   * Which openCardSession requests open a session of this purpose: its operation, and the input
   * field that names the business object (null: the operation's purpose when no field is given).
   */
  readonly opens: { operation: 'LOAD' | 'PURCHASE'; by: 'payment' | 'billPayment' | 'topUp' | 'pendingLoads' | null };
  /** Checks who may open it and for what amount, then opens it with `openSession` (card-session.service.ts). */
  open(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome>;
  /** LOAD: what to check, and claim, before MAC2 leaves the host. */
  creditGuard?: CreditGuard;
  /** PURCHASE: what to check, and claim, before the card may pay. */
  debitGuard?: DebitGuard;
  /** The card did it: book it in the step's transaction. */
  complete: CompletionHandler;
  /** The session was refused: e.g. count a failed attempt. */
  onRefusal?: RefusalHandler;
}

/** Why an openCardSession request was refused: a userError on `input.<field>`. */
export interface OpenRefusal {
  code: UserErrorCode;
  message: string;
  field: string;
}
export type OpenOutcome = SessionRow | OpenRefusal;
export const openRefusal = (code: UserErrorCode, message: string, field: string): OpenRefusal => ({ code, message, field });

export interface CompletedOperation {
  session: SessionRow;
  reader: ReaderRow;
  cardCompanyId: string;
  asn: string;
  /** The card's currency (its city's): the purse shadow's. */
  currency: string;
  result: Record<string, unknown>;
  /** The purse shadow after this operation's entry, when the engine has read it (the row is locked until commit). */
  purseBalance?: bigint;
}

/**
 * When a session of its purpose completes, the purpose records its business effect (ledger entry,
 * pending load marked loaded, ...) in the same transaction. A SessionError (or a ledger refusing
 * for want of funds, which becomes PURSE_MISMATCH) refuses the step: nothing the step wrote stays.
 * It may return the card's purse shadow right after the entry it posted on it (`balanceAfterEntry`),
 * so the engine compares the card's balance with it without reading it again; nothing, and the
 * engine reads the shadow.
 */
export type CompletionHandler = (em: EntityManager, done: CompletedOperation) => Promise<bigint | void>;

/**
 * Told of every completed operation after its ledger entry, in the same transaction (e.g. to send
 * a low-balance event after a purchase). An observer must not refuse: the card has already acted.
 */
export type PurseObserver = (em: EntityManager, done: CompletedOperation) => Promise<void>;

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
  lastRecord: TransactionRecord | null;
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

export interface PendingCredit {
  session: SessionRow;
  reader: ReaderRow;
  card: CardIdentity;
  amount: number;
  /** What INITIALIZE FOR LOAD told the host (MAC1 has proven it); an M1 card's value as the reader read it. */
  oldBalance: number;
  /** CPU: the online counter MAC1 authenticates; null for an M1 card, which has none. */
  onlineCounter: number | null;
  /** The newest record of the card's transaction log, or null when the log is empty (or an M1 card). */
  lastRecord: TransactionRecord | null;
  /** CPU: the terminal id, date and time the host is about to bind into MAC2; null for an M1 card. */
  terminal: string | null;
  date: string | null;
  time: string | null;
  /** M1: the value the write script is bound to and the value it must leave (readers/session/m1-writes.ts); null for a CPU card. */
  m1: { oldValue: number; newValue: number } | null;
  now: Date;
}

/**
 * What a purpose may check, and claim, before MAC2 (or an M1 write script) leaves the host (after which the card can be
 * credited), e.g. that a pending load is still owed and no other session is writing it. It refuses
 * with a SessionError; work that must stand despite the refusal goes in the error's `keep`.
 */
export type CreditGuard = (em: EntityManager, pending: PendingCredit) => Promise<void>;

/**
 * Told when a session of its purpose is refused, in the refusal's own transaction (after the
 * step's work rolled back), e.g. to count a payment's failed attempts.
 */
export type RefusalHandler = (em: EntityManager, session: SessionRow, refusal: SessionRefusal) => Promise<void>;

/** The card registry's status of a card (`ACTIVE`, `LOST`, ...), or null for a card it does not know. */
export type CardStatusLookup = (em: EntityManager, asn: string) => Promise<string | null>;

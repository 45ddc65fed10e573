import type { KeyObject } from 'node:crypto';
import type { NoticedCache } from '../../db/noticed-cache.js';
import type { PendingCharge } from '../../graphql/cost-throttle.js';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { KeyStore } from '../key-store.js';
import type { ReaderRow } from '../readers.service.js';
import type { CardSessionPurpose, CardStatusLookup, PurseObserver } from './purpose.js';
import type { IncomingMessage, ReaderCommand, SessionContext, SessionRow, SessionState } from './session.model.js';

/** What the engine works with beside the database: keys, the clock, and what the composition root handed in. */
export interface SessionDeps {
  keyStore: KeyStore;
  now?: () => Date;
  /** The purposes sessions may serve, by name. */
  purposes: ReadonlyMap<string, CardSessionPurpose>;
  /** Told of every completed operation, after its purpose's entry. */
  observers: readonly PurseObserver[];
  /** The card registry's status of a card, for the card status check. */
  cardStatus: CardStatusLookup;
  /** The key that signs what the host sends the reader: its city's host key (api/src/pki/host-key.ts). */
  hostKey: HostKeySource;
  /** Gives back to a card the value it proved it paid to a purpose that no longer takes it (top-ups: a REFUND pending load). */
  returnProvedValue: ProvedValueReturn;
  /**
   * The request's cost charge (graphql/cost-throttle.ts), taken in the accepted message's own move:
   * one writing commit per message. Left untaken by a refusal (then written behind).
   */
  charge?: PendingCharge;
  /** What sessions read and seldom changes, kept per process until a change notice (session-reads.ts); none: read every time. */
  reads?: NoticedCache;
}

/**
 * What a card proved it paid, for a purpose that no longer takes it, to be given back to the card:
 * the owner of pending loads books it (card purse → pending loads) and tells the card company.
 * Null when there is no registered card to give it back to.
 */
export type ProvedValueReturn = (
  em: EntityManager,
  proved: { asn: string; amount: bigint; currency: string; fromAccountId: string; claimSession: string; provedBy: string; tac: string; reason: string },
) => Promise<{ pendingLoad: string } | null>;

/** The host signing key for a reader's city. */
export type HostKeySource = (em: EntityManager, reader: ReaderRow) => Promise<{ privateKey: KeyObject; chainPem: string[] }>;

export interface StepResult {
  state: SessionState;
  context: SessionContext;
  commands: ReaderCommand[];
  asn?: string;
  result?: Record<string, unknown>;
  auditDetail?: Record<string, unknown>;
}

/** Everything a step works with: the locked session, its reader, the message and its parsed body. */
export interface StepInput {
  em: EntityManager;
  deps: SessionDeps;
  now: Date;
  session: SessionRow;
  reader: ReaderRow;
  message: IncomingMessage;
  body: Record<string, unknown>;
}

export type Step = (s: StepInput) => Promise<StepResult>;

import { defineMachine, finalStates, statesSql } from '../../lifecycle/machine.js';
import type { SessionRow, SessionState } from './session.model.js';

/**
 * Where a card session goes, message by message (the steps of pipeline.ts): the reader's hello
 * authenticates it; the card's first answers complete a balance read, ask for a TAC (CPU load or
 * purchase), a proof of an earlier unanswered transaction (then start again) or the purse blocks
 * (M1), which lead to a write. Any refusal, or the expiry job, ends a live one FAILED.
 */
export const SESSION_TRANSITIONS: Readonly<Record<SessionState, readonly SessionState[]>> = {
  OPEN: ['AUTHENTICATED', 'FAILED'],
  // AUTHENTICATED again: the card's own profile asks for other key indexes or files than the first batch used.
  AUTHENTICATED: ['AUTHENTICATED', 'AWAITING_TAC', 'AWAITING_PROOF', 'AWAITING_PURSE', 'COMPLETED', 'FAILED'],
  AWAITING_PROOF: ['AUTHENTICATED', 'COMPLETED', 'FAILED'],
  AWAITING_TAC: ['COMPLETED', 'FAILED'],
  AWAITING_PURSE: ['AWAITING_WRITE', 'COMPLETED', 'FAILED'],
  AWAITING_WRITE: ['COMPLETED', 'FAILED'],
  COMPLETED: [],
  FAILED: [],
};

/**
 * The card-session lifecycle (lifecycle/machine.ts), on its `state` column. Its history is the
 * session's audit (card_session_audit), which the engine writes for every message — the step that
 * ran or the check that refused — so the machine writes no second one.
 */
export const sessionMachine = defineMachine<SessionState, SessionRow>({
  name: 'card_session',
  table: 'card_session',
  column: 'state',
  initial: ['OPEN'],
  transitions: SESSION_TRANSITIONS,
  history: async () => {},
});

/** `'COMPLETED','FAILED'`: the states a session is over in, for queries. */
export const FINISHED_STATES_SQL = statesSql(sessionMachine, finalStates(sessionMachine));

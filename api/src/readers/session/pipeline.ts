import { checkOpener, checkNotFinished } from './checks/envelope.js';
import { checkExpiry } from './checks/expiry.js';
import { checkSequence } from './checks/sequence.js';
import { checkStepSignature } from './checks/signature.js';
import type { CardOperation, CardType, IncomingMessage, SessionRow, SessionState } from './session.model.js';
import type { Step } from './step.js';
import { SessionError } from './session.errors.js';
import { hello } from './steps/hello.js';
import { balanceRead, loadCredited, loadInitialized, purchaseDebited, purchaseInitialized } from './steps/cpu.js';
import { m1Identified, m1PurseRead, m1Written } from './steps/m1.js';

/**
 * The card-session protocol as one table (in the manner of oidc-provider's
 * lib/actions/authorization/index.js): for each card type × operation × session state, the checks
 * the engine runs before the step, in order, then the step and the checks it runs inside, in order
 * (they need what the card answered). Each check is one file in `checks/`; a refusal names the
 * check that refused in its audit row. docs/readers.md's table "Checks per message" is this table,
 * written out (pipeline.test.ts keeps them the same).
 */

/** The checks every message passes before its content is looked at; run by the engine, in order. */
export const ENVELOPE_CHECKS = {
  envelope: (session: SessionRow, message: IncomingMessage) => {
    checkOpener(session, message);
    checkNotFinished(session);
  },
  expiry: (session: SessionRow, _message: IncomingMessage, now: Date) => checkExpiry(session, now),
  sequence: (session: SessionRow, message: IncomingMessage) => checkSequence(session, message),
} as const;

/** Checks run before the step once the body has parsed (`body`). */
export const PRE_STEP_CHECKS = {
  signature: (session: SessionRow, message: IncomingMessage) => checkStepSignature(session, message),
} as const;

export type CheckName =
  | keyof typeof ENVELOPE_CHECKS
  | 'body'
  | keyof typeof PRE_STEP_CHECKS
  | 'challenge'
  | 'chains'
  | 'registration'
  | 'card-status'
  | 'counters'
  | 'cryptograms'
  | 'purpose'
  | 'purse-cover';

export interface MessageStep {
  /** The step's name, as the accepted message's audit row records it. */
  name: string;
  /** What runs before the step, after the envelope checks and the body (run by the engine from this list). */
  before: readonly (keyof typeof PRE_STEP_CHECKS)[];
  step: Step;
  /** The checks the step runs, in order, on what the card answered (`purpose`: the purpose's guard). */
  checks: readonly CheckName[];
}

/** Run by the engine for every message, in this order, before the body is parsed. */
export const ENVELOPE: readonly (keyof typeof ENVELOPE_CHECKS)[] = ['envelope', 'expiry', 'sequence'];

type MessageKind = `${CardType} ${CardOperation | '*'} ${SessionState}`;

const HELLO: MessageStep = { name: 'hello', before: [], step: hello, checks: ['challenge', 'chains', 'registration', 'signature'] };

export const PIPELINE: Readonly<Partial<Record<MessageKind, MessageStep>>> = {
  'CPU * OPEN': HELLO,
  'CPU BALANCE AUTHENTICATED': { name: 'firstAnswers', before: ['signature'], step: balanceRead, checks: ['body', 'card-status'] },
  'CPU LOAD AUTHENTICATED': { name: 'firstAnswers', before: ['signature'], step: loadInitialized, checks: ['body', 'card-status', 'counters', 'cryptograms', 'purpose'] },
  'CPU LOAD AWAITING_TAC': { name: 'tacAnswer', before: ['signature'], step: loadCredited, checks: ['body', 'cryptograms'] },
  'CPU PURCHASE AUTHENTICATED': { name: 'firstAnswers', before: ['signature'], step: purchaseInitialized, checks: ['body', 'card-status', 'counters', 'purpose', 'purse-cover'] },
  'CPU PURCHASE AWAITING_TAC': { name: 'debitAnswer', before: ['signature'], step: purchaseDebited, checks: ['body', 'cryptograms'] },
  'M1 * OPEN': HELLO,
  'M1 * AUTHENTICATED': { name: 'm1Identified', before: ['signature'], step: m1Identified, checks: ['body', 'card-status'] },
  'M1 BALANCE AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature'], step: m1PurseRead, checks: ['body'] },
  'M1 LOAD AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature'], step: m1PurseRead, checks: ['body'] },
  'M1 PURCHASE AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature'], step: m1PurseRead, checks: ['body', 'purse-cover', 'purpose'] },
  'M1 LOAD AWAITING_WRITE': { name: 'm1Written', before: ['signature'], step: m1Written, checks: ['body'] },
  'M1 PURCHASE AWAITING_WRITE': { name: 'm1Written', before: ['signature'], step: m1Written, checks: ['body'] },
};

/** Which step a message is: the session's card type, operation and state. */
export function stepFor(session: SessionRow): MessageStep {
  const step = PIPELINE[`${session.card_type} ${session.operation} ${session.state}`] ?? PIPELINE[`${session.card_type} * ${session.state}`];
  if (!step) throw new SessionError('SESSION_FINISHED', `no ${session.card_type} step follows ${session.state}`).at('pipeline');
  return step;
}

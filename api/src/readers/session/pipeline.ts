import { checkOpener, checkNotFinished } from './checks/envelope.js';
import { checkExpiry } from './checks/expiry.js';
import { checkSequence } from './checks/sequence.js';
import { checkReaderReport } from './checks/reader-report.js';
import { checkStepSignature } from './checks/signature.js';
import type { CardOperation, CardType, IncomingMessage, SessionRow, SessionState } from './session.model.js';
import type { SessionRefusal } from './session.errors.js';
import type { Step } from './step.js';
import { SessionError } from './session.errors.js';
import { hello } from './steps/hello.js';
import { balanceRead, loadCredited, loadInitialized, proofAnswered, purchaseDebited, purchaseInitialized } from './steps/cpu.js';
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
  signature: (session: SessionRow, message: IncomingMessage, _body: Record<string, unknown>) => checkStepSignature(session, message),
  'reader-report': (session: SessionRow, _message: IncomingMessage, body: Record<string, unknown>) => checkReaderReport(session, body),
} as const;

export type CheckName =
  | keyof typeof ENVELOPE_CHECKS
  | 'body'
  | keyof typeof PRE_STEP_CHECKS
  | 'card-answers'
  | 'challenge'
  | 'chains'
  | 'registration'
  | 'card-status'
  | 'counters'
  | 'cryptograms'
  | 'transaction-proof'
  | 'purpose'
  | 'purse-cover'
  | 'm1-value'
  | 'm1-load';

/**
 * Each check: what it holds, and the refusals it gives (pipeline.test.ts holds each file in checks/
 * to its list). `purpose` is the purpose's own guard (the purposes' files), run where a step says.
 */
export const CHECKS: Readonly<Record<CheckName, { holds: string; refusals: readonly SessionRefusal[] }>> = {
  envelope: { holds: 'the caller opened the session, which is not finished', refusals: ['NOT_THE_OPENER', 'SESSION_FINISHED'] },
  expiry: { holds: 'the session has not expired', refusals: ['SESSION_EXPIRED'] },
  sequence: { holds: 'the message is the next one', refusals: ['OUT_OF_ORDER'] },
  body: { holds: 'the body is a JSON object with as many card responses as asked', refusals: ['MALFORMED_MESSAGE'] },
  signature: { holds: 'the reader signed session, sequence and body: the hello with its national certificate’s key (access), every later message with its city certificate’s', refusals: ['BAD_SIGNATURE'] },
  'reader-report': { holds: 'the reader ran the host’s last message: it did not refuse it as unsigned, uncertified, altered, replayed or another session’s', refusals: ['HOST_MESSAGE_REFUSED'] },
  challenge: { holds: 'the hello signs this session’s challenge and presents both certificates, and the encryption certificate (readers with a key pair per purpose)', refusals: ['CHALLENGE_MISMATCH', 'CERTIFICATE_MISSING'] },
  chains: { holds: 'the national, the city and the encryption certificate chain to their CAs, valid, not revoked, of their profile', refusals: ['CERTIFICATE_REVOKED', 'CERTIFICATE_EXPIRED', 'UNKNOWN_CA'] },
  registration: { holds: 'the certificates are the reader’s registered ones (the encryption one too, when it has one), and the reader is ACTIVE', refusals: ['CERTIFICATE_NOT_THIS_READER', 'READER_NOT_ACTIVE'] },
  'card-answers': { holds: 'the card answered as asked (status 9000 or a warning its card profile tolerates, the expected length, an algorithm id its profile accepts, the key its card company holds)', refusals: ['CARD_ERROR', 'ALGORITHM_NOT_ACCEPTED', 'INSUFFICIENT_BALANCE', 'UNKNOWN_CARD_KEY'] },
  'card-status': { holds: 'a card company issued the card, the reader’s city takes it, and it is not LOST, BLOCKED, REPLACED or EXPIRED', refusals: ['UNKNOWN_CARD_ISSUER', 'CROSS_CITY_NOT_ALLOWED', 'CARD_NOT_USABLE'] },
  counters: { holds: 'the card’s counter is not below the highest it has proved', refusals: ['COUNTER_ROLLBACK'] },
  cryptograms: { holds: 'MAC1, MAC2 and the TAC verify with the card’s diversified keys', refusals: ['WRONG_MAC1', 'WRONG_MAC2', 'WRONG_TAC'] },
  'transaction-proof': { holds: 'an earlier load or purchase whose answer was lost is booked when GET TRANSACTION PROVE answers a proof that verifies with the card’s keys; any other answer books nothing; a load is refused while the card has passed an unanswered load it did not prove', refusals: ['LOAD_UNRESOLVED'] },
  purpose: { holds: 'the purpose’s guard: what the session pays or loads is still owed, and this session claims it', refusals: ['PURPOSE_REFUSED', 'ALREADY_PAID', 'PAYMENT_IN_PROGRESS', 'PAYMENT_UNRESOLVED', 'ALREADY_LOADED', 'LOAD_IN_PROGRESS', 'LOAD_UNRESOLVED', 'PURSE_LIMIT_EXCEEDED'] },
  'purse-cover': { holds: 'the ledger’s purse shadow covers the purchase', refusals: ['PURSE_MISMATCH'] },
  'm1-value': { holds: 'an earlier M1 write whose answer was lost is settled from the value read now: booked if it is the value the write left, released if it is the one the write was bound to, unresolved otherwise', refusals: [] },
  'm1-load': { holds: 'an M1 load is within its card company’s limit per M1 load, and a card once written by a write taken as not made holds no more than the ledger booked', refusals: ['M1_LOAD_LIMIT', 'PURSE_MISMATCH'] },
};

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
  'CPU BALANCE AUTHENTICATED': { name: 'firstAnswers', before: ['signature', 'reader-report'], step: balanceRead, checks: ['body', 'card-answers', 'card-status', 'card-answers'] },
  'CPU LOAD AUTHENTICATED': { name: 'firstAnswers', before: ['signature', 'reader-report'], step: loadInitialized, checks: ['body', 'card-answers', 'card-status', 'card-answers', 'counters', 'card-answers', 'cryptograms', 'transaction-proof', 'purpose'] },
  'CPU LOAD AWAITING_TAC': { name: 'tacAnswer', before: ['signature', 'reader-report'], step: loadCredited, checks: ['body', 'card-answers', 'cryptograms'] },
  'CPU PURCHASE AUTHENTICATED': { name: 'firstAnswers', before: ['signature', 'reader-report'], step: purchaseInitialized, checks: ['body', 'card-answers', 'card-status', 'card-answers', 'counters', 'card-answers', 'purpose', 'purse-cover', 'card-answers'] },
  'CPU PURCHASE AWAITING_TAC': { name: 'debitAnswer', before: ['signature', 'reader-report'], step: purchaseDebited, checks: ['body', 'card-answers', 'cryptograms'] },
  'CPU * AWAITING_PROOF': { name: 'proofAnswer', before: ['signature', 'reader-report'], step: proofAnswered, checks: ['body', 'transaction-proof'] },
  'M1 * OPEN': HELLO,
  'M1 * AUTHENTICATED': { name: 'm1Identified', before: ['signature', 'reader-report'], step: m1Identified, checks: ['body', 'card-answers', 'card-status'] },
  'M1 BALANCE AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature', 'reader-report'], step: m1PurseRead, checks: ['body', 'card-answers', 'm1-value'] },
  'M1 LOAD AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature', 'reader-report'], step: m1PurseRead, checks: ['body', 'card-answers', 'm1-value', 'purpose', 'm1-load'] },
  'M1 PURCHASE AWAITING_PURSE': { name: 'm1PurseRead', before: ['signature', 'reader-report'], step: m1PurseRead, checks: ['body', 'card-answers', 'm1-value', 'card-answers', 'purse-cover', 'purpose'] },
  'M1 BALANCE AWAITING_WRITE': { name: 'm1Written', before: ['signature', 'reader-report'], step: m1Written, checks: ['body', 'card-answers'] },
  'M1 LOAD AWAITING_WRITE': { name: 'm1Written', before: ['signature', 'reader-report'], step: m1Written, checks: ['body', 'card-answers'] },
  'M1 PURCHASE AWAITING_WRITE': { name: 'm1Written', before: ['signature', 'reader-report'], step: m1Written, checks: ['body', 'card-answers'] },
};

/** Which step a message is: the session's card type, operation and state. */
export function stepFor(session: SessionRow): MessageStep {
  const step = PIPELINE[`${session.card_type} ${session.operation} ${session.state}`] ?? PIPELINE[`${session.card_type} * ${session.state}`];
  if (!step) throw new SessionError('SESSION_FINISHED', `no ${session.card_type} step follows ${session.state}`).at('pipeline');
  return step;
}

/** The table above as docs/readers.md shows it ("Checks per message"; pipeline.test.ts compares). */
export function pipelineTable(): string {
  const rows = Object.entries(PIPELINE).map(([kind, step]) => {
    const [card, operation, state] = kind.split(' ');
    const first = [...ENVELOPE, 'body', ...step!.before].map((c) => `\`${c}\``).join(', ');
    const inside = step!.checks.map((c) => `\`${c}\``).join(', ');
    return `| ${card} | ${operation === '*' ? 'any' : operation} | \`${state}\` | \`${step!.name}\` | ${first} | ${inside} |`;
  });
  const checks = Object.entries(CHECKS).map(([name, c]) => `| \`${name}\` | ${c.holds} | ${c.refusals.map((r) => `\`${r}\``).join(', ')} |`);
  return [
    '| card | operation | session state | step | the engine checks first, in order | then the step, in order |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '| check | holds | refusals |',
    '| --- | --- | --- |',
    ...checks,
  ].join('\n');
}

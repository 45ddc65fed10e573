import type { EntityManager } from '@mikro-orm/postgresql';
import { DomainError } from '../../graphql/domain-error.js';
import { type UserError, userError, UserErrorCode } from '../../graphql/user-error.js';

/** Why a card session step was refused. Each refusal is audited and ends the session (docs/errors.md lists them). */
export const SESSION_REFUSALS = [
  'SESSION_EXPIRED',
  'SESSION_FINISHED',
  'OUT_OF_ORDER',
  'MALFORMED_MESSAGE',
  'NOT_THE_OPENER',
  'UNKNOWN_CARD_KEY',
  'CARD_NOT_USABLE',
  'CHALLENGE_MISMATCH',
  'CERTIFICATE_MISSING',
  'UNKNOWN_CA',
  'CERTIFICATE_REVOKED',
  'CERTIFICATE_EXPIRED',
  'CERTIFICATE_NOT_THIS_READER',
  'READER_NOT_ACTIVE',
  'BAD_SIGNATURE',
  /** The reader refused a host message (unsigned, signed by a key its pinned CAs do not certify, another session's or sequence's, altered) and ran nothing. */
  'HOST_MESSAGE_REFUSED',
  'CARD_ERROR',
  /** The card answered an algorithm id its card profile does not accept: refused before any MAC leaves the host. */
  'ALGORITHM_NOT_ACCEPTED',
  'UNKNOWN_CARD_ISSUER',
  'CROSS_CITY_NOT_ALLOWED',
  'COUNTER_ROLLBACK',
  'WRONG_MAC1',
  'WRONG_MAC2',
  'WRONG_TAC',
  /** The card answered INITIALIZE FOR PURCHASE with `94 01`: its balance is below the amount. */
  'INSUFFICIENT_BALANCE',
  /** The host's shadow of the card's purse does not cover the purchase: value that never went through our ledger. */
  'PURSE_MISMATCH',
  /** The operation's purpose refused the card before it was debited (e.g. a card in another currency). */
  'PURPOSE_REFUSED',
  /** Another live session holds this pending load: one write at a time. */
  'LOAD_IN_PROGRESS',
  /** The card's balance (MAC1 proves it) plus the loads would pass the purse maximum: they stay pending. */
  'PURSE_LIMIT_EXCEEDED',
  /** The pending load is already on the card (a lost answer, settled from the card's transaction log). */
  'ALREADY_LOADED',
  /** The card moved on since an unanswered write of this load and its log cannot tell whether it took it. */
  'LOAD_UNRESOLVED',
  /** The payment is already paid: by an earlier session whose answer was lost (settled from the card's log). */
  'ALREADY_PAID',
  /** Another live session is paying this payment. */
  'PAYMENT_IN_PROGRESS',
  /** An earlier attempt to pay got no answer and the card cannot show whether it paid; the merchant and card company settle it. */
  'PAYMENT_UNRESOLVED',
  /** An M1 load above its card company's limit per M1 load (what a value-only card can put at risk): it stays pending. */
  'M1_LOAD_LIMIT',
] as const;
export type SessionRefusal = (typeof SESSION_REFUSALS)[number];

/** A refused card session step; a client sees CARD_SESSION_REFUSED with a message that starts with the refusal. */
export class SessionError extends DomainError<SessionRefusal> {
  /** Work that stands although the step is refused (e.g. a counter the card proved it reached), written with the refusal. */
  keep?: (em: EntityManager) => Promise<void>;
  /** The check or step that refused (e.g. `counters`), written to the refusal's audit row. */
  step?: string;

  constructor(
    readonly refusal: SessionRefusal,
    message: string,
    /** Evidence written to the refusal's audit row, e.g. a TAC the card returned before the host refused. */
    readonly detail: Record<string, unknown> = {},
  ) {
    super(refusal, message, UserErrorCode.CARD_SESSION_REFUSED);
  }

  override toUserError(at: (string | number)[] = ['input']): UserError {
    return userError(this.userErrorCode, `${this.refusal}: ${this.message}`, at);
  }

  /** Names the check that refused, unless a more precise one already did. */
  at(step: string): this {
    this.step ??= step;
    return this;
  }
}

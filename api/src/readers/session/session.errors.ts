/** Why a card session step was refused. Each refusal is audited and ends the session. */
export type SessionRefusal =
  | 'SESSION_EXPIRED'
  | 'SESSION_FINISHED'
  | 'OUT_OF_ORDER'
  | 'MALFORMED_MESSAGE'
  | 'NOT_THE_OPENER'
  | 'CHALLENGE_MISMATCH'
  | 'CERTIFICATE_MISSING'
  | 'UNKNOWN_CA'
  | 'CERTIFICATE_REVOKED'
  | 'CERTIFICATE_EXPIRED'
  | 'CERTIFICATE_NOT_THIS_READER'
  | 'READER_NOT_ACTIVE'
  | 'BAD_SIGNATURE'
  | 'CARD_ERROR'
  | 'UNKNOWN_CARD_ISSUER'
  | 'CROSS_CITY_NOT_ALLOWED'
  | 'COUNTER_ROLLBACK'
  | 'WRONG_MAC1'
  | 'WRONG_TAC';

export class SessionError extends Error {
  constructor(
    readonly refusal: SessionRefusal,
    message: string,
  ) {
    super(message);
  }
}

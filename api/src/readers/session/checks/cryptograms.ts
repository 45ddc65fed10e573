import { verifyMac } from '../../../cardcrypto/epurse.js';
import { SessionError } from '../session.errors.js';

/**
 * The card's cryptograms, each computed by the caller with the card's diversified key
 * (CARD-PROTOCOL.md §4–§5) and compared here in constant time. `evidence` (what the card answered)
 * stays with a refusal: a card that debited and failed a check is a case to reconcile.
 */
export function checkLoadMac1(expected: Buffer, mac1: Buffer): void {
  if (!verifyMac(expected, mac1)) throw new SessionError('WRONG_MAC1', 'MAC1 does not verify with the card’s load key').at('cryptograms');
}

export function checkLoadTac(expected: Buffer, tac: Buffer): void {
  if (!verifyMac(expected, tac)) throw new SessionError('WRONG_TAC', 'the TAC does not prove this load').at('cryptograms');
}

export function checkPurchaseMac2(expected: Buffer, mac2: Buffer, evidence: Record<string, unknown>): void {
  if (!verifyMac(expected, mac2)) throw new SessionError('WRONG_MAC2', 'MAC2 does not verify with this session’s purchase key', evidence).at('cryptograms');
}

export function checkPurchaseTac(expected: Buffer, tac: Buffer, evidence: Record<string, unknown>): void {
  if (!verifyMac(expected, tac)) throw new SessionError('WRONG_TAC', 'the TAC does not prove this purchase', evidence).at('cryptograms');
}

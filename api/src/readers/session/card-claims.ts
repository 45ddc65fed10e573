import type { EntityManager } from '@mikro-orm/postgresql';
import type { TransactionRecord } from './apdu.js';
import type { PendingDebit } from './purpose.js';
import { SessionError, type SessionRefusal } from './session.errors.js';
import { m1WriteOutcome } from './m1-writes.js';

/**
 * What a card proves about an earlier attempt to pay, whatever was being paid. A debit guard
 * claims its obligation for one session before MAC1 leaves the host, with what the card said then;
 * when that session's answer was lost, the card's next session shows whether it paid.
 */

/** What the card said when a session claimed an obligation: the evidence to settle a lost answer. */
export interface DebitClaim {
  cardAsn: string;
  /** CPU cards: the offline counter before the purchase and what MAC1 binds; null for M1. */
  offlineCounter: number | null;
  terminal: string | null;
  date: string | null;
  time: string | null;
  /** The balance the card reported before paying (M1 cards settle by it). */
  cardBalance: number;
}

/** Type 06: an e-purse purchase in the card's transaction log. */
const LOG_TYPE_PURSE_PURCHASE = 0x06;

/** A session that may still make the card act: not finished, not expired. */
export async function sessionIsLive(em: EntityManager, sessionId: string | null, now: Date): Promise<boolean> {
  if (!sessionId) return false;
  const [s] = await em.execute<{ state: string; expires_at: Date }[]>(`select state, expires_at from card_session where id = ?`, [sessionId]);
  return !!s && s.state !== 'COMPLETED' && s.state !== 'FAILED' && new Date(s.expires_at) > now;
}

/** Did the card pay the attempt that `claim` issued MAC1 for? Its log (CPU) or its balance (M1) says. */
export function cardPaidClaim(claim: DebitClaim, pending: PendingDebit, record: TransactionRecord | null): 'paid' | 'not-paid' | 'unknown' {
  if (claim.offlineCounter === null || pending.offlineCounter === null) {
    // An M1 card has no counter and no log: an unchanged balance means it did not pay; a lower one
    // may be any other purchase of the same amount, so it proves nothing.
    return pending.cardBalance === claim.cardBalance ? 'not-paid' : 'unknown';
  }
  if (pending.offlineCounter === claim.offlineCounter) return 'not-paid';
  // Exactly one purchase since, this one: the next counter, the balance down by the amount, and the
  // newest log record naming the claim's amount, terminal, date and time.
  const logged = !!record && record.type === LOG_TYPE_PURSE_PURCHASE && record.counter === claim.offlineCounter && record.amount === pending.amount && record.terminal === claim.terminal && record.date === claim.date && record.time === claim.time;
  return logged && pending.offlineCounter === claim.offlineCounter + 1 && pending.cardBalance === claim.cardBalance - pending.amount ? 'paid' : 'unknown';
}

/**
 * Another session took an obligation (a merchant's payment, a bill's) to PROCESSING. If it may
 * still make a card pay, this one waits. If it ended, and it had issued MAC1 (a claim), the card
 * tells whether it paid: not paid → this session goes ahead; paid (its log shows exactly that
 * purchase) → the obligation is settled now by `settleFromLog` (kept although this session is
 * refused ALREADY_PAID); otherwise, or another card, unresolved.
 */
export async function settleEarlierClaim(
  em: EntityManager,
  attempt: { what: string; ref: Record<string, string>; sessionId: string | null; claim: DebitClaim | null },
  pending: PendingDebit,
  settleFromLog: (tx: EntityManager) => Promise<void>,
): Promise<void> {
  if (await sessionIsLive(em, attempt.sessionId, pending.now)) throw new SessionError('PAYMENT_IN_PROGRESS', `another reader is paying ${attempt.what}; try again when it has finished`);
  const claim = attempt.claim;
  if (!claim) return;
  if (claim.cardAsn !== pending.asn) throw new SessionError('PAYMENT_UNRESOLVED', `another card may have paid ${attempt.what} (its answer was lost): present that card`, attempt.ref);
  if (claim.offlineCounter === null) {
    // An M1 card: its value settled the attempt when this session read it (m1-writes.ts). Paid, the
    // obligation is already settled and never gets here; not paid, this session goes ahead.
    const outcome = await m1WriteOutcome(em, attempt.sessionId!);
    if (outcome === 'NOT_WRITTEN') return;
    throw new SessionError('PAYMENT_UNRESOLVED', `the M1 card's value cannot tell whether it paid ${attempt.what} in an earlier session whose answer was lost; the merchant and card company settle it`, { ...attempt.ref, claim, outcome: outcome ?? 'open' });
  }
  const paid = cardPaidClaim(claim, pending, pending.lastRecord);
  if (paid === 'not-paid') return;
  if (paid === 'paid') {
    const error = new SessionError('ALREADY_PAID', `the card paid ${attempt.what} in an earlier session whose answer was lost; it is settled now`, { ...attempt.ref, settledFrom: attempt.sessionId });
    // Stands although this session is refused: the card paid, so the payee is owed.
    error.keep = settleFromLog;
    throw error;
  }
  throw new SessionError('PAYMENT_UNRESOLVED', 'the card moved on since an unanswered attempt to pay and its log does not show it', { ...attempt.ref, claim, lastRecord: pending.lastRecord });
}

/**
 * Refusals about the holder's card: they count as attempts. Others (a malformed or unsigned
 * message, an expired session, certificates) say nothing about the card, so a stranger who knows
 * the obligation's id cannot make it fail by sending junk.
 */
export const CARD_REFUSALS: ReadonlySet<SessionRefusal> = new Set(['INSUFFICIENT_BALANCE', 'CARD_NOT_USABLE', 'PURSE_MISMATCH', 'CROSS_CITY_NOT_ALLOWED', 'UNKNOWN_CARD_ISSUER', 'UNKNOWN_CARD_KEY', 'ALGORITHM_NOT_ACCEPTED', 'COUNTER_ROLLBACK']);

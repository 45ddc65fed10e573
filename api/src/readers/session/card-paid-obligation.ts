import type { EntityManager } from '@mikro-orm/postgresql';
import { CARD_REFUSALS, type DebitClaim, settleEarlierClaim } from './card-claims.js';
import type { CardSessionPurpose, PendingDebit } from './purpose.js';
import { SessionError, type SessionRefusal } from './session.errors.js';

/** What every obligation a card pays in one purchase has: a merchant's payment, a bill payment. */
export interface ObligationRow {
  id: string;
  status: 'REQUIRES_CARD' | 'PROCESSING' | 'SUCCEEDED' | 'CANCELED' | 'FAILED';
  amount: string;
  currency: string;
  expires_at: Date;
  card_session_id: string | null;
  card_claim: DebitClaim | null;
}

/** The card that paid, as the session identified it. */
export type PayingCard = Pick<PendingDebit, 'asn' | 'currency' | 'cardCompanyId'>;

/**
 * The purchase step of an obligation paid by card, told once: the debit guard claims it for one
 * session before MAC1 leaves the host (settling first an earlier attempt whose answer was lost,
 * from what the card proves); the completion settles it on the card's TAC; a refusal about the
 * card counts as a failed attempt. What the obligation means (its own checks, its claim, its
 * ledger entry, its failed attempts) is the owning context's, in `spec`.
 */
export function cardPaidObligation<Row extends ObligationRow, Checked = void>(spec: {
  /** How refusals name it: `payment`, `bill payment`. */
  noun: string;
  /** How an earlier attempt names it (`this payment`, `this bill`), and the key of its id in a refusal's evidence. */
  earlier: { what: string; refKey: string };
  /** How the currency refusal names it (`the payment`, `the bill`). */
  currencyOf: string;
  idOf(purposeData: Record<string, unknown> | undefined): string;
  byId(em: EntityManager, id: string, lock?: boolean): Promise<Row | null>;
  /** The owner's own checks, after the common ones and before the currency (e.g. the merchant still takes payments). */
  check(em: EntityManager, row: Row, pending: PendingDebit): Promise<Checked>;
  /** Takes the obligation to PROCESSING for this session, with the card's claim (and what `check` found). */
  claim(em: EntityManager, row: Row, pending: PendingDebit, claim: DebitClaim, checked: Checked): Promise<void>;
  /** The card paid: its ledger entry and its status, at most once. */
  settle(em: EntityManager, row: Row, sessionId: string, paidBy: PayingCard, proof: string, tac?: string): Promise<bigint | void>;
  /** A refusal about the card while it waits for one: count the attempt (and fail it after the last). */
  countFailedAttempt(em: EntityManager, row: Row, refusal: SessionRefusal): Promise<void>;
}): Pick<CardSessionPurpose, 'debitGuard' | 'complete' | 'onRefusal'> {
  return {
    async debitGuard(em, pending) {
      const row = await spec.byId(em, spec.idOf(pending.session.context.purposeData), true);
      if (!row) throw new SessionError('PURPOSE_REFUSED', `no such ${spec.noun}`);
      if (row.status === 'SUCCEEDED') throw new SessionError('ALREADY_PAID', `the ${spec.noun} is already paid`);
      if (row.status === 'CANCELED' || row.status === 'FAILED') throw new SessionError('PURPOSE_REFUSED', `the ${spec.noun} is ${row.status}`);
      if (BigInt(row.amount) !== BigInt(pending.amount)) throw new SessionError('PURPOSE_REFUSED', `the session’s amount is not the ${spec.noun}’s`);
      if (row.status === 'PROCESSING' && row.card_session_id !== pending.session.id) {
        await settleEarlierClaim(em, { what: spec.earlier.what, ref: { [spec.earlier.refKey]: row.id }, sessionId: row.card_session_id, claim: row.card_claim }, pending, async (tx) =>
          void (await spec.settle(tx, (await spec.byId(tx, row.id, true))!, row.card_session_id!, pending, 'card transaction log')),
        );
      }
      if (new Date(row.expires_at) <= pending.now) throw new SessionError('PURPOSE_REFUSED', `the ${spec.noun} has expired`);
      const checked = await spec.check(em, row, pending);
      if (row.currency !== pending.currency) throw new SessionError('PURPOSE_REFUSED', `the card's purse is in ${pending.currency}, ${spec.currencyOf} in ${row.currency}`);
      await spec.claim(em, row, pending, { cardAsn: pending.asn, offlineCounter: pending.offlineCounter, terminal: pending.terminal, date: pending.date, time: pending.time, cardBalance: pending.cardBalance }, checked);
    },

    async complete(em, done) {
      const id = spec.idOf(done.session.context.purposeData);
      const row = await spec.byId(em, id, true);
      // The claim was this session's when MAC1 left the host, and nothing takes a live claim over.
      // A purchase the card proved later (GET TRANSACTION PROVE) is settled whoever holds the claim now: the card paid.
      if (!row || (row.card_session_id !== done.session.id && typeof done.result.provedBy !== 'string')) throw new Error(`${spec.noun} ${id} is not claimed by card session ${done.session.id}`);
      const proof = typeof done.result.proof === 'string' ? done.result.proof : typeof done.result.provedBy === 'string' ? `TAC from GET TRANSACTION PROVE in card session ${done.result.provedBy}` : typeof done.result.tac === 'string' ? 'TAC' : 'the reader’s signed read-back of the M1 card';
      return spec.settle(em, row, done.session.id, done, proof, typeof done.result.tac === 'string' ? done.result.tac : undefined);
    },

    async onRefusal(em, session, refusal) {
      if (!CARD_REFUSALS.has(refusal)) return;
      const row = await spec.byId(em, spec.idOf(session.context.purposeData), true);
      if (!row || row.status !== 'REQUIRES_CARD') return;
      await spec.countFailedAttempt(em, row, refusal);
    },
  };
}

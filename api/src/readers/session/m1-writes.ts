import type { EntityManager } from '@mikro-orm/postgresql';
import type { ReaderRow } from '../readers.service.js';
import { recordAudit } from './audit.js';
import { completeProven } from './complete.js';
import type { SessionRow } from './session.model.js';
import { SessionError } from './session.errors.js';
import type { SessionDeps } from './step.js';
import { cardPurseAccount, cardPurseBalance } from '../../ledger/accounts.js';
import { ABANDONED_SESSION_GRACE_SECONDS } from './expire-sessions.js';
import { isTransactionConflict, notUnlessConflict } from '../../db/transaction-conflicts.js';

/**
 * A write is settled from the card's value only this long after its session's expiry: the host
 * message carrying the script says when the session expires and the reader runs nothing after it
 * (by its own clock), so a reader that ran it just before, with its clock behind ours by less than
 * this, is not contradicted by a value read before it ran. Failed sessions wait too: a relay can
 * fail a session while it holds the script.
 */
export const M1_SETTLE_AFTER_EXPIRY_SECONDS = ABANDONED_SESSION_GRACE_SECONDS;
const ENDED_LONG_ENOUGH = `s.state <> 'COMPLETED' and s.expires_at <= ?::timestamptz - make_interval(secs => ${M1_SETTLE_AFTER_EXPIRY_SECONDS})`;

/**
 * No value left unbooked on an M1 card (issue 21). An M1 card has no counter, no log and no MAC,
 * so what GET TRANSACTION PROVE does for a CPU card (transaction-proofs.ts) is done here with the
 * only evidence the card keeps: its value. Every write script the host sends is recorded with the
 * value it is bound to (`old_value`: the script stops before writing on any other) and the value it
 * must leave (`new_value`). When the answer is lost, the card's next session reads its value, and:
 * - `new_value`: the card took the write (its purpose books it, as its own completion would have);
 * - `old_value`: it did not (the claim it held is free);
 * - anything else: the value cannot tell (offline spending, another write): UNRESOLVED, for the
 *   card company. So is a write with another write of the card after it: one value cannot tell them
 *   apart (a card has at most one open write: `refuseWhileM1WriteOpen`, and a unique index).
 * The value is evidence, not proof: docs/cards.md says what that leaves open, and why M1 loads have a
 * limit per load (`card_company.m1_load_max`).
 */
export type M1WriteOutcome = 'WRITTEN' | 'NOT_WRITTEN' | 'UNRESOLVED';

interface M1WriteRow {
  session_id: string;
  uid: string;
  operation: 'LOAD' | 'PURCHASE';
  old_value: number;
  new_value: number;
}

/** The refusal for a write while another write of the card is open: its purpose's "in progress". */
const inProgress = (session: SessionRow, why: string) => new SessionError(session.operation === 'LOAD' ? 'LOAD_IN_PROGRESS' : 'PAYMENT_IN_PROGRESS', why).at('card-answers');

/**
 * Before a write script is made: no other write of this card may be open. One value cannot tell
 * two writes apart, so a second write while the first is unanswered could book the first from the
 * value the second produced. Called after the settlement, so what is still open is a live session's
 * write (or one the settlement must still wait for): the holder tries again when it has ended.
 */
export async function refuseWhileM1WriteOpen(em: EntityManager, session: SessionRow, uid: string): Promise<void> {
  const [open] = await em.execute<{ session_id: string }[]>(`select session_id from card_m1_write where uid = ? and outcome is null and session_id <> ?`, [uid, session.id]);
  if (open) throw inProgress(session, `another write onto card ${uid} is not settled yet (card session ${open.session_id}); try again when it has ended`);
}

/**
 * The write script leaves the host: recorded in the step's transaction, with the claim its purpose
 * took. Of two readers racing to write one card, the unique index on open writes lets one in; the
 * other is refused as if it had found the first one open.
 */
export async function recordM1Write(em: EntityManager, session: SessionRow, uid: string, write: { oldValue: number; newValue: number }): Promise<void> {
  const inserted = await em.execute<{ session_id: string }[]>(
    `insert into card_m1_write (session_id, uid, operation, old_value, new_value) values (?, ?, ?, ?, ?) on conflict (uid) where outcome is null do nothing returning session_id`,
    [session.id, uid, session.operation, write.oldValue, write.newValue],
  );
  if (inserted.length === 0) throw inProgress(session, `another reader is writing card ${uid} right now; try again when it has finished`);
}

/** How a write ended, once known (null while open; undefined when the session sent no write script). */
export async function m1WriteOutcome(em: EntityManager, sessionId: string): Promise<M1WriteOutcome | null | undefined> {
  const [row] = await em.execute<{ outcome: M1WriteOutcome | null }[]>(`select outcome from card_m1_write where session_id = ?`, [sessionId]);
  return row ? row.outcome : undefined;
}

/** Sets a write's outcome once: of two sessions settling it at the same moment, one does, the other finds it settled. */
export async function settleM1Write(em: EntityManager, sessionId: string, outcome: M1WriteOutcome, settledBy: string, from: string): Promise<boolean> {
  const taken = await em.execute<{ session_id: string }[]>(
    `update card_m1_write set outcome = ?, settled_by = ?, settled_from = ?, settled_at = now() where session_id = ? and outcome is null returning session_id`,
    [outcome, settledBy, from, sessionId],
  );
  return taken.length > 0;
}

/**
 * A purse whose value block and backup disagree: a write torn between the two (the card left the
 * field after the value transfer, before the backup write). The pair is explained when this card's
 * open write, its session ended, took one of the two values to the other: the value block then says
 * how far it got (new value: written; old value: not), and the caller settles it from that value and
 * repairs the backup. Anything else stays a card error: the host does not guess which block is right.
 */
export async function tornWriteExplains(em: EntityManager, uid: string, value: number, backup: number, now: Date): Promise<boolean> {
  const [open] = await em.execute<{ old_value: number; new_value: number }[]>(
    `select w.old_value, w.new_value from card_m1_write w join card_session s on s.id = w.session_id
      where w.uid = ? and w.outcome is null and ${ENDED_LONG_ENOUGH}`,
    [uid, now.toISOString()],
  );
  if (!open) return false;
  const pair = [open.old_value, open.new_value];
  return value !== backup && pair.includes(value) && pair.includes(backup);
}

/**
 * At an M1 card's session, once the reader read its value (value and backup agreeing): every earlier
 * write of this card whose session ended unanswered is settled from that value, before anything else
 * the session does (a write bound to the value, a balance compared with the shadow). Returns what it
 * settled, for the session's audit row.
 */
export async function settleOpenM1Writes(em: EntityManager, deps: SessionDeps, settledBy: SessionRow, uid: string, value: number, now: Date): Promise<Record<string, unknown>[]> {
  const open = await em.execute<M1WriteRow[]>(
    `select w.session_id, w.uid, w.operation, w.old_value, w.new_value from card_m1_write w join card_session s on s.id = w.session_id
      where w.uid = ? and w.outcome is null and w.session_id <> ? and ${ENDED_LONG_ENOUGH}
      order by w.created_at, w.session_id`,
    [uid, settledBy.id, now.toISOString()],
  );
  const settled: Record<string, unknown>[] = [];
  for (const write of open) {
    // Defence in depth (the unique index keeps one write open per card): a write made after this one
    // may have produced the value, so the value says nothing about this one.
    const [later] = await em.execute<{ n: number }[]>(
      `select count(*)::int as n from card_m1_write l join card_m1_write w on w.session_id = ? where l.uid = w.uid and l.session_id <> w.session_id and (l.created_at, l.session_id) > (w.created_at, w.session_id)`,
      [write.session_id],
    );
    const ambiguous = open.length > 1 || later!.n > 0;
    let outcome: M1WriteOutcome = ambiguous ? 'UNRESOLVED' : value === write.new_value ? 'WRITTEN' : value === write.old_value ? 'NOT_WRITTEN' : 'UNRESOLVED';
    const from = `the card's value ${value} at card session ${settledBy.id} (the write took ${write.old_value} to ${write.new_value}${ambiguous ? `; ${open.length} writes unanswered, ${later!.n} written after it` : ''})`;
    if (!(await settleM1Write(em, write.session_id, outcome, settledBy.id, from))) continue;
    let unbooked: string | undefined;
    let returned: Record<string, unknown> | null = null;
    if (outcome === 'WRITTEN') {
      try {
        // A savepoint: a purpose that cannot take it (a payment canceled since, a purse the ledger will not take below zero) leaves nothing half-written.
        await em.transactional((tx) => bookWritten(tx, deps, write, settledBy));
      } catch (err) {
        // A deadlock is the whole message's to run again (card-session.service.ts), not a write to leave unresolved.
        if (isTransactionConflict(err)) throw err;
        unbooked = err instanceof Error ? err.message : String(err);
        // The card paid a purpose that no longer takes it (its payment canceled since): the value goes back to the holder, as for a CPU card's proof.
        if (write.operation === 'PURCHASE' && err instanceof SessionError && err.refusal === 'PURPOSE_REFUSED') returned = await em.transactional((tx) => returnWritten(tx, deps, write, settledBy, unbooked!)).catch(notUnlessConflict(null));
        if (!returned) {
          outcome = 'UNRESOLVED';
          await em.execute(`update card_m1_write set outcome = 'UNRESOLVED' where session_id = ?`, [write.session_id]);
        }
      }
    }
    const detail = { settledBy: settledBy.id, outcome, cardValue: value, oldValue: write.old_value, newValue: write.new_value, ...(unbooked ? { unbooked } : {}), ...(returned ? { returned } : {}) };
    await recordAudit(em, write.session_id, null, 'settled', outcome === 'UNRESOLVED' ? 'REFUSED' : 'ACCEPTED', null, detail);
    settled.push({ session: write.session_id, ...detail });
  }
  return settled;
}

/**
 * A reader's signed report that came after its session ended (the relay held the script, or the
 * report, past the expiry), whose read-back shows the write's new value: the card took the write.
 * Still open: it is settled WRITTEN and booked, as its own completion would have. Already taken as
 * not made (the value read elsewhere before it ran): the card holds value nobody booked, so the
 * write becomes UNRESOLVED and the difference is recorded for the card company
 * (card_balance_discrepancy); the value-above-shadow refusal keeps the card from more loads.
 */
export async function settleLateReadBack(em: EntityManager, deps: SessionDeps, session: SessionRow, reader: ReaderRow): Promise<M1WriteOutcome | null> {
  const outcome = await m1WriteOutcome(em, session.id);
  const [write] = await em.execute<M1WriteRow[]>(`select session_id, uid, operation, old_value, new_value from card_m1_write where session_id = ?`, [session.id]);
  if (!write) return null;
  const from = `the reader's signed read-back (${write.new_value}), delivered after the session ended`;
  if (outcome === null) {
    if (!(await settleM1Write(em, session.id, 'WRITTEN', session.id, from))) return null;
    try {
      await em.transactional((tx) => completeProven(tx, deps, session, reader, { asn: write.uid, oldBalance: write.old_value, newBalance: write.new_value, amount: Number(session.amount), proof: from }));
    } catch (err) {
      if (isTransactionConflict(err)) throw err;
      await em.execute(`update card_m1_write set outcome = 'UNRESOLVED' where session_id = ?`, [session.id]);
      await recordAudit(em, session.id, null, 'late read-back', 'REFUSED', null, { newValue: write.new_value, unbooked: err instanceof Error ? err.message : String(err) });
      return 'UNRESOLVED';
    }
    await recordAudit(em, session.id, null, 'late read-back', 'ACCEPTED', null, { outcome: 'WRITTEN', newValue: write.new_value });
    return 'WRITTEN';
  }
  if (outcome !== 'NOT_WRITTEN') return null;
  await em.execute(`update card_m1_write set outcome = 'UNRESOLVED', settled_from = settled_from || '; then ' || ? where session_id = ?`, [from, session.id]);
  const currency = session.context.currency ?? 'CNY';
  const shadow = await cardPurseBalance(em, write.uid, currency);
  await em.execute(`insert into card_balance_discrepancy (card_asn, session_id, currency, card_balance, shadow_balance) values (?, ?, ?, ?, ?)`, [write.uid, session.id, currency, write.new_value, shadow.toString()]);
  await recordAudit(em, session.id, null, 'late read-back', 'REFUSED', null, { outcome: 'UNRESOLVED', was: 'NOT_WRITTEN', newValue: write.new_value, shadow: shadow.toString() });
  return 'UNRESOLVED';
}

/** The card holds what the write left: its purpose books it as the write's own completion would have. */
async function bookWritten(em: EntityManager, deps: SessionDeps, write: M1WriteRow, settledBy: SessionRow): Promise<void> {
  const [session] = await em.execute<SessionRow[]>(`select * from card_session where id = ?`, [write.session_id]);
  const [reader] = await em.execute<ReaderRow[]>(`select * from reader where id = ?`, [session!.reader_id]);
  const result = {
    asn: write.uid,
    oldBalance: write.old_value,
    newBalance: write.new_value,
    amount: Number(session!.amount),
    provedBy: settledBy.id,
    proof: `the card's value at card session ${settledBy.id}`,
  };
  await completeProven(em, deps, session!, reader!, result);
}

/**
 * An M1 purchase the card's value shows it paid, whose purpose no longer takes it (its payment
 * CANCELED since): the chip paid, nobody was paid, so the value goes back to the holder as a REFUND
 * pending load (card purse → the card company's pending loads), written onto the card at its next
 * load session. Null when there is nothing to give it back to (an unregistered card, a purse shadow
 * that does not cover it): the write stays unresolved.
 */
async function returnWritten(em: EntityManager, deps: SessionDeps, write: M1WriteRow, settledBy: SessionRow, why: string): Promise<Record<string, unknown> | null> {
  const [session] = await em.execute<SessionRow[]>(`select * from card_session where id = ?`, [write.session_id]);
  const currency = session!.context.currency ?? 'CNY';
  const amount = BigInt(session!.amount!);
  if ((await deps.cardStatus(em, write.uid)) === null || (await cardPurseBalance(em, write.uid, currency)) < amount) return null;
  const purse = await cardPurseAccount(em, write.uid, currency);
  const given = await deps.returnProvedValue(em, { asn: write.uid, amount, currency, fromAccountId: purse.id, claimSession: write.session_id, provedBy: settledBy.id, tac: 'M1 value', reason: why });
  if (!given) throw new SessionError('PURPOSE_REFUSED', `card ${write.uid} is not registered: nothing to give the value back to`);
  return { pendingLoad: given.pendingLoad, amount: Number(amount), currency };
}

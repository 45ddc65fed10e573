import type { EntityManager } from '@mikro-orm/postgresql';
import { TransactionType } from '../../cardcrypto/epurse.js';
import type { ReaderRow } from '../readers.service.js';
import * as apdu from './apdu.js';
import { checkLoadProof, checkPurchaseProof } from './checks/transaction-proof.js';
import { recordCounter } from './checks/counters.js';
import { completeProven } from './complete.js';
import { type CardIdentity, hex, type SessionContext, type SessionRow } from './session.model.js';
import type { SessionDeps, StepInput, StepResult } from './step.js';
import { SessionError } from './session.errors.js';
import { recordAudit } from './audit.js';
import { UnknownCardKeyError } from '../key-store.js';
import { cardPurseAccount, cardPurseBalance } from '../../ledger/accounts.js';
import { isTransactionConflict, notUnlessConflict } from '../../db/transaction-conflicts.js';

/**
 * No value left unbooked (issue 17, CARD-PROTOCOL.md §8). When MAC2 (a load) or MAC1 (a purchase)
 * left the host and the card's answer (its TAC) never came back — a relay corrupted it, the app
 * died, the session ran out — the card may have changed while the ledger did not. At the card's
 * next CPU session of any kind the host asks the card to prove it (GET TRANSACTION PROVE), verifies
 * the proof with the card's keys (which a reader never holds, so it cannot forge one), and books the
 * transaction through its purpose, once per card and counter (card_load_proof, card_purchase_proof).
 */

export type ProofKind = 'load' | 'purchase';

/** What tells the kinds apart: their operation, what the session kept of INITIALIZE, their counter and their table. */
const KINDS = {
  load: { operation: 'LOAD', kept: 'init', counter: 'onlineCounter', column: 'online_counter', table: 'card_load_proof', type: TransactionType.EPURSE_LOAD, check: checkLoadProof },
  purchase: { operation: 'PURCHASE', kept: 'purchase', counter: 'offlineCounter', column: 'offline_counter', table: 'card_purchase_proof', type: TransactionType.EPURSE_PURCHASE, check: checkPurchaseProof },
} as const;

/** A session that sent the card its last MAC, never got the TAC, and can no longer make the card act. */
export interface OpenClaim {
  session: SessionRow;
  counter: number;
}

const counterOf = (kind: ProofKind, session: SessionRow): number => (kind === 'load' ? session.context.init!.onlineCounter : session.context.purchase!.offlineCounter);

/**
 * The card's transactions of one kind whose answer was lost and that nothing has settled: the last
 * MAC issued (the session kept INITIALIZE's answer), not completed, no longer live, not proved, and
 * at a counter the card has not provably passed (the counter the host recorded after a TAC: the
 * card did another transaction of this kind at or after it, whose session proved this one first or
 * found the counter unchanged). Newest first.
 */
export async function openClaims(em: EntityManager, kind: ProofKind, asn: string, now: Date): Promise<OpenClaim[]> {
  return (await openClaimsOf(em, [kind], asn, now))[kind];
}

/** The query of openClaims for one kind (its parameters: the card's ASN, then now). */
function openClaimsSql(kind: ProofKind): string {
  const k = KINDS[kind];
  return `select '${kind}' as claim_kind, s.* from card_session s
       left join card_counter cc on cc.asn = s.card_asn
      where s.card_asn = ? and s.card_type = 'CPU' and s.operation = '${k.operation}' and s.context->'${k.kept}' is not null
        and s.state <> 'COMPLETED' and (s.state = 'FAILED' or s.expires_at <= ?)
        and (s.context->'${k.kept}'->>'${k.counter}')::int >= coalesce(cc.${k.column}, 0)
        and not exists (select 1 from ${k.table} p where p.session_id = s.id)`;
}

/** openClaims of several kinds in one statement (message 1 asks about both). */
async function openClaimsOf(em: EntityManager, kinds: readonly ProofKind[], asn: string, now: Date): Promise<Record<ProofKind, OpenClaim[]>> {
  const rows = await em.execute<(SessionRow & { claim_kind: ProofKind; created_at: Date })[]>(
    kinds.map(openClaimsSql).join(' union all '),
    kinds.flatMap(() => [asn, now]),
  );
  // Newest first: the highest counter, then the oldest session at it.
  const sorted = rows.sort((a, b) => counterOf(b.claim_kind, b) - counterOf(a.claim_kind, a) || +new Date(a.created_at) - +new Date(b.created_at));
  const claims: Record<ProofKind, OpenClaim[]> = { load: [], purchase: [] };
  for (const { claim_kind: kind, ...session } of sorted) claims[kind].push({ session, counter: counterOf(kind, session) });
  return claims;
}

/**
 * At message 1 of a CPU session: if the card may have done an earlier load or purchase nobody
 * booked, the host asks it to prove the newest of each before anything else (one round per session).
 * A load session passes the online counter INITIALIZE FOR LOAD reported, a purchase session the
 * offline one: a claim at that counter was not taken. The card drops a transaction in progress when
 * it gets another command, so a load or a purchase starts again from SELECT after the proof.
 */
export async function askForProofIfOwed(s: StepInput, card: CardIdentity, context: SessionContext, seen: { onlineCounter?: number; offlineCounter?: number; balance?: number }): Promise<StepResult | null> {
  if (s.session.context.proofAsked) return null;
  const seenCounter = { load: seen.onlineCounter, purchase: seen.offlineCounter };
  const proving: NonNullable<SessionContext['proving']> = {};
  const commands = [];
  const asked: Record<string, unknown> = {};
  const open = await openClaimsOf(s.em, ['load', 'purchase'], card.asn, s.now);
  for (const kind of ['load', 'purchase'] as const) {
    const claims = open[kind].filter((c) => seenCounter[kind] === undefined || c.counter < seenCounter[kind]!);
    const newest = claims[0];
    if (!newest) continue;
    proving[kind] = newest.counter;
    commands.push({ apdu: hex(apdu.getTransactionProve(KINDS[kind].type, newest.counter)) });
    asked[kind] = { counter: newest.counter, sessions: claims.filter((c) => c.counter === newest.counter).map((c) => c.session.id) };
  }
  if (commands.length === 0) return null;
  if (seen.balance !== undefined) proving.balance = seen.balance;
  return { state: 'AWAITING_PROOF', context: { ...context, proving }, commands, asn: card.asn, auditDetail: { asn: card.asn, proving: asked } };
}

/** The kinds a proof round asked about, in the order of its commands. */
export const provingKinds = (proving: NonNullable<SessionContext['proving']>): ProofKind[] => (['load', 'purchase'] as const).filter((k) => proving[k] !== undefined);

/**
 * The card answered GET TRANSACTION PROVE for one kind. MAC2 || TAC is checked against every
 * unsettled transaction at that counter (each bound its own terminal, date and time); the one it
 * proves is booked. `94 06` (or a card that does not know the command): no proof; the transaction
 * stays open for the card's next session or the card company.
 */
export async function settleFromProof(em: EntityManager, deps: SessionDeps, kind: ProofKind, provedBy: SessionRow, card: CardIdentity, response: string | undefined, now: Date): Promise<{ settled: string | null; answered: string }> {
  const counter = provedBy.context.proving![kind]!;
  let proof: { mac2: Buffer; tac: Buffer };
  try {
    proof = apdu.parseTransactionProve(apdu.ok(response, 'GET TRANSACTION PROVE', provedBy.context.profile?.toleratedStatusWords));
  } catch (err) {
    if (err instanceof apdu.CardAnswerError) return { settled: null, answered: err.statusWord ?? 'no valid answer' };
    throw err;
  }
  for (const claim of (await openClaims(em, kind, card.asn, now)).filter((c) => c.counter === counter)) {
    let proved: boolean;
    try {
      proved = await KINDS[kind].check(deps, em, claim.session, proof);
    } catch (err) {
      // A key the host no longer has (a retired key version): not proved. Thrown, it would fail every session of the card for good.
      if (!(err instanceof UnknownCardKeyError)) throw err;
      await recordAudit(em, claim.session.id, null, 'proved', 'REFUSED', null, { provedBy: provedBy.id, tac: hex(proof.tac), unverifiable: err.message });
      continue;
    }
    if (proved) {
      try {
        // A savepoint: a purpose that cannot take it (a payment canceled meanwhile) leaves nothing half-written, and the session goes on.
        const booked = await em.transactional((tx) => bookProven(tx, deps, kind, claim, provedBy, proof.tac));
        return { settled: booked ? claim.session.id : null, answered: hex(proof.tac) };
      } catch (err) {
        // A deadlock is the whole message's to run again (card-session.service.ts), not a purpose that cannot take it.
        if (isTransactionConflict(err)) throw err;
        // The purpose can no longer take it (the payment was canceled meanwhile): the value the card proved it paid goes back to the holder.
        if (kind === 'purchase' && err instanceof SessionError && err.refusal === 'PURPOSE_REFUSED') {
          // Its own savepoint: a return that cannot be made leaves the claim open, audited below.
          const returned = await em.transactional((tx) => returnProven(tx, deps, claim, provedBy, proof.tac, err.message)).catch(notUnlessConflict(false));
          if (returned) return { settled: claim.session.id, answered: hex(proof.tac) };
        }
        await recordAudit(em, claim.session.id, null, 'proved', 'REFUSED', null, { provedBy: provedBy.id, tac: hex(proof.tac), unbooked: err instanceof Error ? err.message : String(err) });
        return { settled: null, answered: hex(proof.tac) };
      }
    }
  }
  return { settled: null, answered: hex(proof.tac) };
}

/** What the claim's own completion would have had as its result. */
function resultOf(kind: ProofKind, session: SessionRow, tac: Buffer, provedBy: string): Record<string, unknown> {
  const amount = Number(session.amount);
  if (kind === 'load') {
    const init = session.context.init!;
    return { asn: session.card_asn!, oldBalance: init.oldBalance, newBalance: init.oldBalance + amount, amount, onlineCounter: init.onlineCounter + 1, tac: hex(tac), provedBy };
  }
  const p = session.context.purchase!;
  return { asn: session.card_asn!, oldBalance: p.balance, newBalance: p.balance - amount, amount, offlineCounter: p.offlineCounter + 1, terminalSerial: p.terminalSerial, tac: hex(tac), provedBy };
}

/**
 * Books a proved transaction once: the row per card and counter is taken first (a second session
 * proving the same one, even at the same moment, waits on it and then books nothing), then its
 * purpose books it as its own session's completion would have. A purchase the purse shadow does not
 * cover (value the ledger never had) is not booked: it stays open, for the card company.
 */
async function bookProven(em: EntityManager, deps: SessionDeps, kind: ProofKind, claim: OpenClaim, provedBy: SessionRow, tac: Buffer): Promise<boolean> {
  const { session } = claim;
  const k = KINDS[kind];
  const currency = session.context.currency ?? 'CNY';
  if (kind === 'purchase' && (await cardPurseBalance(em, session.card_asn!, currency)) < BigInt(session.amount!)) return false;
  // The top-up first, as resolvePendingLoad takes it (top-up, then the proof row): one lock order, no deadlock between them.
  if (kind === 'load') await em.execute(`select id from top_up where load_session_id = ? order by id for update`, [session.id]);
  const taken = await em.execute<{ session_id: string }[]>(
    `insert into ${k.table} (asn, ${k.column}, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing returning session_id`,
    [session.card_asn, claim.counter, session.id, provedBy.id, hex(tac)],
  );
  if (taken.length === 0) return false;
  const result = resultOf(kind, session, tac, provedBy.id);
  const [reader] = await em.execute<ReaderRow[]>(`select * from reader where id = ?`, [session.reader_id]);
  await completeProven(em, deps, session, reader!, result);
  // The counter row after the booking: the booking's post() has locked the card's purse (with its
  // counterpart, in id order), as an offline upload locks the purses before it moves the counters.
  // Counter first, purse second waited crosswise on a batch bringing the same card's rides.
  await recordCounter(em, session.card_asn!, k.column, claim.counter + 1);
  await recordAudit(em, session.id, null, 'proved', 'ACCEPTED', null, result);
  return true;
}

/**
 * A purchase the card proved whose purpose no longer takes it (its payment CANCELED or FAILED
 * since): the chip paid, nobody was paid, so the value comes back to the holder: card purse → the
 * card company's pending loads (a REFUND pending load, keyed by the claim's session), written back
 * onto the card at its next load session. Taken once per card and counter, like a booking; the card
 * company hears of it. False when there is nothing to return (the purse shadow does not cover it, an
 * unregistered card, or another session took the counter).
 */
async function returnProven(em: EntityManager, deps: SessionDeps, claim: OpenClaim, provedBy: SessionRow, tac: Buffer, why: string): Promise<boolean> {
  const { session } = claim;
  const asn = session.card_asn!;
  const currency = session.context.currency ?? 'CNY';
  const amount = BigInt(session.amount!);
  if ((await deps.cardStatus(em, asn)) === null || (await cardPurseBalance(em, asn, currency)) < amount) return false;
  const taken = await em.execute<{ session_id: string }[]>(
    `insert into card_purchase_proof (asn, offline_counter, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing returning session_id`,
    [asn, claim.counter, session.id, provedBy.id, hex(tac)],
  );
  if (taken.length === 0) return false;
  const purse = await cardPurseAccount(em, asn, currency);
  const returned = await deps.returnProvedValue(em, { asn, amount, currency, fromAccountId: purse.id, claimSession: session.id, provedBy: provedBy.id, tac: hex(tac), reason: why });
  // No card to give it back to after all: undo the proof row with the rest of this savepoint.
  if (!returned) throw new SessionError('PURPOSE_REFUSED', `card ${asn} is not registered: nothing to give the value back to`);
  // The counter row after the purse (as bookProven, and as an offline upload takes them).
  await recordCounter(em, asn, 'offline_counter', claim.counter + 1);
  const detail = { cardSession: session.id, provedBy: provedBy.id, tac: hex(tac), amount: Number(amount), currency, pendingLoad: returned.pendingLoad, reason: why };
  await recordAudit(em, session.id, null, 'proved', 'ACCEPTED', null, { returned: detail });
  return true;
}

/**
 * Records, for a transaction that completed normally, that the card did it at that counter, and
 * the counter the card moved on to (as recordCounter: never lowered), in one statement.
 */
export async function recordTaken(em: EntityManager, kind: ProofKind, session: SessionRow, counter: number, tac: Buffer): Promise<void> {
  const k = KINDS[kind];
  await em.execute(
    `with moved_on as (
       insert into card_counter (asn, ${k.column}) values (?, ?)
       on conflict (asn) do update set ${k.column} = greatest(card_counter.${k.column}, excluded.${k.column}), updated_at = now()
     )
     insert into ${k.table} (asn, ${k.column}, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing`,
    [session.card_asn, counter + 1, session.card_asn, counter, session.id, session.id, hex(tac)],
  );
}

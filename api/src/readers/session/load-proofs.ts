import type { EntityManager } from '@mikro-orm/postgresql';
import { TransactionType } from '../../cardcrypto/epurse.js';
import type { ReaderRow } from '../readers.service.js';
import * as apdu from './apdu.js';
import { checkLoadProof } from './checks/load-proof.js';
import { recordCounter } from './checks/counters.js';
import { completeProven } from './complete.js';
import { type CardIdentity, hex, type SessionContext, type SessionRow } from './session.model.js';
import type { SessionDeps, StepInput, StepResult } from './step.js';

/**
 * No value left unbooked (issue 17, CARD-PROTOCOL.md §8). When MAC2 left the host and the card's
 * answer (its TAC) never came back — a relay corrupted it, the app died, the session ran out — the
 * card may hold value the ledger does not. At the card's next CPU session of any kind the host asks
 * the card to prove that load (GET TRANSACTION PROVE), verifies the TAC with the card's DTK (which a
 * reader never holds, so it cannot forge one), and books the load through its purpose, once per
 * card and online counter (card_load_proof).
 */

/** A load session that issued MAC2 and never got its TAC, and that can no longer make the card act. */
export interface OpenLoadClaim {
  session: SessionRow;
  onlineCounter: number;
}

/**
 * The card's loads whose answer was lost and that nothing has settled: MAC2 issued (the session
 * kept INITIALIZE's answer), not completed, no longer live, not proved, and at a counter the card
 * has not provably passed (a counter the host recorded after a TAC: the card took another load at
 * or after it, whose session proved this one first or found the counter unchanged). Newest first.
 */
export async function openLoadClaims(em: EntityManager, asn: string, now: Date): Promise<OpenLoadClaim[]> {
  const rows = await em.execute<SessionRow[]>(
    `select s.* from card_session s
       left join card_counter cc on cc.asn = s.card_asn
      where s.card_asn = ? and s.card_type = 'CPU' and s.operation = 'LOAD' and s.context->'init' is not null
        and s.state <> 'COMPLETED' and (s.state = 'FAILED' or s.expires_at <= ?)
        and (s.context->'init'->>'onlineCounter')::int >= coalesce(cc.online_counter, 0)
        and not exists (select 1 from card_load_proof p where p.session_id = s.id)
      order by (s.context->'init'->>'onlineCounter')::int desc, s.created_at`,
    [asn, now],
  );
  return rows.map((session) => ({ session, onlineCounter: session.context.init!.onlineCounter }));
}

/**
 * At message 1 of a CPU session: if the card may have taken an earlier load nobody booked, the host
 * asks it to prove the newest such load before anything else (one round per session). A load
 * session passes the counter INITIALIZE FOR LOAD reported: a claim at that counter was not taken.
 * The card drops a transaction in progress when it gets another command, so a load or a purchase
 * starts again from SELECT after the proof (see `proofAnswered`).
 */
export async function askForProofIfOwed(s: StepInput, card: CardIdentity, context: SessionContext, seen: { onlineCounter?: number; balance?: number }): Promise<StepResult | null> {
  if (s.session.context.proofAsked) return null;
  const claims = (await openLoadClaims(s.em, card.asn, s.now)).filter((c) => seen.onlineCounter === undefined || c.onlineCounter < seen.onlineCounter);
  const newest = claims[0];
  if (!newest) return null;
  const type = TransactionType.EPURSE_LOAD;
  return {
    state: 'AWAITING_PROOF',
    context: { ...context, proving: { onlineCounter: newest.onlineCounter, ...(seen.balance !== undefined ? { balance: seen.balance } : {}) } },
    commands: [{ apdu: hex(apdu.getTransactionProve(type, newest.onlineCounter)) }],
    asn: card.asn,
    auditDetail: { asn: card.asn, proving: { onlineCounter: newest.onlineCounter, sessions: claims.filter((c) => c.onlineCounter === newest.onlineCounter).map((c) => c.session.id) } },
  };
}

/**
 * The card answered GET TRANSACTION PROVE. MAC2 || TAC: the TAC is checked against every unsettled
 * load at that counter (each bound its own terminal, date and time); the one it proves is booked.
 * `94 06` (or a card that does not know the command): no proof; the load stays open for the card's
 * next session or the card company (resolvePendingLoad). The session then goes on.
 */
export async function settleFromProof(em: EntityManager, deps: SessionDeps, provedBy: SessionRow, card: CardIdentity, response: string | undefined, now: Date): Promise<{ settled: string | null; answered: string }> {
  const counter = provedBy.context.proving!.onlineCounter;
  let proof: { mac2: Buffer; tac: Buffer };
  try {
    proof = apdu.parseTransactionProve(apdu.ok(response, 'GET TRANSACTION PROVE'));
  } catch (err) {
    if (err instanceof apdu.CardAnswerError) return { settled: null, answered: err.statusWord ?? 'no valid answer' };
    throw err;
  }
  for (const claim of (await openLoadClaims(em, card.asn, now)).filter((c) => c.onlineCounter === counter)) {
    if (await checkLoadProof(deps, em, claim.session, proof.tac)) {
      await bookProvenLoad(em, deps, claim, provedBy, proof.tac);
      return { settled: claim.session.id, answered: hex(proof.tac) };
    }
  }
  return { settled: null, answered: hex(proof.tac) };
}

/**
 * Books a proved load once: the row per card and counter is taken first (a second session proving
 * the same load, even at the same moment, waits on it and then books nothing), then the load's
 * purpose books it as its own session's completion would have.
 */
async function bookProvenLoad(em: EntityManager, deps: SessionDeps, claim: OpenLoadClaim, provedBy: SessionRow, tac: Buffer): Promise<void> {
  const { session } = claim;
  const init = session.context.init!;
  const taken = await em.execute<{ session_id: string }[]>(
    `insert into card_load_proof (asn, online_counter, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing returning session_id`,
    [session.card_asn, init.onlineCounter, session.id, provedBy.id, hex(tac)],
  );
  if (taken.length === 0) return;
  await recordCounter(em, session.card_asn!, 'online_counter', init.onlineCounter + 1);
  const amount = Number(session.amount);
  const result = { asn: session.card_asn!, oldBalance: init.oldBalance, newBalance: init.oldBalance + amount, amount, onlineCounter: init.onlineCounter + 1, tac: hex(tac), provedBy: provedBy.id };
  const [reader] = await em.execute<ReaderRow[]>(`select * from reader where id = ?`, [session.reader_id]);
  await completeProven(em, deps, session, reader!, result);
  await em.execute(`insert into card_session_audit (session_id, seq, step, outcome, refusal, detail) values (?, null, 'proved', 'ACCEPTED', null, ?)`, [session.id, JSON.stringify(result)]);
}

/** Records, for a load that completed normally, that the card took it at that counter. */
export async function recordLoadTaken(em: EntityManager, session: SessionRow, onlineCounter: number, tac: Buffer): Promise<void> {
  await em.execute(`insert into card_load_proof (asn, online_counter, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing`, [session.card_asn, onlineCounter, session.id, session.id, hex(tac)]);
}

import type { EntityManager } from '@mikro-orm/postgresql';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { sessionIsLive } from '../readers/session/card-claims.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal, type PendingCredit } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import type { Principal } from '../auth/principal.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { TopUpError } from './topups.errors.js';
import { findTopUpFor, type LoadClaim, maskCardNumber, moveTo, recordPendingLoad, topUpById, topUpGlobalId, type TopUpRow } from './topups.service.js';
import { findCardByAsn } from '../cards/cards.service.js';
import { recordEvent } from '../webhooks/outbox.js';
import type { ProvedValueReturn } from '../readers/session/step.js';
import { cardPurseAccount, pendingLoadAccount } from '../ledger/accounts.js';
import { type KeyStore, UnknownCardKeyError } from '../readers/key-store.js';
import { checkLoadProof } from '../readers/session/checks/transaction-proof.js';
import { recordCounter } from '../readers/session/checks/counters.js';
import type { CardType, SessionRow } from '../readers/session/session.model.js';
import { m1WriteOutcome } from '../readers/session/m1-writes.js';
import type { TopUpLimits } from '../config/config.js';

/**
 * Writing a paid top-up onto its card (补登, CARD-PROTOCOL.md §8). purposeData: `{ topUpId }`.
 * The guard claims the pending load for one session before MAC2 leaves the host; the TAC then
 * proves the card took it, and the completion moves it from pending loads to the card's purse.
 */
export const PENDING_LOAD = 'pending-load';

const topUpIdOf = (purposeData: Record<string, unknown> | undefined) => String(purposeData?.topUpId);

/**
 * Another session issued MAC2 for this load before. If it may still be writing, this one waits its
 * turn. If it ended, the card itself tells whether it took that MAC2, from its online counter (which
 * MAC1 authenticates, and which only a host MAC2 moves on):
 * - the same counter: it did not; a new MAC2 is safe (the old one no longer verifies on the card),
 *   so the earlier session's claim is released on every load it held (a pickup writes several);
 * - past it, and the host issued no other MAC2 for this card at that counter: the card can only
 *   have moved on with the claim's MAC2, so it took every load that MAC2 carried, settled as LOADED
 *   now (purchases in between do not matter: they move the offline counter);
 * - otherwise (another MAC2 for that counter, or a counter behind the claim): unresolved.
 * The card's log record is not evidence here: only the reader's signature covers it.
 */
export async function settleEarlierClaim(em: EntityManager, topUp: TopUpRow, pending: PendingCredit): Promise<void> {
  const earlier = topUp.load_session_id!;
  if (await sessionIsLive(em, earlier, pending.now)) throw new SessionError('LOAD_IN_PROGRESS', 'another reader is writing this top-up onto the card; try again when it has finished');
  const claim = topUp.load_claim!;
  if ('m1' in claim || pending.onlineCounter === null) return settleEarlierM1Claim(em, topUp, earlier);
  if (pending.onlineCounter === claim.onlineCounter) {
    await em.execute(`update top_up set load_session_id = null, load_claim = null, updated_at = now() where load_session_id = ? and status = 'PAID'`, [earlier]);
    return;
  }
  const others = await em.execute<{ id: string }[]>(
    `select id from card_session where card_asn = ? and operation = 'LOAD' and id <> ? and context->'init' is not null and (context->'init'->>'onlineCounter')::int = ?`,
    [pending.card.asn, earlier, claim.onlineCounter],
  );
  if (pending.onlineCounter > claim.onlineCounter && others.length === 0) {
    const error = new SessionError('ALREADY_LOADED', 'the card took this top-up in an earlier session whose answer was lost; it is settled now', { topUp: topUp.id, settledFrom: earlier, claimCounter: claim.onlineCounter, cardCounter: pending.onlineCounter });
    // Stands although this session is refused: the card holds the value, so the ledger must too.
    error.keep = (tx) => finishClaim(tx, earlier, { asn: pending.card.asn, currency: pending.card.currency }, 'online counter');
    throw error;
  }
  throw new SessionError('LOAD_UNRESOLVED', 'the card’s online counter cannot tell whether it took an unanswered load of this top-up; the card company settles it', { topUp: topUp.id, claim, cardCounter: pending.onlineCounter, otherSessions: others.map((o) => o.id) });
}

/**
 * An M1 card's earlier write of this load, settled from its value when this session read it
 * (readers/session/m1-writes.ts, before any purpose runs): a LOADED top-up never gets here; not
 * written frees the claim (on every load the write carried); otherwise the value could not tell,
 * and the card company settles it (resolvePendingLoad).
 */
async function settleEarlierM1Claim(em: EntityManager, topUp: TopUpRow, earlier: string): Promise<void> {
  const outcome = await m1WriteOutcome(em, earlier);
  if (outcome === 'NOT_WRITTEN') {
    await em.execute(`update top_up set load_session_id = null, load_claim = null, updated_at = now() where load_session_id = ? and status = 'PAID'`, [earlier]);
    return;
  }
  throw new SessionError('LOAD_UNRESOLVED', 'the M1 card’s value cannot tell whether it took an unanswered write of this load (it moved by something else than the load); the card company settles it', { topUp: topUp.id, claim: topUp.load_claim, settledFrom: earlier, outcome: outcome ?? 'open' });
}

/** What a load session claims a pending load with: the evidence that settles its lost answer at the card's next session. */
export function loadClaimOf(pending: PendingCredit): LoadClaim {
  if (pending.m1) return { m1: pending.m1, oldBalance: pending.oldBalance };
  return { onlineCounter: pending.onlineCounter!, oldBalance: pending.oldBalance, terminal: pending.terminal!, date: pending.date!, time: pending.time! };
}

/**
 * Pending loads are written onto both card types: a CPU card by MAC2, an M1 card by a host-signed
 * write script (issue 21). The session's card type is the card's, from the registry; a request that
 * names another one is refused.
 */
export async function cardTypeForLoad(em: EntityManager, cardId: string, asked: CardType | null | undefined): Promise<CardType | { refused: string }> {
  const [card] = await em.execute<{ card_type: CardType }[]>(`select card_type from card where id = ?`, [cardId]);
  const type = card?.card_type ?? 'CPU';
  if (asked != null && asked !== type) return { refused: `the card is a ${type} card, not ${asked}` };
  return type;
}

/**
 * Before a guard claims pending loads: they and every load their earlier claims hold (a pickup
 * claims several), locked in id order as resolvePendingLoad and a proof take them. Settling an
 * earlier claim then touches no row this transaction does not hold yet, so a guard never waits
 * on the card company's settlement (or another guard) while holding a row it wants: no deadlock.
 */
export async function lockWithEarlierClaims(em: EntityManager, topUpIds: string[]): Promise<void> {
  // Only ids Postgres can read as uuids: anything else names no load, and the guard refuses it as such.
  const ids = topUpIds.filter((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id));
  if (ids.length === 0) return;
  await em.execute(
    `select id from top_up where id in (?) or load_session_id in (select load_session_id from top_up where id in (?) and load_session_id is not null) order by id for update`,
    [ids, ids],
  );
}

/** The pending loads one session claimed (one, or a pickup's several), locked in id order: one MAC2 carried them all. */
async function loadsClaimedBy(em: EntityManager, sessionId: string): Promise<string[]> {
  const rows = await em.execute<{ id: string }[]>(`select id from top_up where load_session_id = ? and status = 'PAID' order by id for update`, [sessionId]);
  return rows.map((r) => r.id);
}

/** Everything one MAC2 carried is on the card: each of its pending loads LOADED. */
async function finishClaim(em: EntityManager, sessionId: string, card: { asn: string; currency: string }, proof: string, tac?: string): Promise<void> {
  for (const id of await loadsClaimedBy(em, sessionId)) await finishLoad(em, id, sessionId, card, proof, tac);
}

/** How the load shows in the card's history: a top-up as a top-up, a transfer or a refund as what it is. */
const LOAD_ENTRY_OF: Record<TopUpRow['origin'], (t: TopUpRow) => Record<string, unknown>> = {
  APP: (t) => ({ kind: 'TOP_UP_LOAD', topUp: t.id }),
  COUNTER: (t) => ({ kind: 'TOP_UP_LOAD', topUp: t.id }),
  AUTO: (t) => ({ kind: 'TOP_UP_LOAD', topUp: t.id }),
  TRANSFER: (t) => ({ kind: 'BALANCE_TRANSFER', balanceTransfer: t.idempotency_key.replace(/^card-balance-transfer:/, ''), pendingLoad: t.id }),
  REFUND: (t) => (t.idempotency_key.startsWith('card-proof-return:') ? { kind: 'REFUND', cardSession: t.idempotency_key.split(':')[1], pendingLoad: t.id } : { kind: 'REFUND', payment: t.idempotency_key.split(':')[1], pendingLoad: t.id }),
};

/**
 * The card company settles a pending load whose write was started (MAC2 issued) and that the card
 * cannot settle itself (LOAD_UNRESOLVED, or a card that is lost and will not tap again), from what
 * it found out: `loaded` books it onto the card's purse (LOADED); not loaded releases the claim, so
 * the load can be written again or refunded. The note goes into the top-up's history.
 */
export async function resolvePendingLoad(em: EntityManager, principal: Principal, topUpId: string, input: { loaded: boolean; note: string; tac?: string | null }, keyStore: KeyStore | null = null): Promise<TopUpRow> {
  if (principal.kind !== 'ISSUER' || !principal.scopes.includes('topups:write') || !principal.tenantId) throw new TopUpError('NOT_FOUND', `no top-up ${topUpId} you may settle`, 'topUp');
  if (!input.note.trim() || input.note.length > 500) throw new TopUpError('INVALID_INPUT', 'say how it was settled (1 to 500 characters)', 'note');
  if (input.tac != null && (!input.loaded || !/^[0-9a-fA-F]{8}$/.test(input.tac) || !keyStore)) throw new TopUpError('INVALID_INPUT', 'a TAC is 8 hex digits, given with loaded: true', 'tac');
  return em.transactional(async (tx) => {
    // Every load of its claim first, in id order as a session's guard and a proof take them: no deadlock between them.
    const unlocked = await topUpById(tx, topUpId);
    if (unlocked?.load_session_id) await loadsClaimedBy(tx, unlocked.load_session_id);
    const topUp = await topUpById(tx, topUpId, true);
    if (!topUp || topUp.card_company_id !== principal.tenantId) throw new TopUpError('NOT_FOUND', `no top-up ${topUpId} you may settle`, 'topUp');
    if (topUp.status !== 'PAID' || !topUp.load_session_id) throw new TopUpError('INVALID_INPUT', 'only a PAID top-up whose write onto the card was started needs settling', 'topUp');
    const [live] = await tx.execute<{ id: string }[]>(`select id from card_session where id = ? and state not in ('COMPLETED','FAILED') and expires_at > now()`, [topUp.load_session_id]);
    if (live) throw new TopUpError('INVALID_INPUT', 'a reader is writing it right now; wait for the session to end', 'topUp');
    // The card proved it took this load (GET TRANSACTION PROVE at a later tap): it is booked, and cannot be released.
    const [proved] = await tx.execute<{ proved_by: string }[]>(`select proved_by from card_load_proof where session_id = ?`, [topUp.load_session_id]);
    if (proved && !input.loaded) throw new TopUpError('INVALID_INPUT', 'the card proved it took this load (its TAC verified); it cannot be released', 'loaded');
    const cause = `settled by the card company (${principal.clientId}): ${input.note.trim()}`;
    // One MAC2 carried every load its session claimed (a pickup writes several): they are settled together.
    if (input.loaded) {
      const [card] = await tx.execute<{ currency: string }[]>(`select btrim(ci.currency) as currency from card c join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id where c.id = ?`, [topUp.card_id]);
      if (input.tac != null) {
        const movedOn = await recordProofOfLoad(tx, keyStore!, topUp.load_session_id, Buffer.from(input.tac, 'hex'));
        await finishClaim(tx, topUp.load_session_id, { asn: topUp.asn!, currency: card!.currency }, `${cause} (the card's TAC from GET TRANSACTION PROVE, verified)`, input.tac.toUpperCase());
        // The card moved its online counter on with this load: recorded after the purse, the order every booking takes them in.
        await recordCounter(tx, movedOn.asn, 'online_counter', movedOn.counter);
      } else {
        await finishClaim(tx, topUp.load_session_id, { asn: topUp.asn!, currency: card!.currency }, cause);
      }
    } else {
      for (const id of await loadsClaimedBy(tx, topUp.load_session_id)) {
        await tx.execute(`update top_up set load_session_id = null, load_claim = null, updated_at = now() where id = ?`, [id]);
        await tx.execute(`insert into top_up_history (top_up_id, from_status, to_status, cause) values (?, 'PAID', 'PAID', ?)`, [id, cause]);
      }
    }
    return (await topUpById(tx, topUp.id))!;
  });
}

/**
 * The card company brings the card's TAC for the claimed load (GET TRANSACTION PROVE at its own
 * counter): it must verify with the card's key, and it takes the load's row per card and counter,
 * so a proof at the card's next session books nothing more. Answers the counter the card moved on
 * to, for the caller to record once the load is booked.
 */
async function recordProofOfLoad(em: EntityManager, keyStore: KeyStore, sessionId: string, tac: Buffer): Promise<{ asn: string; counter: number }> {
  const [session] = await em.execute<SessionRow[]>(`select * from card_session where id = ?`, [sessionId]);
  let proved = false;
  try {
    proved = !!session?.context.init && (await checkLoadProof({ keyStore }, em, session, { mac2: Buffer.alloc(4), tac }));
  } catch (err) {
    // A retired key version is the card company's input problem, not a server error.
    if (err instanceof UnknownCardKeyError) throw new TopUpError('INVALID_INPUT', `the TAC cannot be checked: ${err.message}`, 'tac');
    throw err;
  }
  if (!proved || !session?.context.init) throw new TopUpError('INVALID_INPUT', 'the TAC does not prove this load', 'tac');
  const taken = await em.execute<{ session_id: string }[]>(`insert into card_load_proof (asn, online_counter, session_id, proved_by, tac) values (?, ?, ?, ?, ?) on conflict do nothing returning session_id`, [session.card_asn, session.context.init.onlineCounter, session.id, session.id, tac.toString('hex').toUpperCase()]);
  const movedOn = { asn: session.card_asn!, counter: session.context.init.onlineCounter + 1 };
  if (taken.length > 0) return movedOn;
  // The card's counter is already proved: by this load (nothing to add), or by another load at that counter (this one is not it).
  const [held] = await em.execute<{ session_id: string }[]>(`select session_id from card_load_proof where (asn = ? and online_counter = ?) or session_id = ?`, [session.card_asn, session.context.init.onlineCounter, session.id]);
  if (held && held.session_id !== session.id) throw new TopUpError('INVALID_INPUT', 'the card proved another load at that counter; this TAC does not settle this top-up', 'tac');
  return movedOn;
}

/** The pending load is on the card: pending loads → the card's purse, the top-up LOADED. */
export async function finishLoad(em: EntityManager, topUpId: string, sessionId: string, card: { asn: string; currency: string }, proof: string, tac?: string): Promise<void> {
  const topUp = (await topUpById(em, topUpId, true))!;
  if (topUp.status === 'LOADED') return;
  const amount = BigInt(topUp.amount);
  const pendingLoads = await pendingLoadAccount(em, topUp.card_company_id, topUp.currency);
  const purse = await cardPurseAccount(em, card.asn, card.currency);
  await post(em, {
    key: `top-up:${topUp.id}:loaded`,
    description: `top-up written onto card ${maskCardNumber(topUp.card_number)} (补登)`,
    lines: [debit(pendingLoads.id, amount), credit(purse.id, amount)],
    // A replaced card's balance shows as a transfer in the card's history (referring to the
    // transfer), a top-up as a top-up.
    metadata: {
      ...LOAD_ENTRY_OF[topUp.origin](topUp),
      cardSession: sessionId,
      proof,
      ...(tac ? { tac } : {}),
    },
  });
  await moveTo(em, topUp.id, 'LOADED', `card session ${sessionId} (${proof})`, { sessionId });
}

/**
 * What proved a completed load, for the top-up's history: the session's own TAC (or an M1 card's
 * signed read-back), a proof at a later tap (GET TRANSACTION PROVE), or an M1 card's value at its
 * next session.
 */
export function proofOf(result: Record<string, unknown>, own: string): string {
  if (typeof result.proof === 'string') return result.proof;
  if (typeof result.provedBy === 'string') return `TAC from GET TRANSACTION PROVE in card session ${result.provedBy}`;
  return typeof result.tac === 'string' ? own : 'the reader’s signed read-back of the M1 card';
}

const yuan = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, '0')}`;

/** Before MAC2: the card (its balance proved by MAC1) may hold the load; otherwise it stays pending. */
export function checkPurseMaximum(limits: TopUpLimits, cardBalance: number, amount: bigint): void {
  if (BigInt(cardBalance) + amount > limits.purseMax) {
    throw new SessionError('PURSE_LIMIT_EXCEEDED', `the card holds ${yuan(BigInt(cardBalance))}; ${yuan(amount)} more would take it past its purse maximum of ${yuan(limits.purseMax)}: the load stays pending`);
  }
}

export const pendingLoad = (limits: TopUpLimits): CardSessionPurpose => ({
  name: PENDING_LOAD,
  opens: { operation: 'LOAD', by: 'topUp' },

  /**
   * The holder's app on its own reader (scope card:topup), or the card company on one of its
   * readers (scope topups:write). The amount is the top-up's.
   */
  async open(ctx, reader, input) {
    const principal = ctx.principal!;
    const writeScope = principal.kind === 'CARDHOLDER_APP' ? 'card:topup' : 'topups:write';
    const topUp = principal.scopes.includes(writeScope) ? await findTopUpFor(ctx.em, principal, fromGlobalId(input.topUp!, 'TopUp').id) : null;
    if (!topUp) return openRefusal(UserErrorCode.NOT_FOUND, `no top-up ${input.topUp} you may load`, 'topUp');
    if (input.amount != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'a top-up load takes its amount from the top-up', 'amount');
    // findTopUpFor answers card top-ups only: a wallet's has no card to load.
    const cardType = await cardTypeForLoad(ctx.em, topUp.card_id!, input.cardType);
    if (typeof cardType !== 'string') return openRefusal(UserErrorCode.INVALID_INPUT, cardType.refused, 'cardType');
    if (topUp.status !== 'PAID') return openRefusal(UserErrorCode.INVALID_INPUT, `the top-up is ${topUp.status}, not a pending load`, 'topUp');
    return openSession(ctx.em, { reader, operation: 'LOAD', cardType, amount: BigInt(topUp.amount), clientId: principal.clientId, charge: ctx.costCharge, purpose: PENDING_LOAD, purposeData: { topUpId: topUp.id } });
  },

  /** Before MAC2 leaves the host: the top-up is this card's and still owed, and this session claims it. */
  async creditGuard(em, pending) {
    await lockWithEarlierClaims(em, [topUpIdOf(pending.session.context.purposeData)]);
    const topUp = await topUpById(em, topUpIdOf(pending.session.context.purposeData), true);
    if (!topUp || topUp.asn !== pending.card.asn) throw new SessionError('PURPOSE_REFUSED', 'this top-up is not for the card on the reader');
    if (topUp.status === 'LOADED') throw new SessionError('ALREADY_LOADED', 'this top-up is already on the card');
    if (topUp.status !== 'PAID') throw new SessionError('PURPOSE_REFUSED', `the top-up is ${topUp.status}, not a pending load`);
    if (BigInt(topUp.amount) !== BigInt(pending.amount)) throw new SessionError('PURPOSE_REFUSED', 'the session’s amount is not the top-up’s');
    // An earlier write the card may have taken is settled first: the card's balance may be that load.
    if (topUp.load_session_id && topUp.load_session_id !== pending.session.id) await settleEarlierClaim(em, topUp, pending);
    checkPurseMaximum(limits, pending.oldBalance, BigInt(topUp.amount));
    await em.execute(`update top_up set load_session_id = ?, load_claim = ?, updated_at = now() where id = ?`, [pending.session.id, JSON.stringify(loadClaimOf(pending)), topUp.id]);
  },

  /** The TAC proved the card took it: pending loads → the card's purse, the top-up LOADED. */
  async complete(em, done) {
    const topUpId = topUpIdOf(done.session.context.purposeData);
    const topUp = await topUpById(em, topUpId, true);
    // The claim was this session's when MAC2 left the host, and nothing takes a live claim over.
    // A load the card proved later (GET TRANSACTION PROVE) is booked even if the card company released its claim since: the card holds it.
    const proved = typeof done.result.provedBy === 'string';
    if (!topUp || (topUp.load_session_id !== done.session.id && !proved)) throw new Error(`top-up ${topUpId} is not claimed by card session ${done.session.id}`);
    await finishLoad(em, topUp.id, done.session.id, { asn: done.asn, currency: done.currency }, proofOf(done.result, 'TAC'), typeof done.result.tac === 'string' ? done.result.tac : undefined);
  },
});

/**
 * A card proved it paid a purchase that nothing takes any more (its payment canceled since): the
 * value goes back to the holder as a REFUND pending load (card purse → the card company's pending
 * loads), keyed by the claim's session, written onto the card at its next load session; the card
 * company hears of it (`card.proved_purchase_returned`). The engine hands this in from the
 * composition root: what a pending load is belongs here.
 */
export const returnProvedValue: ProvedValueReturn = async (em, proved) => {
  const card = await findCardByAsn(em, proved.asn);
  if (!card) return null;
  const { topUpId } = await recordPendingLoad(em, {
    origin: 'REFUND',
    cardId: card.id,
    key: `card-proof-return:${proved.claimSession}`,
    amount: proved.amount,
    currency: proved.currency,
    fromAccountId: proved.fromAccountId,
    description: `card ${proved.asn} proved it paid ${proved.amount} in card session ${proved.claimSession}, which nothing takes now (${proved.reason}): back to the card`,
    metadata: { kind: 'REFUND', cardSession: proved.claimSession, provedBy: proved.provedBy, tac: proved.tac },
    cause: `purchase of card session ${proved.claimSession} proved after its purpose ended (${proved.reason})`,
  });
  const pendingLoad = topUpGlobalId(topUpId);
  const payload = { card: toGlobalId('Card', card.id), cardSession: proved.claimSession, provedBy: proved.provedBy, tac: proved.tac, amount: Number(proved.amount), currency: proved.currency, pendingLoad, reason: proved.reason };
  await recordEvent(em, { type: 'card.proved_purchase_returned', ownerKind: 'ISSUER', ownerId: card.card_company_id, subjectId: toGlobalId('Card', card.id), payload });
  return { pendingLoad };
};

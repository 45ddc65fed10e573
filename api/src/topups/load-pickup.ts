import type { EntityManager } from '@mikro-orm/postgresql';
import type { TopUpLimits } from '../config/config.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { cardPurseBalance } from '../ledger/accounts.js';
import { sessionIsLive } from '../readers/session/card-claims.js';
import { openSession } from '../readers/session/card-session.service.js';
import { type CardSessionPurpose, openRefusal } from '../readers/session/purpose.js';
import { SessionError } from '../readers/session/session.errors.js';
import { cardTypeForLoad, checkPurseMaximum, finishLoad, loadClaimOf, lockWithEarlierClaims, proofOf, settleEarlierClaim } from './pending-load.js';
import { findTopUpFor, topUpById, topUpGlobalId, type TopUpRow } from './topups.service.js';
import { m1LoadLimitOf } from '../tenancy/tenancy.service.js';

/**
 * Picking up a card's pending loads (补登, as the city's NFC app does it): the holder's app lists
 * every pending load of the card (top-ups, merchants' refunds, a replaced card's balance), the
 * holder confirms the list, and one load session writes them all onto the card as ONE load whose
 * amount is their sum, with the breakdown kept per load (each its own ledger entry and history).
 *
 * One load rather than one per source: a single INITIALIZE / CREDIT FOR LOAD carries them all, so the
 * card takes all of them or none. Everything that keeps a load at most once (the claim before MAC2,
 * GET TRANSACTION PROVE at the next tap, the online counter, resolvePendingLoad) applies unchanged
 * to that one MAC2; a session with several writes could instead be cut between two of them.
 * purposeData: `{ topUpIds }` (sorted: rows are locked in id order).
 */
export const LOAD_PICKUP = 'pending-load-pickup';

/** At most this many loads in one pickup; more wait for the next. */
export const MAX_PICKUP_LOADS = 20;

export interface PendingLoadListing {
  load: TopUpRow;
  /** Null when the next pickup may write it; otherwise why it stays pending. */
  heldBack: { code: 'PURSE_LIMIT_EXCEEDED' | 'LOAD_IN_PROGRESS'; message: string } | null;
}

const topUpIdsOf = (purposeData: Record<string, unknown> | undefined): string[] => (Array.isArray(purposeData?.topUpIds) ? purposeData.topUpIds.map(String) : []);

const yuan = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, '0')}`;

/**
 * A card's pending loads, oldest first, as the holder confirms them: each written by the next pickup
 * unless it would take the purse (the ledger's shadow, plus the loads before it) past the purse
 * maximum, or another reader is writing it now. A held-back load stays pending, with its reason.
 */
export async function pendingLoadsOfCard(em: EntityManager, card: { id: string; asn: string; currency: string }, limits: TopUpLimits, now = new Date()): Promise<PendingLoadListing[]> {
  const loads = await em.execute<TopUpRow[]>(
    `select t.*, t.amount::text as amount, t.city_day::text as city_day, c.asn, c.card_number
       from top_up t join card c on c.id = t.card_id
      where t.card_id = ? and t.status = 'PAID' order by coalesce(t.paid_at, t.created_at), t.id`,
    [card.id],
  );
  let purse = await cardPurseBalance(em, card.asn, card.currency);
  const listing: PendingLoadListing[] = [];
  for (const load of loads) {
    const amount = BigInt(load.amount);
    if (load.load_session_id && (await sessionIsLive(em, load.load_session_id, now))) {
      listing.push({ load, heldBack: { code: 'LOAD_IN_PROGRESS', message: 'a reader is writing it onto the card right now' } });
    } else if (purse + amount > limits.purseMax) {
      listing.push({ load, heldBack: { code: 'PURSE_LIMIT_EXCEEDED', message: `the card holds ${yuan(purse)}; with this load it would pass its purse maximum of ${yuan(limits.purseMax)}: it stays pending until the card is spent down (or the card company refunds it)` } });
    } else {
      purse += amount;
      listing.push({ load, heldBack: null });
    }
  }
  return listing;
}

export function loadPickup(limits: TopUpLimits): CardSessionPurpose {
  return {
    name: LOAD_PICKUP,
    opens: { operation: 'LOAD', by: 'pendingLoads' },

    /**
     * The holder's app on its own reader (scope card:topup), or the card company on one of its
     * readers (scope topups:write), for the loads the holder confirmed: all of one card, PAID, none
     * held back. The amount is their sum.
     */
    async open(ctx, reader, input) {
      const principal = ctx.principal!;
      const ids = input.pendingLoads!;
      if (input.topUp != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'name one top-up (topUp) or the pending loads to pick up (pendingLoads), not both', 'topUp');
      if (input.amount != null) return openRefusal(UserErrorCode.INVALID_INPUT, 'a pickup takes its amount from the pending loads', 'amount');
      if (ids.length === 0 || ids.length > MAX_PICKUP_LOADS) return openRefusal(UserErrorCode.INVALID_INPUT, `pick up 1 to ${MAX_PICKUP_LOADS} pending loads`, 'pendingLoads');
      const uuids = ids.map((id) => fromGlobalId(id, 'TopUp').id);
      const writeScope = principal.kind === 'CARDHOLDER_APP' ? 'card:topup' : 'topups:write';
      const rows: TopUpRow[] = [];
      for (const [i, uuid] of uuids.entries()) {
        const row = principal.scopes.includes(writeScope) ? await findTopUpFor(ctx.em, principal, uuid) : null;
        if (!row) return openRefusal(UserErrorCode.NOT_FOUND, `no pending load ${ids[i]} you may load`, 'pendingLoads');
        rows.push(row);
      }
      // Compared as the rows found, not as spelled: Postgres reads a uuid in any case, so one load could be named twice and written twice for one booking.
      if (new Set(rows.map((r) => r.id)).size !== rows.length) return openRefusal(UserErrorCode.INVALID_INPUT, 'a pending load is named twice', 'pendingLoads');
      if (new Set(rows.map((r) => r.card_id)).size !== 1) return openRefusal(UserErrorCode.INVALID_INPUT, 'the pending loads of one card at a time: the card on the reader', 'pendingLoads');
      const [card] = await ctx.em.execute<{ id: string; asn: string; currency: string; card_company_id: string }[]>(
        `select c.id, c.asn, btrim(ci.currency) as currency, c.card_company_id from card c join card_company cc on cc.id = c.card_company_id join city ci on ci.id = cc.city_id where c.id = ?`,
        [rows[0]!.card_id],
      );
      const listing = new Map((await pendingLoadsOfCard(ctx.em, card!, limits)).map((l) => [l.load.id, l]));
      for (const row of rows) {
        const listed = listing.get(row.id);
        if (!listed) return openRefusal(UserErrorCode.INVALID_INPUT, `${topUpGlobalId(row.id)} is ${row.status}, not a pending load`, 'pendingLoads');
        if (listed.heldBack?.code === 'LOAD_IN_PROGRESS') return openRefusal(UserErrorCode.INVALID_INPUT, listed.heldBack.message, 'pendingLoads');
      }
      const cardType = await cardTypeForLoad(ctx.em, card!.id, input.cardType);
      if (typeof cardType !== 'string') return openRefusal(UserErrorCode.INVALID_INPUT, cardType.refused, 'cardType');
      const amount = rows.reduce((sum, r) => sum + BigInt(r.amount), 0n);
      // An M1 pickup is one write of their sum: the limit per M1 load applies to it, so say so now rather than at every tap.
      if (cardType === 'M1') {
        const limit = await m1LoadLimitOf(ctx.em, card!.card_company_id);
        if (amount > limit) return openRefusal(UserErrorCode.INVALID_INPUT, `these loads (${yuan(amount)}) pass the limit per M1 load (${yuan(limit)}), and an M1 card takes a pickup in one write: pick up fewer at a time`, 'pendingLoads');
      }
      const purse = await cardPurseBalance(ctx.em, card!.asn, card!.currency);
      if (purse + amount > limits.purseMax) {
        return openRefusal(UserErrorCode.PURSE_LIMIT_EXCEEDED, `the card holds ${yuan(purse)}; these loads (${yuan(amount)}) would take it past its purse maximum of ${yuan(limits.purseMax)}: pick up those Card.pendingLoads does not hold back`, 'pendingLoads');
      }
      return openSession(ctx.em, { reader, operation: 'LOAD', cardType, amount, clientId: principal.clientId, charge: ctx.costCharge, purpose: LOAD_PICKUP, purposeData: { topUpIds: rows.map((r) => r.id).sort() } });
    },

    /**
     * Before MAC2 leaves the host: every load is this card's and still owed, the card may hold
     * them, and this session claims them all (rows locked in id order: a concurrent pickup of the
     * same loads waits, then finds them claimed or loaded).
     */
    async creditGuard(em, pending) {
      const loads: TopUpRow[] = [];
      await lockWithEarlierClaims(em, topUpIdsOf(pending.session.context.purposeData));
      for (const id of topUpIdsOf(pending.session.context.purposeData)) {
        const topUp = await topUpById(em, id, true);
        if (!topUp || topUp.asn !== pending.card.asn) throw new SessionError('PURPOSE_REFUSED', 'a pending load of this session is not for the card on the reader');
        if (topUp.status === 'LOADED') throw new SessionError('ALREADY_LOADED', 'a pending load of this session is already on the card; list the card’s pending loads again');
        if (topUp.status !== 'PAID') throw new SessionError('PURPOSE_REFUSED', `a pending load of this session is ${topUp.status} now; list the card’s pending loads again`);
        loads.push(topUp);
      }
      const amount = loads.reduce((sum, t) => sum + BigInt(t.amount), 0n);
      if (new Set(loads.map((t) => t.id)).size !== loads.length) throw new SessionError('PURPOSE_REFUSED', 'a pending load is named twice in this session');
      if (loads.length === 0 || amount !== BigInt(pending.amount)) throw new SessionError('PURPOSE_REFUSED', 'the session’s amount is not the sum of its pending loads');
      // An earlier write the card may have taken is settled first: the card's balance may be those loads.
      for (const topUp of loads) if (topUp.load_session_id && topUp.load_session_id !== pending.session.id) await settleEarlierClaim(em, topUp, pending);
      checkPurseMaximum(limits, pending.oldBalance, amount);
      await em.execute(`update top_up set load_session_id = ?, load_claim = ?, updated_at = now() where id in (?)`, [pending.session.id, JSON.stringify(loadClaimOf(pending)), loads.map((t) => t.id)]);
    },

    /** The TAC proved the card took the sum: each pending load → the card's purse, LOADED. */
    async complete(em, done) {
      const proved = typeof done.result.provedBy === 'string';
      for (const id of topUpIdsOf(done.session.context.purposeData)) {
        const topUp = await topUpById(em, id, true);
        // As for a single load: the claim was this session's when MAC2 left the host; a load the card proved later is booked even if released since.
        if (!topUp || (topUp.load_session_id !== done.session.id && !proved)) throw new Error(`pending load ${id} is not claimed by card session ${done.session.id}`);
        await finishLoad(em, topUp.id, done.session.id, { asn: done.asn, currency: done.currency }, proofOf(done.result, 'TAC (picked up with the card’s other pending loads)'), typeof done.result.tac === 'string' ? done.result.tac : undefined);
      }
    },
  };
}

import type { EntityManager } from '@mikro-orm/postgresql';
import { toGlobalId } from '../graphql/global-id.js';
import { credit, debit, post } from '../ledger/ledger.service.js';
import { type GatewayClient, GatewayError, type Payout } from '../topups/gateway/gateway-client.js';
import { recordEvent } from '../webhooks/outbox.js';
import { EVENT_OWNER } from './clearing.js';
import { gatewayClearingAccount, payableAccount, settlementInTransitAccount } from '../ledger/accounts.js';

export type { PayoutStatus } from './settlement-machines.js';
import { NOW, sql, transition, transitionById, transitionWhere } from '../lifecycle/machine.js';
import { batchMachine, lineMachine, type PayoutStatus, payoutMachine, windowMachine } from './settlement-machines.js';

export interface PayoutRow {
  id: string;
  line_id: string;
  amount: string;
  currency: string;
  status: PayoutStatus;
  gateway_payout_id: string | null;
  failure_code: string | null;
  attempts: number;
  batch_id: string;
  participant_kind: string;
  participant_id: string;
  created_at: Date;
  updated_at: Date;
}

const PAYOUT_COLUMNS = `p.id, p.line_id, p.amount::text as amount, btrim(p.currency) as currency, p.status, p.gateway_payout_id, p.failure_code, p.attempts,
  l.batch_id, l.participant_kind, l.participant_id, p.created_at, p.updated_at`;

export async function payoutById(em: EntityManager, id: string, lock = false): Promise<PayoutRow | null> {
  const [row] = await em.execute<PayoutRow[]>(`select ${PAYOUT_COLUMNS} from settlement_payout p join settlement_line l on l.id = p.line_id where p.id = ?${lock ? ' for update of p' : ''}`, [id]);
  return row ?? null;
}

const BATCH = 20;
// A gateway that does not answer is asked again later, up to a day of tries.
const RETRY_DELAYS_SECONDS = [30, 120, 600, 1800, 3600];

/**
 * Sends due payout instructions to the gateway: each is claimed (skip locked, so processes share
 * the work) and sent with its id as the idempotency key, so a retry never pays twice. A refusal
 * (e.g. the gateway balance does not cover it) fails the payout: its money goes back to the
 * participant's payable and is carried into its next line. No answer: tried again later.
 */
export async function sendDuePayouts(em: EntityManager, gateway: GatewayClient, now = new Date()): Promise<number> {
  const claimed = await em.execute<{ id: string; attempts: number }[]>(
    `update settlement_payout set attempts = attempts + 1, next_attempt_at = ?::timestamptz + interval '5 minutes', updated_at = now()
      where id in (select id from settlement_payout where status = 'PENDING' and next_attempt_at <= ? order by next_attempt_at limit ? for update skip locked)
      returning id, attempts`,
    [now, now, BATCH],
  );
  for (const { id, attempts } of claimed) {
    const row = (await payoutById(em, id))!;
    try {
      const payout = await gateway.createPayout(
        { amount: BigInt(row.amount), currency: row.currency, metadata: { settlementPayout: row.id, participant: `${row.participant_kind}:${row.participant_id}` } },
        `settlement-payout:${row.id}`,
      );
      // Unless its answer came first (a webhook): then it is PAID or FAILED already.
      await transitionWhere(em, payoutMachine, { from: ['PENDING'], to: 'SENT', patch: { gateway_payout_id: payout.id, failure_code: null, updated_at: NOW }, where: 't.id = ?', params: [row.id], cause: 'sent to the gateway' });
      if (payout.status === 'paid' || payout.status === 'failed') await applyPayout(em, payout);
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      // Only a refusal of this payout fails it; no answer, or our own credentials refused, is tried again.
      if (err.kind !== 'INVALID_REQUEST') {
        const delay = RETRY_DELAYS_SECONDS[Math.min(attempts - 1, RETRY_DELAYS_SECONDS.length - 1)]!;
        await em.execute(`update settlement_payout set next_attempt_at = ?::timestamptz + make_interval(secs => ?), failure_code = ? where id = ?`, [now, delay, err.code ?? 'gateway_unavailable', row.id]);
      } else {
        await failPayout(em, row.id, err.code ?? err.kind.toLowerCase());
      }
    }
  }
  return claimed.length;
}

/** Asks the gateway about payouts sent this long ago without news: covers a webhook that never comes. */
export async function pollSentPayouts(em: EntityManager, gateway: GatewayClient, p: { idleSeconds: number; now?: Date }): Promise<number> {
  const now = p.now ?? new Date();
  const rows = await em.execute<{ gateway_payout_id: string }[]>(
    `update settlement_payout set updated_at = ? where id in (
       select id from settlement_payout where status = 'SENT' and updated_at < ?::timestamptz - make_interval(secs => ?) order by updated_at limit ? for update skip locked)
     returning gateway_payout_id`,
    [now, now, p.idleSeconds, BATCH],
  );
  for (const r of rows) {
    try {
      await applyPayout(em, await gateway.retrievePayout(r.gateway_payout_id));
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
    }
  }
  return rows.length;
}

/**
 * What the gateway says of a payout (a webhook, a poll, the create answer): paid → the money left
 * the gateway account (settlement in transit → gateway clearing) and the line is PAID; failed →
 * it goes back to the participant's payable and the line waits to be carried; paid, then returned
 * by the bank (failed after paid): the paid entry is undone and it is failed. Once per payout.
 */
export async function applyPayout(em: EntityManager, payout: Payout): Promise<'applied' | 'stale' | 'unknown' | 'mismatch'> {
  return em.transactional(async (tx) => {
    const [ref] = await tx.execute<{ id: string }[]>(`select id from settlement_payout where gateway_payout_id = ? or id::text = ?`, [payout.id, payout.metadata?.settlementPayout ?? '']);
    if (!ref) return 'unknown';
    const row = (await payoutById(tx, ref.id, true))!;
    // Never book another payout, or other money, as ours: for a person to look at.
    const sameMoney = Number.isSafeInteger(payout.amount) && BigInt(payout.amount) === BigInt(row.amount) && String(payout.currency).toUpperCase() === row.currency;
    if ((row.gateway_payout_id && row.gateway_payout_id !== payout.id) || !sameMoney) return 'mismatch';
    if (row.status === 'PAID' && (payout.status === 'failed' || payout.status === 'canceled')) {
      // The bank sent a paid payout back: the money is in the gateway account again, and owed.
      const amount = BigInt(row.amount);
      await post(tx, {
        key: `settlement-payout:${row.id}:returned`,
        description: `payout to ${row.participant_kind.toLowerCase()} ${row.participant_id} returned by the bank (${payout.failure_code ?? payout.status})`,
        lines: [debit((await gatewayClearingAccount(tx, row.currency)).id, amount), credit((await settlementInTransitAccount(tx, row.currency)).id, amount)],
        metadata: { kind: 'PAYOUT_RETURNED', payout: row.id, gatewayPayout: payout.id, line: row.line_id },
      });
      await failPayout(tx, row.id, payout.failure_code ?? payout.status, { returned: true });
      return 'applied';
    }
    if (row.status === 'PAID' || row.status === 'FAILED') return 'stale';
    if (payout.status === 'paid') {
      const amount = BigInt(row.amount);
      const inTransit = await settlementInTransitAccount(tx, row.currency);
      const clearing = await gatewayClearingAccount(tx, row.currency);
      await post(tx, {
        key: `settlement-payout:${row.id}:paid`,
        description: `payout to ${row.participant_kind.toLowerCase()} ${row.participant_id} confirmed by the gateway`,
        lines: [debit(inTransit.id, amount), credit(clearing.id, amount)],
        metadata: { kind: 'PAYOUT', payout: row.id, gatewayPayout: payout.id, line: row.line_id },
      });
      await transition(tx, payoutMachine, row, 'PAID', { gateway_payout_id: sql('coalesce(gateway_payout_id, ?)', payout.id), failure_code: null, updated_at: NOW }, { cause: `gateway payout ${payout.id}` });
      await transitionById(tx, lineMachine, row.line_id, 'PAID', {}, { cause: `payout ${row.id}` });
      await announce(tx, row, 'settlement.paid');
      await settleBatchIfDone(tx, row.batch_id);
      return 'applied';
    }
    if (payout.status === 'failed' || payout.status === 'canceled') {
      await failPayout(tx, row.id, payout.failure_code ?? payout.status);
      return 'applied';
    }
    return 'stale';
  });
}

/** A payout fails (or, `returned`, a paid one comes back from the bank): its money goes back to the participant's payable. */
async function failPayout(em: EntityManager, payoutId: string, failureCode: string, opts: { returned?: boolean } = {}): Promise<void> {
  await em.transactional(async (tx) => {
    const row = (await payoutById(tx, payoutId, true))!;
    if (row.status === 'FAILED' || (row.status === 'PAID' && !opts.returned)) return;
    const amount = BigInt(row.amount);
    const inTransit = await settlementInTransitAccount(tx, row.currency);
    const payable = await payableAccount(tx, row.participant_kind, row.participant_id, row.currency);
    await post(tx, {
      key: `settlement-payout:${row.id}:failed`,
      description: `payout to ${row.participant_kind.toLowerCase()} ${row.participant_id} failed (${failureCode}): back to its payable`,
      lines: [debit(inTransit.id, amount), credit(payable.id, amount)],
      metadata: { kind: 'PAYOUT_FAILED', payout: row.id, line: row.line_id, failureCode },
    });
    await transition(tx, payoutMachine, row, 'FAILED', { failure_code: failureCode, updated_at: NOW }, { cause: failureCode });
    await transitionById(tx, lineMachine, row.line_id, 'PAYOUT_FAILED', {}, { cause: `payout ${row.id}` });
    await announce(tx, row, 'settlement.payout_failed');
    await settleBatchIfDone(tx, row.batch_id);
  });
}

/** A batch with no line still paying is SETTLED, and so is its window. */
async function settleBatchIfDone(tx: EntityManager, batchId: string): Promise<void> {
  const [settled] = await transitionWhere(tx, batchMachine, {
    from: ['PAYING'],
    to: 'SETTLED',
    patch: { settled_at: NOW },
    where: `t.id = ? and not exists (select 1 from settlement_line where batch_id = ? and status = 'PAYING')`,
    params: [batchId, batchId],
    cause: 'no line paying',
  });
  if (settled) await transitionById(tx, windowMachine, String(settled.window_id), 'SETTLED', { settled_at: NOW }, { cause: 'its batch settled' });
}

/** The participant hears of its payout by webhook (a card company as an issuer). */
async function announce(tx: EntityManager, row: PayoutRow, type: 'settlement.paid' | 'settlement.payout_failed'): Promise<void> {
  const after = (await payoutById(tx, row.id))!;
  await recordEvent(tx, {
    type,
    ownerKind: EVENT_OWNER[row.participant_kind]!,
    ownerId: row.participant_id,
    subjectId: toGlobalId('SettlementLine', row.line_id),
    payload: { statement: toGlobalId('SettlementLine', row.line_id), amount: Number(row.amount), currency: row.currency, status: after.status, failureCode: after.failure_code },
  });
}

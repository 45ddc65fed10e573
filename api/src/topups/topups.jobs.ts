import type { EntityManager } from '@mikro-orm/postgresql';
import { type GatewayClient, GatewayError } from './gateway/gateway-client.js';
import type { ClientSecretSeal } from './client-secret.js';
import { applyIntent, applyRefund, moveTo, submitRefund, submitToGateway, type TopUpRow, topUpById } from './topups.service.js';

export interface TopUpJobTimings {
  /** A CREATED top-up this old was not submitted by its create call (gateway down, crash): submit it. Auto top-ups go at once. */
  submitAfterSeconds: number;
  /** A top-up waiting on the gateway this long without news is polled: it covers a webhook that never comes. */
  pollAfterSeconds: number;
  /** An unpaid top-up this old is canceled at the gateway. */
  expireAfterSeconds: number;
}

// Submitting waits past the create call's own retries (3 tries of GATEWAY_TIMEOUT_MS, ~31 s by default).
export const DEFAULT_TOP_UP_JOB_TIMINGS: TopUpJobTimings = { submitAfterSeconds: 60, pollAfterSeconds: 60, expireAfterSeconds: 24 * 3600 };

const BATCH = 20;

/**
 * Takes up to BATCH top-ups in a status, not touched for `idleSeconds`, and marks them touched, so
 * that several API processes running the job share the work (skip locked) and a top-up is not
 * asked about again before `idleSeconds` pass.
 */
async function claim(em: EntityManager, status: string, idleSeconds: number, now: Date, extra = 'false'): Promise<TopUpRow[]> {
  const ids = await em.execute<{ id: string }[]>(
    `update top_up set updated_at = ? where id in (
       select id from top_up where status = ? and (updated_at < ?::timestamptz - make_interval(secs => ?) or ${extra})
        order by updated_at limit ? for update skip locked)
     returning id`,
    [now, status, now, idleSeconds, BATCH],
  );
  const rows = await Promise.all(ids.map((r) => topUpById(em, r.id)));
  return rows.filter((r): r is TopUpRow => r !== null);
}

/**
 * One round of the top-up jobs: submit what the gateway has not seen, poll what it has not told
 * us about, cancel what was never paid, and finish refunds. Each top-up on its own: one that fails
 * is logged and tried again next round. Returns how many top-ups each part handled.
 */
export async function runTopUpJobs(
  em: EntityManager,
  gateway: GatewayClient,
  opts: { now?: Date; timings?: TopUpJobTimings; onError?: (err: unknown, topUpId: string) => void; /** Seals the client secret of an intent first seen here (none: not kept, the app pays at paymentUrl). */ clientSecrets?: ClientSecretSeal | null } = {},
) {
  const clientSecrets = opts.clientSecrets ?? null;
  const now = opts.now ?? new Date();
  const t = opts.timings ?? DEFAULT_TOP_UP_JOB_TIMINGS;
  const each = async (rows: TopUpRow[], work: (row: TopUpRow) => Promise<unknown>) => {
    for (const row of rows) await work(row).catch((err) => opts.onError?.(err, row.id));
    return rows.length;
  };
  // An auto top-up was never sent by a create call: its first submission goes at once.
  // One the gateway has not taken for a whole day is given up (FAILED): it no longer counts against
  // the card's limits. Should the gateway report it paid after all, FAILED → PAID still books it.
  const submitted = await each(await claim(em, 'CREATED', t.submitAfterSeconds, now, `(origin = 'AUTO' and gateway_attempts = 0)`), (row) =>
    +now - +new Date(row.created_at) > t.expireAfterSeconds * 1000
      ? moveTo(em, row.id, 'FAILED', 'gateway unreachable', { failureCode: 'gateway_unreachable', failureMessage: 'the gateway did not take the payment within a day' })
      : submitToGateway(em, gateway, row, clientSecrets),
  );
  const polled = await each(await claim(em, 'AWAITING_PAYMENT', t.pollAfterSeconds, now), (row) => pollIntent(em, gateway, clientSecrets, row, now, t.expireAfterSeconds));
  const refunds = await each(await claim(em, 'REFUNDING', t.pollAfterSeconds, now), (row) => pollRefund(em, gateway, row));
  return { submitted, polled, refunds };
}

async function pollIntent(em: EntityManager, gateway: GatewayClient, clientSecrets: ClientSecretSeal | null, row: TopUpRow, now: Date, expireAfterSeconds: number): Promise<void> {
  const intent = await gateway.retrievePaymentIntent(row.gateway_intent_id!);
  await applyIntent(em, row.id, intent, 'poll', clientSecrets);
  const expired = +now - +new Date(row.created_at) > expireAfterSeconds * 1000;
  if (!expired || (await topUpById(em, row.id))?.status !== 'AWAITING_PAYMENT') return;
  try {
    await applyIntent(em, row.id, await gateway.cancelPaymentIntent(row.gateway_intent_id!, `topup-expire:${row.id}`), 'expired', clientSecrets);
  } catch (err) {
    // Paid in the meantime: the gateway will not cancel it, and what it says now is the truth.
    if (!(err instanceof GatewayError) || err.kind !== 'INVALID_REQUEST') throw err;
    await applyIntent(em, row.id, await gateway.retrievePaymentIntent(row.gateway_intent_id!), 'poll', clientSecrets);
  }
}

async function pollRefund(em: EntityManager, gateway: GatewayClient, row: TopUpRow): Promise<void> {
  if (!row.gateway_refund_id) {
    // The refund call never got an answer: ask again under the same idempotency key.
    await submitRefund(em, gateway, row);
    return;
  }
  await applyRefund(em, row.id, await gateway.retrieveRefund(row.gateway_refund_id), 'poll');
}

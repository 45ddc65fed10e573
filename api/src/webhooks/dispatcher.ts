import type { EntityManager } from '@mikro-orm/postgresql';

/** graphile-worker's schema and our task in it. */
export const JOB_SCHEMA = 'graphile_worker';
export const DELIVER_TASK = 'webhooks.deliver';
/** graphile-worker's own retries only cover a task that threw (database down, a crash); HTTP failures follow our schedule. */
const JOB_MAX_ATTEMPTS = 25;

// Any fixed number: the transaction lock one dispatcher at a time holds while it numbers events.
const DISPATCH_LOCK = 7_402_281_216;

export const deliveryJobKey = (deliveryId: string) => `webhook-delivery:${deliveryId}`;

/**
 * Hands one delivery to the job queue, in the caller's transaction: the job exists exactly when the
 * delivery's state that asked for it committed. The job key keeps one job per delivery (a locked,
 * running one is superseded by the new one).
 */
export async function enqueueDelivery(em: EntityManager, deliveryId: string, delayMs = 0): Promise<void> {
  await em.execute(
    `select ${JOB_SCHEMA}.add_job(?, json_build_object('deliveryId', ?::text), run_at := now() + ?::int * interval '1 millisecond', job_key := ?, max_attempts := ?)`,
    [DELIVER_TASK, deliveryId, Math.round(delayMs), deliveryJobKey(deliveryId), JOB_MAX_ATTEMPTS],
  );
}

/**
 * One round of the dispatcher, in one transaction:
 * 1. new outbox events (committed, not yet dispatched) become one delivery per enabled endpoint of
 *    their owner that subscribes to their type, and get their publication position. One dispatcher
 *    at a time does this (a transaction lock; the others skip the step): that numbers events in
 *    commit order, and the unique (event, endpoint) index makes a second delivery impossible anyway;
 * 2. deliveries not yet handed to the job queue (these, and replays) are, at their due time.
 */
export async function dispatchRound(em: EntityManager, opts: { batchSize?: number } = {}): Promise<{ events: number; deliveries: number; queued: number }> {
  const batch = opts.batchSize ?? 500;
  return em.transactional(async (tx) => {
    let events = 0;
    let deliveries = 0;
    const [lock] = await tx.execute<{ locked: boolean }[]>(`select pg_try_advisory_xact_lock(?) as locked`, [DISPATCH_LOCK]);
    if (lock!.locked) {
      const rows = await tx.execute<{ id: string }[]>(`select id::text as id from event_outbox where dispatched_at is null order by id limit ?`, [batch]);
      if (rows.length) {
        const ids = rows.map((r) => r.id);
        events = ids.length;
        await tx.execute(
          `update event_outbox o set dispatched_at = now(), position = base.p + numbered.n
             from (select coalesce(max(position), 0) as p from event_outbox) base,
                  (select id, row_number() over (order by id) as n from event_outbox where id in (?)) numbered
            where o.id = numbered.id`,
          [ids],
        );
        const made = await tx.execute<{ id: string }[]>(
          `insert into webhook_delivery (event_id, endpoint_id, next_attempt_at)
           select o.id, e.id, now() from event_outbox o
             join webhook_endpoint e on e.owner_kind = o.owner_kind and e.owner_id = o.owner_id and e.enabled and (o.type = any(e.event_types) or '*' = any(e.event_types))
            where o.id in (?)
           on conflict (event_id, endpoint_id) where not replay do nothing
           returning id`,
          [ids],
        );
        deliveries = made.length;
      }
    }
    // Rows locked by another dispatcher's round are theirs to hand over.
    const waiting = await tx.execute<{ id: string; delay_ms: number }[]>(
      `select id::text as id, greatest(0, extract(epoch from (coalesce(next_attempt_at, now()) - now())) * 1000)::int as delay_ms
         from webhook_delivery where status = 'PENDING' and not queued order by id limit ? for update skip locked`,
      [batch],
    );
    for (const d of waiting) await enqueueDelivery(tx, d.id, d.delay_ms);
    if (waiting.length) await tx.execute(`update webhook_delivery set queued = true where id in (?)`, [waiting.map((d) => d.id)]);
    return { events, deliveries, queued: waiting.length };
  });
}

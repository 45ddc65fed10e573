import type { EntityManager } from '@mikro-orm/postgresql';
import { transition } from '../lifecycle/machine.js';
import { deliveryMachine } from './delivery-machine.js';
import { toGlobalId } from '../graphql/global-id.js';
import { enqueueDelivery } from './dispatcher.js';
import { cancelPendingDeliveries, liveSecrets, type WebhookEndpointRow } from './endpoints.service.js';
import { eventBody, type EventRow } from './events.service.js';
import { recordEvent } from './outbox.js';
import { retryDelayMs, type RetrySchedule } from './retry-schedule.js';
import type { InternalUrls } from './endpoint-url.js';
import { sendWebhook, type SendResult } from './send-webhook.js';
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';

export interface DeliverDeps {
  kek: Buffer;
  schedule: RetrySchedule;
  timeoutMs: number;
  /** Outside production: receivers on loopback and private networks are fine. */
  internal: InternalUrls;
  /** Fires when the worker stops: the attempt is cut short and the delivery handed back to the queue. */
  stop?: AbortSignal;
  /** The POST itself (tests may replace it). */
  send?: typeof sendWebhook;
}

export type DeliverOutcome = 'DELIVERED' | 'RETRY' | 'FAILED' | 'SKIPPED' | 'INTERRUPTED';

type Work = Pick<EventRow, 'type' | 'payload' | 'created_at'> &
  Pick<WebhookEndpointRow, 'url' | 'enabled' | 'secret_sealed' | 'previous_secret_sealed' | 'previous_secret_expires_at'> & { id: string; event_id: string; endpoint_id: string; status: string };

/**
 * One attempt of one delivery, the body of the `webhooks.deliver` job: sign and POST the event,
 * then record the attempt and what follows in one transaction: DELIVERED; the next attempt on the
 * schedule; or FAILED once the first attempt is `giveUpAfterMs` old, which disables an endpoint
 * that delivered nothing meanwhile. A crash between the POST and that transaction repeats the
 * attempt (the job runs again): delivery is at least once, and receivers dedupe by event id.
 */
export async function deliverOnce(em: EntityManager, deps: DeliverDeps, deliveryId: string): Promise<DeliverOutcome> {
  const [work] = await em.execute<Work[]>(
    `select d.id::text as id, d.event_id::text as event_id, d.endpoint_id, d.status,
            o.type, o.payload, o.created_at,
            e.url, e.enabled, e.secret_sealed, e.previous_secret_sealed, e.previous_secret_expires_at
       from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id join event_outbox o on o.id = d.event_id
      where d.id = ?::bigint`,
    [deliveryId],
  );
  if (!work || work.status !== 'PENDING') return 'SKIPPED'; // deleted, done, or canceled since the job was queued
  if (!work.enabled) {
    await cancelPendingDeliveries(em, work.endpoint_id);
    return 'SKIPPED';
  }

  const body = JSON.stringify(eventBody({ id: work.event_id, type: work.type, payload: work.payload, created_at: work.created_at }));
  const attemptedAt = new Date();
  const headers = {
    [SIGNATURE_HEADER]: signatureHeader(liveSecrets(deps.kek, { ...work, id: work.endpoint_id }, attemptedAt), body, Math.floor(attemptedAt.getTime() / 1000)),
    [EVENT_ID_HEADER]: toGlobalId('Event', work.event_id),
  };
  const result = await (deps.send ?? sendWebhook)({ url: work.url, body, headers, timeoutMs: deps.timeoutMs, internal: deps.internal, stop: deps.stop });

  if (result.interrupted) {
    // Our shutdown, not the receiver's failure: no attempt counted, due again at once for the next worker.
    await em.transactional((tx) => enqueueDelivery(tx, deliveryId));
    return 'INTERRUPTED';
  }
  return em.transactional((tx) => recordAttempt(tx, deps.schedule, deliveryId, attemptedAt, result));
}

async function recordAttempt(tx: EntityManager, schedule: RetrySchedule, deliveryId: string, attemptedAt: Date, result: SendResult): Promise<DeliverOutcome> {
  const ok = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
  const [d] = await tx.execute<{ status: string; attempts: number; elapsed_ms: number; first_attempt_at: Date | string; endpoint_id: string }[]>(
    `update webhook_delivery set attempts = attempts + 1, first_attempt_at = coalesce(first_attempt_at, ?), last_attempt_at = ?, last_status_code = ?, last_error = ?
      where id = ?::bigint
      returning status, attempts, (extract(epoch from (clock_timestamp() - first_attempt_at)) * 1000)::bigint::float8 as elapsed_ms, first_attempt_at, endpoint_id`,
    [attemptedAt, attemptedAt, result.statusCode, result.error?.slice(0, 1000) ?? null, deliveryId],
  );
  // Deleted while we were sending: nothing to record it against.
  if (!d) return 'SKIPPED';
  await tx.execute(`insert into webhook_attempt (delivery_id, attempted_at, status_code, error, duration_ms) values (?::bigint, ?, ?, ?, ?)`, [
    deliveryId,
    attemptedAt,
    result.statusCode,
    result.error?.slice(0, 1000) ?? null,
    result.durationMs,
  ]);
  // Canceled while we were sending: the attempt is on record, nothing more to do.
  if (d.status !== 'PENDING') return 'SKIPPED';
  if (ok) {
    await transition(tx, deliveryMachine, { id: deliveryId, status: 'PENDING' }, 'DELIVERED', { delivered_at: attemptedAt, next_attempt_at: null }, { cause: `attempt ${d.attempts}` });
    return 'DELIVERED';
  }
  if (d.elapsed_ms < schedule.giveUpAfterMs) {
    const delay = retryDelayMs(schedule, d.attempts);
    await tx.execute(`update webhook_delivery set next_attempt_at = now() + ?::int * interval '1 millisecond' where id = ?::bigint`, [delay, deliveryId]);
    await enqueueDelivery(tx, deliveryId, delay);
    return 'RETRY';
  }
  await transition(tx, deliveryMachine, { id: deliveryId, status: 'PENDING' }, 'FAILED', { next_attempt_at: null }, { cause: `attempt ${d.attempts}: retry period over` });
  await disableIfFailing(tx, d.endpoint_id, d.first_attempt_at, deliveryId);
  return 'FAILED';
}

/**
 * The endpoint-disabling rule (docs/webhooks.md): a delivery FAILED after the whole retry period, and
 * nothing reached the endpoint since that delivery's first attempt, so it has failed persistently
 * for that long. It is disabled, what waits for it is canceled, and its owner hears of it on its
 * other endpoints (`webhook_endpoint.disabled`).
 */
async function disableIfFailing(tx: EntityManager, endpointId: string, since: Date | string, deliveryId: string): Promise<void> {
  const [endpoint] = await tx.execute<{ id: string; owner_kind: 'MERCHANT' | 'BILLER' | 'ISSUER'; owner_id: string; url: string; disabled_at: Date | string }[]>(
    `update webhook_endpoint set enabled = false, disabled_at = now(), disabled_reason = 'FAILING', updated_at = now()
      where id = ? and enabled
        and not exists (select 1 from webhook_delivery where endpoint_id = ? and status = 'DELIVERED' and delivered_at >= ?)
      returning id, owner_kind, owner_id, url, disabled_at`,
    [endpointId, endpointId, since],
  );
  if (!endpoint) return;
  await cancelPendingDeliveries(tx, endpointId);
  const endpointGlobalId = toGlobalId('WebhookEndpoint', endpoint.id);
  await recordEvent(tx, {
    type: 'webhook_endpoint.disabled',
    ownerKind: endpoint.owner_kind,
    ownerId: endpoint.owner_id,
    subjectId: endpointGlobalId,
    payload: { endpoint: endpointGlobalId, url: endpoint.url, reason: 'FAILING', disabledAt: new Date(endpoint.disabled_at).toISOString(), failedDelivery: toGlobalId('WebhookDelivery', deliveryId), failingSince: new Date(since).toISOString() },
  });
}

import type { EntityManager } from '@mikro-orm/postgresql';
import { findEndpoint, type WebhookOwner } from './endpoints.service.js';
import { findEvent } from './events.service.js';
import { WebhookError } from './webhooks.errors.js';

export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'FAILED' | 'CANCELED';

export interface DeliveryRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  replay: boolean;
  status: DeliveryStatus;
  attempts: number;
  first_attempt_at: Date | string | null;
  last_attempt_at: Date | string | null;
  next_attempt_at: Date | string | null;
  last_status_code: number | null;
  last_error: string | null;
  delivered_at: Date | string | null;
  created_at: Date | string;
}

export interface AttemptRow {
  id: string;
  attempted_at: Date | string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

const COLUMNS = `d.id::text as id, d.event_id::text as event_id, d.endpoint_id, d.replay, d.status, d.attempts, d.first_attempt_at, d.last_attempt_at, d.next_attempt_at, d.last_status_code, d.last_error, d.delivered_at, d.created_at`;

/** Deliveries to the owner's endpoints, newest first; narrowed to one event and/or one endpoint. */
export async function listDeliveries(em: EntityManager, owner: WebhookOwner, opts: { eventId?: string; endpointId?: string; beforeId: string | null; limit: number }): Promise<DeliveryRow[]> {
  const where = ['e.owner_kind = ?', 'e.owner_id = ?'];
  const params: unknown[] = [owner.kind, owner.id];
  if (opts.eventId !== undefined) {
    if (!/^[0-9]{1,18}$/.test(opts.eventId)) return [];
    where.push('d.event_id = ?::bigint');
    params.push(opts.eventId);
  }
  if (opts.endpointId !== undefined) {
    where.push('d.endpoint_id::text = ?');
    params.push(opts.endpointId);
  }
  if (opts.beforeId) {
    where.push('d.id < ?::bigint');
    params.push(opts.beforeId);
  }
  params.push(opts.limit);
  return em.execute<DeliveryRow[]>(`select ${COLUMNS} from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id where ${where.join(' and ')} order by d.id desc limit ?`, params);
}

export async function findDelivery(em: EntityManager, owner: WebhookOwner, id: string): Promise<DeliveryRow | undefined> {
  if (!/^[0-9]{1,18}$/.test(id)) return undefined;
  const [row] = await em.execute<DeliveryRow[]>(`select ${COLUMNS} from webhook_delivery d join webhook_endpoint e on e.id = d.endpoint_id where d.id = ?::bigint and e.owner_kind = ? and e.owner_id = ?`, [id, owner.kind, owner.id]);
  return row;
}

export async function attemptsOf(em: EntityManager, deliveryId: string): Promise<AttemptRow[]> {
  return em.execute<AttemptRow[]>(`select id::text as id, attempted_at, status_code, error, duration_ms from webhook_attempt where delivery_id = ?::bigint order by id`, [deliveryId]);
}

/**
 * A fresh delivery of one published event, now: to the endpoint named (it must be enabled; it need
 * not subscribe to the type: asking is subscribing), or to every enabled endpoint of the owner that
 * subscribes to it. The dispatcher hands it to the job queue at its next round.
 */
export async function replayEvent(em: EntityManager, owner: WebhookOwner, input: { eventId: string; endpointId?: string }): Promise<DeliveryRow[]> {
  return em.transactional(async (tx) => {
    const event = await findEvent(tx, owner, input.eventId);
    if (!event) throw new WebhookError('NOT_FOUND', 'no such event', 'event');
    let endpointIds: string[];
    if (input.endpointId !== undefined) {
      const endpoint = await findEndpoint(tx, owner, input.endpointId);
      if (!endpoint) throw new WebhookError('NOT_FOUND', 'no such webhook endpoint', 'endpoint');
      if (!endpoint.enabled) throw new WebhookError('WEBHOOK_ENDPOINT_DISABLED', 'the endpoint is disabled; enable it first (updateWebhookEndpoint)', 'endpoint');
      endpointIds = [endpoint.id];
    } else {
      const rows = await tx.execute<{ id: string }[]>(
        `select id from webhook_endpoint where owner_kind = ? and owner_id = ? and enabled and (? = any(event_types) or '*' = any(event_types))`,
        [owner.kind, owner.id, event.type],
      );
      endpointIds = rows.map((r) => r.id);
      if (endpointIds.length === 0) throw new WebhookError('NOT_FOUND', `no enabled endpoint subscribes to ${event.type}`, 'endpoint');
    }
    const made = await tx.execute<{ id: string }[]>(
      `insert into webhook_delivery (event_id, endpoint_id, replay, next_attempt_at) select ?::bigint, unnest(?::uuid[]), true, now() returning id::text as id`,
      [event.id, `{${endpointIds.join(',')}}`],
    );
    return tx.execute<DeliveryRow[]>(`select ${COLUMNS} from webhook_delivery d where d.id in (?) order by d.id`, [made.map((m) => m.id)]);
  });
}

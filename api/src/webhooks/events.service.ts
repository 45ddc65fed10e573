import type { EntityManager } from '@mikro-orm/postgresql';
import { toGlobalId } from '../graphql/global-id.js';
import type { WebhookOwner } from './endpoints.service.js';

export interface EventRow {
  id: string;
  type: string;
  owner_kind: string;
  owner_id: string | null;
  subject_id: string;
  payload: Record<string, unknown>;
  created_at: Date | string;
  position: string | null;
}

/** What a webhook's body is: the same for every attempt and every endpoint, so receivers dedupe by `id`. */
export interface WebhookEventBody {
  id: string;
  type: string;
  /** ISO-8601, UTC. */
  created: string;
  data: Record<string, unknown>;
}

export const eventGlobalId = (id: string) => toGlobalId('Event', id);

export function eventBody(row: Pick<EventRow, 'id' | 'type' | 'payload' | 'created_at'>): WebhookEventBody {
  return { id: eventGlobalId(row.id), type: row.type, created: new Date(row.created_at).toISOString(), data: row.payload };
}

const COLUMNS = `id::text as id, type, owner_kind, owner_id, subject_id, payload, created_at, position::text as position`;

/**
 * The owner's published events (those the dispatcher has numbered, i.e. sent to its endpoints) in
 * publication order, after a position: what a receiver that missed deliveries reads to catch up.
 */
export async function listEvents(em: EntityManager, owner: WebhookOwner, opts: { afterPosition: string | null; types: string[] | null; limit: number }): Promise<EventRow[]> {
  const params: unknown[] = [owner.kind, owner.id, opts.afterPosition ?? '0'];
  let sql = `select ${COLUMNS} from event_outbox where owner_kind = ? and owner_id = ? and position is not null and position > ?::bigint`;
  if (opts.types) {
    if (opts.types.length === 0) return [];
    sql += ` and type in (?)`;
    params.push(opts.types);
  }
  params.push(opts.limit);
  return em.execute<EventRow[]>(`${sql} order by event_outbox.position limit ?`, params); // the column, not the text alias: 10 sorts after 9
}

/** One published event of this owner; another owner's, or one not yet published, answers as missing. */
export async function findEvent(em: EntityManager, owner: WebhookOwner, id: string): Promise<EventRow | undefined> {
  if (!/^[0-9]{1,18}$/.test(id)) return undefined;
  const [row] = await em.execute<EventRow[]>(`select ${COLUMNS} from event_outbox where id = ?::bigint and owner_kind = ? and owner_id = ? and position is not null`, [id, owner.kind, owner.id]);
  return row;
}

export async function eventsByIds(em: EntityManager, ids: string[]): Promise<Map<string, EventRow>> {
  if (ids.length === 0) return new Map();
  const rows = await em.execute<EventRow[]>(`select ${COLUMNS} from event_outbox where id in (?)`, [ids]);
  return new Map(rows.map((r) => [r.id, r]));
}

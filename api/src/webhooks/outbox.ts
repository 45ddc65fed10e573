import type { EntityManager } from '@mikro-orm/postgresql';

export type EventOwnerKind = 'MERCHANT' | 'BILLER' | 'ISSUER' | 'OPERATOR';

export interface OutboxEvent {
  /** e.g. `topup.paid`, `card.low_balance`. */
  type: string;
  /** Whose webhook endpoints receive it. */
  ownerKind: EventOwnerKind;
  ownerId: string | null;
  /** The global id of the object the event is about. */
  subjectId: string;
  payload: Record<string, unknown>;
}

/**
 * Writes an event in the caller's transaction, beside the change it describes: it exists exactly
 * when the change committed. Delivery to endpoints reads the outbox (webhooks issue).
 */
export async function recordEvent(em: EntityManager, event: OutboxEvent): Promise<void> {
  const insert = eventInsert(event);
  await em.execute(insert.sql, insert.params);
}

/**
 * recordEvent's insert as a statement and its parameters, for a caller to run as a CTE of a write
 * of its own that the event describes (one round trip for both: a refund's row and its event).
 */
export function eventInsert(event: OutboxEvent): { sql: string; params: unknown[] } {
  return {
    sql: `insert into event_outbox (type, owner_kind, owner_id, subject_id, payload) values (?, ?, ?, ?, ?)`,
    params: [event.type, event.ownerKind, event.ownerId, event.subjectId, JSON.stringify(event.payload)],
  };
}

/** Many events in one statement (clearing announces a statement per participant). */
export async function recordEvents(em: EntityManager, events: OutboxEvent[]): Promise<void> {
  for (let from = 0; from < events.length; from += 2000) {
    const chunk = events.slice(from, from + 2000);
    await em.execute(
      `insert into event_outbox (type, owner_kind, owner_id, subject_id, payload) values ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
      chunk.flatMap((e) => [e.type, e.ownerKind, e.ownerId, e.subjectId, JSON.stringify(e.payload)]),
    );
  }
}

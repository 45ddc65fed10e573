import type { EntityManager } from '@mikro-orm/postgresql';
import { SessionError } from '../session.errors.js';

/** The highest counters each card has shown; a lower one now means a copy of an earlier card state. */
export type CounterKind = 'online_counter' | 'offline_counter';

/** The card's `card_counter` row: the highest counters it has proved. */
export type SeenCounters = Record<CounterKind, number>;

/** `known`: the row as this message already read it (null: the card has none), else it is read here. */
export async function checkCounter(em: EntityManager, asn: string, kind: CounterKind, counter: number, known?: SeenCounters | null): Promise<void> {
  const [seen] = known !== undefined ? (known ? [known] : []) : await em.execute<SeenCounters[]>(`select ${kind} from card_counter where asn = ?`, [asn]);
  if (seen && counter < seen[kind]) throw new SessionError('COUNTER_ROLLBACK', `the card's ${kind.replace('_', ' ')} went back from ${seen[kind]} to ${counter}`).at('counters');
}

/** Records a counter the card proved (after a verified TAC). */
export async function recordCounter(em: EntityManager, asn: string, kind: CounterKind, counter: number): Promise<void> {
  await em.execute(
    `insert into card_counter (asn, ${kind}) values (?, ?)
     on conflict (asn) do update set ${kind} = greatest(card_counter.${kind}, excluded.${kind}), updated_at = now()`,
    [asn, counter],
  );
}

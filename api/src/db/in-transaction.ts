import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Runs `work` in the caller's transaction, or in a new one when the caller has none. Inside a
 * transaction `em.transactional` would open a savepoint (two more round trips) that a service whose
 * refusals write nothing does not need: the caller's transaction rolls back as a whole.
 */
export function inTransaction<T>(em: EntityManager, work: (em: EntityManager) => Promise<T>): Promise<T> {
  return em.isInTransaction() ? work(em) : em.transactional(work);
}

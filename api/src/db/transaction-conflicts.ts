import { DeadlockException } from '@mikro-orm/core';

/**
 * Whether PostgreSQL ended the transaction to break a deadlock or a serialization conflict (40P01,
 * 40001; MikroORM gives both as DeadlockException). Nothing the transaction wrote stays, and the
 * same work run again may well succeed: such an error is the whole transaction's, never one step's
 * to swallow (a savepoint's catch that took it for "this step cannot be done" lost a proved purchase).
 */
export function isTransactionConflict(err: unknown): boolean {
  return err instanceof DeadlockException;
}

/** Runs `attempt` (a whole transaction) up to `attempts` times while it ends in a transaction conflict; anything else, or the last conflict, goes to the caller. */
export async function runRetryingConflicts<T>(attempt: () => Promise<T>, attempts: number): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isTransactionConflict(err) || n >= attempts) throw err;
    }
  }
}

/** A promise's `.catch` that answers `value` for any failure but a transaction conflict, which it passes on. */
export function notUnlessConflict<T>(value: T): (err: unknown) => T {
  return (err) => {
    if (isTransactionConflict(err)) throw err;
    return value;
  };
}

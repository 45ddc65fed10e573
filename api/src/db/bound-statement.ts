import type { EntityManager } from '@mikro-orm/postgresql';

type KyselyQuery = Parameters<ReturnType<EntityManager['getKysely']>['executeQuery']>[0];

/**
 * Runs one statement with its values as bound parameters (`$1`, `$2`, …), on the connection of
 * `em`'s transaction (the pool's when it has none), and returns its rows.
 *
 * `em.execute()` inlines every parameter into the SQL text: a bulk statement that carries a batch's
 * rows as one JSON text of hundreds of kB had it escaped character by character in node
 * (`escapeLiteral`) and parsed again as a literal by PostgreSQL — a third of an offline upload's
 * CPU (issue 23, docs/performance.md). Bound, the text goes to PostgreSQL as it is. Fails as
 * `em.execute()` fails: MikroORM's exceptions, the SQLSTATE in `code`.
 */
export async function executeBound<T extends object>(em: EntityManager, sql: string, params: readonly unknown[]): Promise<T[]> {
  const query = { sql, parameters: params, query: { kind: 'RawNode', sqlFragments: [sql], parameters: [] }, queryId: { queryId: '' } } as unknown as KyselyQuery;
  try {
    const result = await em.getKysely().executeQuery(query);
    return result.rows as T[];
  } catch (err) {
    throw em.getDriver().convertException(err as Error);
  }
}

import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The months whose partitions are attached to a table partitioned by month, in order: its
 * partitions named `<table>_yYYYYmMM` (`clearing_item_y2026m11` → `2026-11`).
 */
export async function attachedMonths(em: EntityManager, table: string): Promise<string[]> {
  const rows = await em.execute<{ name: string }[]>(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = ?::regclass and c.relname ~ ('^' || ? || '_y[0-9]{4}m[0-9]{2}$') order by 1`,
    [table, table],
  );
  return rows.map((r) => `${r.name.slice(-7, -3)}-${r.name.slice(-2)}`);
}

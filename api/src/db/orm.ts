import 'reflect-metadata';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { entities } from './entities.js';
import { migrations } from './migrations/index.js';

export type Orm = MikroORM;

export function ormConfig(databaseUrl: string, opts: { poolMax?: number } = {}) {
  return defineConfig({
    clientUrl: databaseUrl,
    entities,
    metadataProvider: ReflectMetadataProvider,
    extensions: [Migrator],
    migrations: { migrationsList: migrations, transactional: true, allOrNothing: true, snapshot: false, silent: true },
    pool: { min: 0, max: opts.poolMax ?? 20, idleTimeoutMillis: 10_000 },
    // The schema comes only from the checked-in migrations (no sync outside tests).
    ensureDatabase: false,
    allowGlobalContext: false,
    debug: false,
  });
}

export async function openOrm(databaseUrl: string, opts: { poolMax?: number } = {}): Promise<Orm> {
  return MikroORM.init(ormConfig(databaseUrl, opts));
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(orm: Orm, log?: Logger): Promise<string[]> {
  const applied = await orm.migrator.up();
  for (const m of applied) log?.info({ migration: m.name }, 'migration applied');
  return applied.map((m) => m.name);
}

import 'reflect-metadata';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import { Migrator } from '@mikro-orm/migrations';
import { defineConfig, MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import type { Logger } from 'pino';
import { deferBegin } from './deferred-begin.js';
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
    // Every pooled connection sends a transaction's begin with its first statement (db/deferred-begin.ts).
    driverOptions: { onPoolCreated: (pool: pg.Pool) => pool.on('connect', (client) => deferBegin(client)) },
    // The schema comes only from the checked-in migrations (no sync outside tests).
    ensureDatabase: false,
    allowGlobalContext: false,
    debug: false,
  });
}

export async function openOrm(databaseUrl: string, opts: { poolMax?: number } = {}): Promise<Orm> {
  return MikroORM.init(ormConfig(databaseUrl, opts));
}

// Any fixed number: the key of the advisory lock that lets one process migrate at a time.
const MIGRATION_LOCK = 7_402_281_125;

/**
 * Applies pending migrations; returns the names applied. API processes started side by side
 * migrate one after the other (a session advisory lock); the later ones find nothing to do.
 */
export async function migrate(orm: Orm, log?: Logger): Promise<string[]> {
  const lock = new pg.Client({ connectionString: orm.config.get('clientUrl') });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const applied = await orm.migrator.up();
    for (const m of applied) log?.info({ migration: m.name }, 'migration applied');
    return applied.map((m) => m.name);
  } finally {
    await lock.end(); // ends the session, and with it the lock
  }
}

import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { startEmbeddedPostgres } from './embedded-postgres.js';

export const EMBEDDED_DATABASE = 'onecard';

export interface DatabaseHandle {
  url: string;
  embedded: boolean;
  /** Stops the embedded PostgreSQL, if this process started it. */
  stop(): Promise<void>;
}

/** DATABASE_URL's server, or the embedded PostgreSQL in `$ONECARD_DATA_DIR/pg` with a `onecard` database. */
export async function openDatabase(config: Config, log: Logger): Promise<DatabaseHandle> {
  if (config.databaseUrl) return { url: config.databaseUrl, embedded: false, stop: async () => {} };
  const cluster = await startEmbeddedPostgres({ dataDir: path.join(config.dataDir, 'pg'), port: config.embeddedPgPort, log });
  try {
    const admin = new pg.Client({ connectionString: cluster.adminUrl });
    await admin.connect();
    try {
      const { rowCount } = await admin.query('select 1 from pg_database where datname = $1', [EMBEDDED_DATABASE]);
      if (!rowCount) await admin.query(`create database ${EMBEDDED_DATABASE}`);
    } catch (err) {
      // A concurrent first start may have created it between our look and our create.
      if ((err as { code?: string }).code !== '42P04') throw err;
    } finally {
      await admin.end();
    }
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return { url: cluster.urlFor(EMBEDDED_DATABASE), embedded: true, stop: () => cluster.stop() };
}

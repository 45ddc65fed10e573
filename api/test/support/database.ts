import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openOrm, type Orm } from '../../src/db/orm.js';
// The types of what the global setup provides (vitest's ProvidedContext) are declared there.
import type {} from '../global-setup.js';

export interface TestDatabase {
  url: string;
  name: string;
  orm: Orm;
  close(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A database of this test file's own, cloned from the migrated template; nothing is shared. */
export async function freshDatabase(opts: { poolMax?: number } = {}): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const name = `${inject('testDatabasePrefix')}${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${inject('templateDatabase')}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminUrl, name);
  const orm = await openOrm(url, opts);
  return {
    url,
    name,
    orm,
    async close() {
      await orm.close(true);
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

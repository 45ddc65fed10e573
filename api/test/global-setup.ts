import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded-postgres.js';
import { migrate, openOrm } from '../src/db/orm.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the run's PostgreSQL server (maintenance database). */
    pgAdminUrl: string;
    /** A database with every migration applied; each test file clones it. */
    templateDatabase: string;
    /** Prefix of this run's test databases, so runs sharing a server leave each other alone. */
    testDatabasePrefix: string;
  }
}

let embedded: EmbeddedDatabase | undefined;
let tempDir: string | undefined;
let adminUrl: string;
let template: string;
let prefix: string;

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** One PostgreSQL for the whole run (embedded, or DATABASE_URL's server) and a migrated template. */
export async function setup(project: TestProject): Promise<void> {
  const log = pino({ level: 'silent' });
  if (process.env.DATABASE_URL) {
    adminUrl = withDatabase(process.env.DATABASE_URL, 'postgres');
  } else {
    tempDir = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-test-'));
    await fs.chmod(tempDir, 0o755);
    embedded = await startEmbeddedPostgres({ dataDir: path.join(tempDir, 'pg'), port: 0, log });
    adminUrl = embedded.adminUrl;
  }
  template = `onecard_template_${process.pid}`;
  prefix = `onecard_test_${process.pid}_`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${template}`);
  await admin.query(`create database ${template}`);
  await admin.end();
  const orm = await openOrm(withDatabase(adminUrl, template), { poolMax: 2 });
  await migrate(orm);
  await orm.close(true);
  project.provide('pgAdminUrl', adminUrl);
  project.provide('templateDatabase', template);
  project.provide('testDatabasePrefix', prefix);
}

export async function teardown(): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const { rows } = await admin.query<{ datname: string }>(
    `select datname from pg_database where datname = $1 or starts_with(datname, $2)`,
    [template, prefix],
  );
  for (const { datname } of rows) await admin.query(`drop database if exists "${datname}" with (force)`);
  await admin.end();
  await embedded?.stop();
  if (tempDir) await fs.rm(tempDir, { recursive: true, force: true });
}

/** What every benchmark needs around its phases: a scratch database, cleanups, percentiles. */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from 'pino';
import { startEmbeddedPostgres } from '../db/embedded-postgres.js';

/** Undone in reverse order when the bench ends, also on failure or Ctrl-C. */
export interface Cleanup {
  what: string;
  run: () => Promise<unknown>;
}

/** Runs every cleanup (in list order, each whatever the others do); false when one failed. */
export async function runCleanups(cleanups: Cleanup[]): Promise<boolean> {
  let ok = true;
  for (const c of cleanups) {
    try {
      await c.run();
    } catch (err) {
      console.error(`cleanup (${c.what}) failed:`, err);
      ok = false;
    }
  }
  return ok;
}

export interface ScratchDatabase {
  /** A fresh, empty database, dropped by the cleanups. */
  url: string;
  /** For the printed set-up line. */
  where: 'embedded' | 'DATABASE_URL';
  /** The embedded PostgreSQL's data folder (its processes can be measured), when one was started. */
  embeddedDataDir?: string;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * A scratch database on DATABASE_URL's server or, without it, on an embedded PostgreSQL in a temp
 * folder; everything it made is registered in `cleanups` (first in, last undone).
 */
export async function scratchDatabase(log: Logger, cleanups: Cleanup[]): Promise<ScratchDatabase> {
  let serverUrl = process.env.DATABASE_URL;
  let embeddedDataDir: string | undefined;
  if (!serverUrl) {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'onecard-bench-pg-'));
    cleanups.unshift({ what: `remove ${tmp}`, run: () => fs.rm(tmp, { recursive: true, force: true }) });
    await fs.chmod(tmp, 0o755); // PostgreSQL runs as the postgres user when we are root
    embeddedDataDir = path.join(tmp, 'data');
    const embedded = await startEmbeddedPostgres({ dataDir: embeddedDataDir, port: 0, log });
    cleanups.unshift({ what: 'stop embedded PostgreSQL', run: () => embedded.stop() });
    serverUrl = embedded.adminUrl;
  }
  const server = serverUrl;
  const dbName = `onecard_bench_${randomBytes(6).toString('hex')}`;
  const onServer = async (sql: string) => {
    const admin = new pg.Client({ connectionString: server });
    await admin.connect();
    try {
      await admin.query(sql);
    } finally {
      await admin.end();
    }
  };
  await onServer(`create database ${dbName}`);
  cleanups.unshift({ what: `drop database ${dbName}`, run: () => onServer(`drop database if exists ${dbName} with (force)`) });
  return { url: withDatabase(server, dbName), where: embeddedDataDir ? 'embedded' : 'DATABASE_URL', ...(embeddedDataDir ? { embeddedDataDir } : {}) };
}

/** The p-th percentile of sorted latencies (nearest rank); NaN when there are none. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

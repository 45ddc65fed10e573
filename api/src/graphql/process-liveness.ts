import { randomInt } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';

/**
 * This API process's liveness as PostgreSQL sees it: a session-level advisory lock, under a random
 * key, held on a connection of its own for as long as the process lives. When the process dies
 * (kill -9, a crash, the machine), its connection closes and PostgreSQL drops the lock at once; so
 * anyone can tell a claim of a live process from one of a dead process by asking `pg_locks` whether
 * the claim's key is still held (`LOCK_HELD_SQL`), with no lease to wait out.
 *
 * One per database and process, started on first use; a connection that is lost (a database
 * restart) is replaced by a new one under a new key on the next use, and claims made under the old
 * key then count as dead: their mutation is fenced by its transaction (idempotency.ts), or resumed
 * by its key.
 */
export interface Liveness {
  /** The advisory lock key (a positive bigint, as text for SQL parameters). */
  readonly lock: string;
  readonly alive: boolean;
  stop(): Promise<void>;
}

const running = new Map<string, Promise<Liveness>>();

/**
 * True when the advisory lock `owner_lock` (a column or parameter, bigint) is held in this database:
 * a bigint key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
 */
const HELD_BY = (ownerLock: string) => `l.locktype = 'advisory' and l.granted and l.objsubid = 1
     and l.database = (select oid from pg_database where datname = current_database())
     and l.classid = ((${ownerLock}) >> 32)::oid and l.objid = ((${ownerLock}) & 4294967295)::oid`;
export const LOCK_HELD_SQL = (ownerLock: string) => `exists (select 1 from pg_locks l where ${HELD_BY(ownerLock)})`;

/** How often a liveness checks that its session still holds its lock. */
const HEARTBEAT_MS = 5_000;

async function start(url: string): Promise<Liveness> {
  // Below 2^62: positive, and both halves fit pg_locks' unsigned 32-bit columns.
  const lock = ((BigInt(randomInt(1, 2 ** 30)) << 32n) | BigInt(randomInt(0, 2 ** 32 - 1))).toString();
  // keepAlive and the time-outs: a session that died silently (a dropped network path) is noticed,
  // not waited on for ever.
  const client = new pg.Client({ connectionString: url, application_name: 'onecard-liveness', keepAlive: true, connectionTimeoutMillis: 2_000, query_timeout: 2_000 });
  let alive = true;
  let heartbeat: NodeJS.Timeout | undefined;
  const lost = () => {
    alive = false;
    clearInterval(heartbeat);
  };
  // A lost connection (database restart, the database dropped under a test) only ends this liveness.
  client.on('error', lost);
  client.on('end', lost);
  await client.connect();
  await client.query('select pg_advisory_lock($1::bigint)', [lock]);
  // The lock must still be this session's: otherwise the process stamps claims with a lock nobody
  // holds (each looks dead). Then it stops counting as alive; the next use takes a new lock.
  heartbeat = setInterval(() => {
    client
      .query(`select exists (select 1 from pg_locks l where l.pid = pg_backend_pid() and ${HELD_BY('$1::bigint')}) as held`, [lock])
      .then((r: { rows: { held: boolean }[] }) => r.rows[0]?.held === true)
      .catch(() => false)
      .then((held) => {
        if (held || !alive) return;
        lost();
        client.end().catch(() => {});
      });
  }, HEARTBEAT_MS);
  heartbeat.unref();
  // The connection must not keep a process alive that has nothing else to do.
  (client as unknown as { connection?: { stream?: { unref?: () => void } } }).connection?.stream?.unref?.();
  return {
    lock,
    get alive() {
      return alive;
    },
    async stop() {
      lost();
      await client.end().catch(() => {});
    },
  };
}

/** This process's liveness in the database `em` works on; null when it cannot be had (then leases alone tell). */
export async function livenessFor(em: EntityManager): Promise<Liveness | null> {
  const url = em.config.get('clientUrl');
  if (!url) return null;
  const current = running.get(url);
  const liveness = current && (await current.catch(() => null));
  if (liveness?.alive) return liveness;
  // Lost or never started: one new one, even when several calls find it gone at once.
  if (running.get(url) === current) {
    const next = start(url);
    running.set(url, next);
    next.catch(() => running.get(url) === next && running.delete(url));
  }
  const fresh = await running.get(url)?.catch(() => null);
  return fresh?.alive ? fresh : null;
}

/**
 * Ends every liveness of this process (its claims then count as dead). For a clean stop, and for
 * tests that play a restart in-process: the next claim gets a new key, as a new process would.
 */
export async function stopLiveness(): Promise<void> {
  const all = [...running.values()];
  running.clear();
  await Promise.all(all.map((p) => p.then((l) => l.stop()).catch(() => {})));
}

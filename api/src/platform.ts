import cluster, { type Worker } from 'node:cluster';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import { openDatabase } from './db/database.js';
import { migrate, type Orm, openOrm } from './db/orm.js';
import { loadKeyEncryptionKey } from './secrets/kek.js';
import { type DemoData, seedDemoFile } from './demo/seed.js';
import { cardSessionEngine } from './card-sessions.js';
import { createHttpApp } from './http/app.js';
import { createHttpServer } from './http/server.js';
import { startBackgroundJobs } from './jobs/background-jobs.js';
import { partitionsAheadTask } from './jobs/partitions-ahead.js';
import { ridershipRollupsTask } from './jobs/ridership-rollups.js';
import { startWebhookDelivery } from './webhooks/delivery-worker.js';
import { purgeExpiredIdempotencyRecords, RunningMutations } from './graphql/idempotency.js';
import { armCrashPoints } from './graphql/crash-point.js';
import { stopLiveness } from './graphql/process-liveness.js';
import { expirePayments } from './payments/payments.service.js';
import { expireBillPayments } from './bills/bill-payments.service.js';
import type { SandboxGateway } from './topups/gateway/sandbox-gateway.js';
import { GatewayClient } from './topups/gateway/gateway-client.js';
import { ClientSecretSeal } from './topups/client-secret.js';
import { sandboxAnswers, sandboxKeys, startFixedSandbox } from './topups/gateway/sandbox-process.js';

/**
 * Periodic tasks on the job queue (graphile-worker cron: once a minute, once across all API
 * processes): payments and bill payments that expired waiting for a card are canceled; idempotency records past
 * their retention are purged; the monthly partitions of clearing_item and the ledger are kept three months ahead (hourly);
 * the ridership rollup of each day over and booked since its last build is built (every 10 minutes).
 */
export function scheduledTasks(orm: Orm, log: Logger) {
  return {
    tasks: {
      payments_expire: async () => {
        const expired = await expirePayments(orm.em.fork());
        const bills = await expireBillPayments(orm.em.fork());
        if (expired + bills > 0) log.info({ expired, billPayments: bills }, 'payments expired');
      },
      idempotency_purge: async () => {
        const purged = await purgeExpiredIdempotencyRecords(orm.em.fork());
        if (purged > 0) log.info({ purged }, 'idempotency records purged');
      },
      clearing_partitions_ahead: partitionsAheadTask(orm, log),
      ridership_rollups: ridershipRollupsTask(orm, log),
    },
    crontab: ['* * * * * payments_expire', '17 * * * * idempotency_purge', '41 * * * * clearing_partitions_ahead', '*/10 * * * * ridership_rollups'].join('\n'),
  };
}

export interface RunningPlatform {
  /** Where the API listens, e.g. http://127.0.0.1:4000. */
  url: string;
  /** The sandbox payment gateway, when no GATEWAY_URL was given. */
  sandboxGatewayUrl: string | null;
  /** What the demo seed made; null when ONECARD_DEMO is off. */
  demo: DemoData | null;
  stop(): Promise<void>;
}

/** Thrown when the port is taken; main.ts turns it into a clear message and a non-zero exit. */
export class PortInUseError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} is already in use: stop what uses it, or set PORT to another port`);
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(port) : err));
    server.listen(port, host, () => resolve());
  });
}

/** Fails with PortInUseError when the port is taken, before any database work (the real listen comes later). */
async function ensurePortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await listen(probe, port, host);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/** What one process of the platform runs, undone in reverse order by `stop`. */
class Undo {
  private readonly steps: (() => Promise<void>)[] = [];
  constructor(private readonly log: Logger) {}
  push(step: () => Promise<void>): void {
    this.steps.push(step);
  }
  stop = async () => {
    for (const step of this.steps.reverse()) await step().catch((err) => this.log.error({ err }, 'error while stopping'));
    this.steps.length = 0;
  };
}

/**
 * What the whole installation has once, whatever the number of API processes: the database
 * (embedded unless DATABASE_URL), migrations, the demo seed and demo.json, and the sandbox gateway
 * when no gateway is configured (its URL and keys go into the returned config).
 */
async function startShared(configured: Config, log: Logger, undo: Undo) {
  let config = configured;
  await ensurePortFree(config.port, config.host);
  const database = await openDatabase(config, log);
  undo.push(() => database.stop());
  const orm = await openOrm(database.url);
  undo.push(() => orm.close(true));
  await migrate(orm, log);

  // The demo data (clients with printed secrets, cardholders with known passwords, a demo root CA)
  // has no place in a real installation: ONECARD_DEMO is off by default in production.
  let demo: DemoData | null = null;
  if (config.demoData) {
    demo = (await seedDemoFile(orm.em.fork(), log, { config, kek: await loadKeyEncryptionKey(config), database })).file;
  }

  // No gateway configured (outside production): the sandbox gateway on its fixed local port, so the
  // whole top-up works with no internet; its keys and state are kept in the data folder across
  // restarts. One already running there (`onecard sandbox-gateway`, which outlives the API) is used.
  let sandbox: SandboxGateway | null = null;
  let sandboxUrl: string | null = null;
  if (!config.gateway) {
    const keys = await sandboxKeys(config.dataDir);
    const running = config.sandboxGatewayPort ? `http://127.0.0.1:${config.sandboxGatewayPort}` : null;
    if (running && (await sandboxAnswers(running, keys))) {
      log.info({ url: running }, 'using the sandbox gateway already running on its port');
      sandboxUrl = running;
    } else {
      sandbox = await startFixedSandbox({ dataDir: config.dataDir, port: config.sandboxGatewayPort, keys, log: log.child({ component: 'sandbox-gateway' }) });
      undo.push(() => sandbox!.close());
      sandboxUrl = sandbox.url;
    }
    config = { ...config, gateway: { url: sandboxUrl, ...keys } };
  }
  return { config, database, orm, demo, sandbox, sandboxUrl };
}

/** The work that runs once across API processes: background rounds, the webhook outbox and the job queue. */
async function startJobs(config: Config, orm: Orm, gateway: GatewayClient | null, clientSecrets: ClientSecretSeal, log: Logger, undo: Undo) {
  const jobs = startBackgroundJobs({ orm, gateway, clientSecrets, log: log.child({ component: 'jobs' }), intervalMs: 5_000, settlementCutoff: config.settlementCutoff });
  undo.push(() => jobs.stop());
  // Webhooks: the outbox dispatcher and the job queue delivering them; stopped first on shutdown,
  // while the database is still there (in-flight attempts finish or go back to the queue).
  // The job queue also runs the periodic work that must happen once across processes.
  const webhooks = await startWebhookDelivery({ orm, config, log: log.child({ component: 'webhooks' }), ...scheduledTasks(orm, log) });
  undo.push(() => webhooks.stop());
}

/** The HTTP API on the configured port (shared by the workers under node:cluster). */
async function serveHttp(config: Config, orm: Orm, log: Logger, undo: Undo) {
  // This process's liveness lock (idempotency claims), if a mutation started it; before the pool
  // closes, and after the mutations still running have finished (their claims must not look dead).
  const runningMutations = new RunningMutations();
  undo.push(async () => {
    await runningMutations.drain();
    await stopLiveness();
  });
  armCrashPoints(config.testCrashProbability);
  const http = await createHttpApp({ config, orm, log, cardSessions: cardSessionEngine(config), runningMutations });
  undo.push(() => http.close());
  const server = createHttpServer(config.http, http.app);
  await listen(server, config.port, config.host);
  undo.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return { http, port: (server.address() as AddressInfo).port };
}

/**
 * The start path of `npm start` in one process: database (embedded unless DATABASE_URL),
 * migrations, demo seed, demo.json, sandbox gateway, HTTP server, background jobs. `stop()` undoes
 * it in reverse order.
 */
export async function startPlatform(configured: Config, log: Logger): Promise<RunningPlatform> {
  const undo = new Undo(log);
  try {
    const { config, orm, demo, sandbox, sandboxUrl } = await startShared(configured, log, undo);
    const { http, port } = await serveHttp(config, orm, log, undo);
    const url = `http://127.0.0.1:${port}`;
    sandbox?.setWebhookUrl(`${url}/webhooks/gateway`);
    await startJobs(config, orm, http.gateway, http.clientSecrets, log, undo);
    return { url, sandboxGatewayUrl: sandboxUrl, demo, stop: undo.stop };
  } catch (err) {
    await undo.stop();
    throw err;
  }
}

/** The environment a worker starts from: the primary's, pointed at what the primary started. */
function workerEnv(config: Config, databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    ONECARD_DEMO: 'false',
    PUBLIC_URL: config.publicUrl,
    ...(config.gateway ? { GATEWAY_URL: config.gateway.url, GATEWAY_SECRET_KEY: config.gateway.secretKey, GATEWAY_WEBHOOK_SECRET: config.gateway.webhookSecret } : {}),
  };
}

/**
 * `WEB_CONCURRENCY=N` (N > 1), the primary: what the installation has once (database, migrations,
 * demo seed, sandbox gateway, background jobs) and N API workers (node:cluster; the port is shared,
 * the primary hands out connections). A worker that dies is replaced. `stop()` stops the workers
 * first (each finishes what it serves), then the jobs, the sandbox and the database.
 */
export async function startPrimary(configured: Config, log: Logger): Promise<RunningPlatform> {
  const undo = new Undo(log);
  try {
    const { config, database, orm, demo, sandbox, sandboxUrl } = await startShared(configured, log, undo);
    const gateway = config.gateway ? new GatewayClient({ url: config.gateway.url, secretKey: config.gateway.secretKey, timeoutMs: config.gateway.timeoutMs }) : null;
    await startJobs(config, orm, gateway, new ClientSecretSeal(await loadKeyEncryptionKey(config)), log, undo);
    // Pushed last, so undone first: the workers stop serving before the jobs and the database stop.
    let stopping = false;
    const env = workerEnv(config, database.url);
    const fork = () => cluster.fork(env);
    const workers = Array.from({ length: config.webConcurrency }, fork);
    const port = await new Promise<number>((resolve, reject) => {
      let listening = 0;
      const onListening = (_w: Worker, address: { port: number }) => {
        if (++listening === workers.length) {
          cluster.off('listening', onListening);
          cluster.off('exit', onEarlyExit);
          resolve(address.port);
        }
      };
      const onEarlyExit = (w: Worker, code: number) => reject(new Error(`API worker ${w.id} exited with code ${code} before it listened`));
      cluster.on('listening', onListening);
      cluster.on('exit', onEarlyExit);
    });
    cluster.on('exit', (w, code, signal) => {
      if (stopping) return;
      log.error({ worker: w.id, code, signal }, 'an API worker died; starting another');
      fork();
    });
    undo.push(async () => {
      stopping = true;
      const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w && !w.isDead());
      await Promise.all(
        alive.map(
          (w) =>
            new Promise<void>((resolve) => {
              w.once('exit', () => resolve());
              w.process.kill('SIGTERM');
            }),
        ),
      );
    });
    const url = `http://127.0.0.1:${port}`;
    sandbox?.setWebhookUrl(`${url}/webhooks/gateway`);
    log.info({ workers: workers.length, url }, 'API workers listening');
    return { url, sandboxGatewayUrl: sandboxUrl, demo, stop: undo.stop };
  } catch (err) {
    await undo.stop();
    throw err;
  }
}

/** An API worker under `startPrimary`: the HTTP API on the shared port, on the database the primary opened. */
export async function startApiWorker(config: Config, log: Logger): Promise<RunningPlatform> {
  const undo = new Undo(log);
  try {
    if (!config.databaseUrl) throw new Error('an API worker is started by the primary, with DATABASE_URL');
    const orm = await openOrm(config.databaseUrl);
    undo.push(() => orm.close(true));
    const { port } = await serveHttp(config, orm, log, undo);
    return { url: `http://127.0.0.1:${port}`, sandboxGatewayUrl: config.gateway?.url ?? null, demo: null, stop: undo.stop };
  } catch (err) {
    await undo.stop();
    throw err;
  }
}

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
import { startWebhookDelivery } from './webhooks/delivery-worker.js';
import { purgeExpiredIdempotencyRecords, RunningMutations } from './graphql/idempotency.js';
import { armCrashPoints } from './graphql/crash-point.js';
import { stopLiveness } from './graphql/process-liveness.js';
import { expirePayments } from './payments/payments.service.js';
import { expireBillPayments } from './bills/bill-payments.service.js';
import type { SandboxGateway } from './topups/gateway/sandbox-gateway.js';
import { sandboxAnswers, sandboxKeys, startFixedSandbox } from './topups/gateway/sandbox-process.js';

/**
 * Periodic tasks on the job queue (graphile-worker cron: once a minute, once across all API
 * processes): payments and bill payments that expired waiting for a card are canceled; idempotency records past
 * their retention are purged.
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
    },
    crontab: ['* * * * * payments_expire', '17 * * * * idempotency_purge'].join('\n'),
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

/**
 * The start path of `npm start`: database (embedded unless DATABASE_URL), migrations, demo seed,
 * demo.json, HTTP server. `stop()` undoes it in reverse order.
 */
export async function startPlatform(configured: Config, log: Logger): Promise<RunningPlatform> {
  let config = configured;
  const undo: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of undo.reverse()) await step().catch((err) => log.error({ err }, 'error while stopping'));
    undo.length = 0;
  };
  try {
    await ensurePortFree(config.port, config.host);
    const database = await openDatabase(config, log);
    undo.push(() => database.stop());
    const orm = await openOrm(database.url);
    undo.push(() => orm.close(true));
    // This process's liveness lock (idempotency claims), if a mutation started it; before the pool
    // closes, and after the mutations still running have finished (their claims must not look dead).
    const runningMutations = new RunningMutations();
    undo.push(async () => {
      await runningMutations.drain();
      await stopLiveness();
    });
    armCrashPoints(config.testCrashProbability);
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
    const { port } = server.address() as AddressInfo;
    const url = `http://127.0.0.1:${port}`;
    sandbox?.setWebhookUrl(`${url}/webhooks/gateway`);
    const jobs = startBackgroundJobs({ orm, gateway: http.gateway, clientSecrets: http.clientSecrets, log: log.child({ component: 'jobs' }), intervalMs: 5_000, settlementCutoff: config.settlementCutoff });
    undo.push(() => jobs.stop());
    // Webhooks: the outbox dispatcher and the job queue delivering them; stopped first on shutdown,
    // while the database is still there (in-flight attempts finish or go back to the queue).
    // The job queue also runs the periodic work that must happen once across processes.
    const webhooks = await startWebhookDelivery({ orm, config, log: log.child({ component: 'webhooks' }), ...scheduledTasks(orm, log) });
    undo.push(() => webhooks.stop());
    return { url, sandboxGatewayUrl: sandboxUrl, demo, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

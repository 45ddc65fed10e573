import type { MikroORM } from '@mikro-orm/postgresql';
import { Logger as WorkerLogger, run, type Runner, type Task } from 'graphile-worker';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { deliverOnce, type DeliverDeps } from './deliver.js';
import { DELIVER_TASK, dispatchRound, JOB_SCHEMA } from './dispatcher.js';
import { type RetrySchedule, retryScheduleOf } from './retry-schedule.js';

/** Events (and deliveries to queue) one dispatcher transaction takes. */
const DISPATCH_BATCH = 500;

export interface WebhookDeliveryOptions {
  orm: MikroORM;
  config: Config;
  log: Logger;
  /** The retry schedule (retry-schedule.ts); tests shorten it. */
  retry?: Partial<RetrySchedule>;
  /** How long a receiver has to answer one attempt. Default 10 s. */
  timeoutMs?: number;
  /** How often the dispatcher looks for new events (and replays). Default 1 s. */
  dispatchIntervalMs?: number;
  /** How often the job queue looks for jobs that became due (new jobs arrive by LISTEN/NOTIFY). Default 2 s. */
  jobPollIntervalMs?: number;
  /** Deliveries in flight at once in this process. Default 10. */
  concurrency?: number;
  /** On stop, how long attempts in flight may finish before they are cut short (and queued again). Default 5 s. */
  stopGraceMs?: number;
  /** Replaces the POST (tests). */
  send?: DeliverDeps['send'];
  /**
   * Other contexts' work on the same queue: tasks by name, and a graphile-worker crontab that
   * schedules them (each cron run happens once across all processes).
   */
  tasks?: Record<string, Task>;
  crontab?: string;
}

export interface RunningWebhookDelivery {
  /** Runs a dispatcher round now (tests; the interval runs them anyway). */
  dispatchNow(): Promise<void>;
  /** Stops the dispatcher, then the job queue (attempts in flight finish or are handed back). */
  stop(): Promise<void>;
}

/** graphile-worker's log lines into ours; its chatter (info) is debug for us. */
function workerLogger(log: Logger): WorkerLogger {
  return new WorkerLogger((scope) => (level, message, meta) => {
    const fields = { component: 'job-queue', ...scope, ...(meta?.error ? { err: meta.error } : {}) };
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else log.debug(fields, message);
  });
}

/**
 * Webhook delivery in this process: the dispatcher (outbox events → deliveries → jobs) on an
 * interval, and a graphile-worker pool running the delivery jobs. Any number of processes may run
 * it over one database: the dispatcher and the queue coordinate through PostgreSQL.
 */
export async function startWebhookDelivery(opts: WebhookDeliveryOptions): Promise<RunningWebhookDelivery> {
  const log = opts.log;
  const schedule = retryScheduleOf(opts.retry);
  const kek = await loadKeyEncryptionKey(opts.config);
  const concurrency = opts.concurrency ?? 10;
  const pool = new pg.Pool({ connectionString: opts.orm.config.get('clientUrl'), max: concurrency + 2 });
  // A dropped connection must not take the process down: logged, and the pool makes a new one.
  pool.on('error', (err) => log.warn({ err }, 'job queue connection error'));
  // Connections counted until each has really closed: pool.end() resolves once it has asked them
  // to, and a database stopped right after would cut the ones still closing (57P01 on each).
  let open = 0;
  let allClosed: (() => void) | undefined;
  pool.on('connect', (client) => {
    open++;
    client.on('error', (err) => log.warn({ err }, 'job queue connection error'));
  });
  pool.on('remove', () => {
    if (--open === 0) allClosed?.();
  });

  const deliver: Task = async (payload, helpers) => {
    const { deliveryId } = payload as { deliveryId: string };
    const outcome = await deliverOnce(
      opts.orm.em.fork(),
      { kek, schedule, timeoutMs: opts.timeoutMs ?? 10_000, internal: opts.config.internalUrls, stop: helpers.abortSignal, send: opts.send },
      deliveryId,
    );
    log.debug({ deliveryId, outcome }, 'webhook delivery attempt');
  };

  let runner: Runner;
  try {
    runner = await run({
      pgPool: pool,
      schema: JOB_SCHEMA,
      taskList: { ...opts.tasks, [DELIVER_TASK]: deliver },
      ...(opts.crontab ? { crontab: opts.crontab } : {}),
      concurrency,
      pollInterval: opts.jobPollIntervalMs ?? 2_000,
      noHandleSignals: true, // the platform's shutdown stops us, in order
      gracefulShutdownAbortTimeout: opts.stopGraceMs ?? 5_000,
      logger: workerLogger(log),
    });
  } catch (err) {
    await pool.end();
    throw err;
  }

  let round: Promise<void> | null = null;
  let stopped = false;
  const dispatchNow = () => {
    round ??= (async () => {
      // A full batch means more is waiting (a backlog after downtime): go on until it is drained.
      for (let i = 0; i < 100 && !stopped; i++) {
        const done = await dispatchRound(opts.orm.em.fork(), { batchSize: DISPATCH_BATCH });
        if (done.events || done.queued) log.debug(done, 'webhook dispatch');
        if (done.events < DISPATCH_BATCH && done.queued < DISPATCH_BATCH) break;
      }
    })()
      .catch((err) => log.warn({ err }, 'webhook dispatch failed; tried again next round'))
      .finally(() => {
        round = null;
      });
    return round;
  };
  const timer = setInterval(() => void (stopped || dispatchNow()), opts.dispatchIntervalMs ?? 1_000);
  timer.unref();
  void dispatchNow();

  return {
    dispatchNow,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await round;
      await runner.stop().catch((err) => log.error({ err }, 'job queue did not stop cleanly'));
      const closed = new Promise<void>((resolve) => (open === 0 ? resolve() : (allClosed = resolve)));
      await pool.end();
      // Bounded: a connection that never reports its end must not hold the stop up.
      await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 5_000).unref())]);
    },
  };
}

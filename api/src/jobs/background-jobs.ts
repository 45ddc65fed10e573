import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { GatewayClient } from '../topups/gateway/gateway-client.js';
import { runDueBalanceTransfers } from '../cards/cards.service.js';
import { runSettlementJobs } from '../settlement/settlement.jobs.js';
import type { ClientSecretSeal } from '../topups/client-secret.js';
import { runTopUpJobs } from '../topups/topups.jobs.js';
import { expireAbandonedSessions } from '../readers/session/expire-sessions.js';

export interface BackgroundJobs {
  /** Runs one round now (tests, and the first round at start). */
  runOnce(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The periodic work of one API process: top-ups the gateway has not confirmed, refunds, due balance
 * transfers, card sessions abandoned past their expiry, settlement (cut-offs, clearing, payouts). (Payment expiry runs as a cron task on the job queue: platform.ts.) Every job claims rows with `for update skip locked`, so any number of processes may
 * run it side by side. A round never overlaps the previous one.
 */
export function startBackgroundJobs(opts: {
  orm: MikroORM;
  gateway: GatewayClient | null;
  /** Seals the client secret of a payment intent the jobs see first (http/app.ts makes it); none: it is not kept. */
  clientSecrets?: ClientSecretSeal | null;
  log: Logger;
  intervalMs: number;
  settlementCutoff: string;
}): BackgroundJobs {
  let running: Promise<void> | null = null;
  let stopped = false;
  const round = async () => {
    const em = opts.orm.em.fork();
    const transferred = await runDueBalanceTransfers(em, new Date()).catch((err) => {
      opts.log.warn({ err }, 'a balance transfer failed; tried again next round');
      return 0;
    });
    if (transferred > 0) opts.log.info({ transferred }, 'balance transfers of replaced cards');
    // Card sessions cut by a crash (of the app, the reader or this API) would stay OPEN for ever.
    const abandoned = await expireAbandonedSessions(em).catch((err) => {
      opts.log.warn({ err }, 'expiring abandoned card sessions failed; tried again next round');
      return 0;
    });
    if (abandoned > 0) opts.log.info({ abandoned }, 'abandoned card sessions expired');
    if (opts.gateway) {
      const done = await runTopUpJobs(em, opts.gateway, { clientSecrets: opts.clientSecrets, onError: (err, topUpId) => opts.log.warn({ err, topUpId }, 'top-up job failed; tried again next round') });
      if (done.submitted + done.polled + done.refunds > 0) opts.log.info(done, 'top-up jobs');
    }
    const settled = await runSettlementJobs(em, opts.gateway, { cutoff: opts.settlementCutoff, onError: (err, step) => opts.log.error({ err, step }, 'a settlement step failed; tried again next round') }).catch((err) => {
      opts.log.error({ err }, 'settlement jobs failed; tried again next round');
      return null;
    });
    if (settled && settled.closed + settled.cleared + settled.sent + settled.polled + settled.reconciled > 0) opts.log.info(settled, 'settlement jobs');
  };
  const runOnce = () => {
    running ??= round()
      .catch((err) => opts.log.error({ err }, 'background jobs failed'))
      .finally(() => {
        running = null;
      });
    return running;
  };
  const timer = opts.intervalMs > 0 ? setInterval(() => void (stopped || runOnce()), opts.intervalMs) : undefined;
  timer?.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

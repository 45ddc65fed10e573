import 'reflect-metadata';
import cluster from 'node:cluster';
import { ConfigError, loadConfig } from './config/config.js';
import { createLogger } from './http/logger.js';
import { PortInUseError, startApiWorker, startPlatform, startPrimary } from './platform.js';
import { startBanner } from './demo/start-banner.js';

/**
 * `npm start`: the whole platform, stopped cleanly by Ctrl-C or SIGTERM. With WEB_CONCURRENCY=N
 * (N > 1) this process is the primary and N workers (this same file, under node:cluster) serve the
 * API; Ctrl-C reaches all of them (one process group), SIGTERM to the primary alone is passed on.
 */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`onecard: bad configuration: ${err.message}\n`);
    process.exit(2);
  }
  const log = cluster.isWorker ? createLogger(config).child({ worker: cluster.worker!.id }) : createLogger(config);
  // A database that goes away must not take the process down; /readyz reports it instead.
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  let platform;
  try {
    platform = await (cluster.isWorker ? startApiWorker : config.webConcurrency > 1 ? startPrimary : startPlatform)(config, log);
  } catch (err) {
    if (err instanceof PortInUseError) {
      process.stderr.write(`onecard: ${err.message}\n`);
      process.exit(1);
    }
    log.fatal({ err }, 'start failed');
    const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = e.address ? ` at ${e.address}:${e.port}` : '';
    const database = config.databaseUrl ? 'the database of DATABASE_URL' : 'the embedded PostgreSQL';
    process.stderr.write(
      ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', '28P01', '3D000'].includes(String(e.code))
        ? `onecard: cannot reach ${database}${where}: ${e.message}\n`
        : `onecard: start failed: ${e.message}\n`,
    );
    process.exit(1);
  }
  const running = platform;

  let stoppingSince = 0;
  const shutdown = (signal: NodeJS.Signals) => {
    // A worker is stopped by the primary (and hears the terminal's Ctrl-C too): once is enough.
    if (stoppingSince && cluster.isWorker) return;
    if (stoppingSince) {
      // Ctrl-C can arrive twice at once (from the terminal and relayed by npm): only a later one forces.
      if (Date.now() - stoppingSince < 1_000) return;
      log.warn({ signal }, 'second signal: exiting without a clean stop');
      process.exit(1);
    }
    stoppingSince = Date.now();
    log.info({ signal }, 'stopping');
    running.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  // Stops the HTTP server and the pool first, then the database.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, shutdown);

  if (cluster.isWorker) return;
  // URLs, where the demo credentials are (not the secrets: stdout ends up in logs), what to try next.
  process.stdout.write(startBanner({ config, sandboxGatewayUrl: running.sandboxGatewayUrl, demo: running.demo }));
}

await main();

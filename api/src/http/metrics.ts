import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { Config } from '../config/config.js';

/**
 * Who may read /metrics (docs/operations.md#metrics): with METRICS_TOKEN set, only a scraper that
 * sends it as a bearer token; without it, anyone outside production and no one in production (the
 * route answers 404 there, as if it did not exist).
 */
export function metricsAccess(config: Pick<Config, 'env' | 'metricsToken'>): RequestHandler {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  const expected = config.metricsToken ? digest(config.metricsToken) : undefined;
  return (req, res, next) => {
    if (!expected) {
      if (config.env === 'production') res.status(404).json({ error: 'not found' });
      else next();
      return;
    }
    const header = req.headers.authorization ?? '';
    // Hashes of equal length, so the comparison takes the same time whatever was sent.
    if (header.startsWith('Bearer ') && timingSafeEqual(digest(header.slice(7)), expected)) {
      next();
      return;
    }
    res.status(401).setHeader('www-authenticate', 'Bearer realm="metrics"').json({ error: 'the metrics need the bearer token of METRICS_TOKEN' });
  };
}

/** The process's Prometheus metrics, served at /metrics. One registry per app, so tests stay apart. */
export class Metrics {
  readonly registry = new Registry();
  private readonly operations = new Set<string>();

  readonly graphqlRequests = new Counter({
    name: 'onecard_graphql_requests_total',
    help: 'GraphQL operations by operation name, type and outcome.',
    labelNames: ['operation', 'type', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly graphqlDuration = new Histogram({
    name: 'onecard_graphql_request_duration_seconds',
    help: 'GraphQL operation latency by operation name.',
    labelNames: ['operation', 'type'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly httpRequests = new Counter({
    name: 'onecard_http_requests_total',
    help: 'HTTP requests by route and status class.',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Operation names come from clients: keep them as labels only while they look like names and
   * stay few, so a client cannot blow up the number of series.
   */
  operationLabel(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) return 'invalid';
    if (!this.operations.has(name)) {
      if (this.operations.size >= 500) return 'other';
      this.operations.add(name);
    }
    return name;
  }
}

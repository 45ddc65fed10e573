import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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

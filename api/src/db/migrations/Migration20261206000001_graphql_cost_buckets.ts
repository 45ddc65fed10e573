import { Migration } from '@mikro-orm/migrations';

/**
 * Cost-based rate limits of the GraphQL API (issue 18; docs/security.md#rate-limits-graphql-cost):
 * one leaky bucket of cost points per OAuth client (per client and holder for a cardholder app,
 * per IP address for anonymous calls), shared by every API process. A row is charged and refilled
 * by one atomic upsert (graphql/cost-throttle.ts).
 */
export class Migration20261206000001_graphql_cost_buckets extends Migration {
  override name = 'Migration20261206000001_graphql_cost_buckets';

  override up(): void {
    // Points are fractional while they refill (restore rate × elapsed seconds); they are not money.
    // No index on updated_at: every request rewrites it, and an index would cost each of them.
    this.addSql(`
      create table graphql_cost_bucket (
        bucket_key text primary key,
        available double precision not null,
        last_charged boolean not null,
        updated_at timestamptz not null
      )`);
  }
}

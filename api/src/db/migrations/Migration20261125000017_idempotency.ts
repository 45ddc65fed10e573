import { Migration } from '@mikro-orm/migrations';

/**
 * Idempotency of money mutations (DESIGN.md §4, docs/api-conventions.md#idempotency): one row per
 * (client, key), claimed IN_FLIGHT in its own committed statement before the mutation runs, DONE
 * with the stored payload after. api/src/graphql/idempotency.ts is the only code that touches it.
 */
export class Migration20261125000017_idempotency extends Migration {
  override name = 'Migration20261125000017_idempotency';

  override up(): void {
    this.addSql(`
      create table idempotency_record (
        -- the OAuth client that sent the key: keys are per client ...
        client_id text not null,
        -- ... and, for a cardholder app (one client for many holders), per holder its token acts
        -- for; '' for every other client
        holder_id text not null default '',
        key text not null check (length(key) between 1 and 200),
        -- the mutation field name (createTopUp, refundTopUp, ...)
        operation text not null,
        -- sha256 of the canonical JSON of [operation, args]: what "the same request" means
        request_hash text not null check (request_hash ~ '^[0-9a-f]{64}$'),
        state text not null check (state in ('IN_FLIGHT','DONE')),
        -- the payload the mutation returned (bigints and dates tagged), for replays
        response jsonb,
        -- who runs (or ran) it: host, pid and a random id per claim
        owner text not null,
        -- an IN_FLIGHT claim is stale (its process died) once this passes; the runner extends it
        locked_until timestamptz,
        created_at timestamptz not null default now(),
        completed_at timestamptz,
        expires_at timestamptz not null,
        primary key (client_id, holder_id, key),
        check ((state = 'DONE') = (response is not null and completed_at is not null)),
        check ((state = 'IN_FLIGHT') = (locked_until is not null)),
        -- kept at least 24 hours (the spec); the code keeps 48
        check (expires_at >= created_at + interval '24 hours')
      )`);
    this.addSql(`create index idempotency_record_expires_idx on idempotency_record (expires_at)`);
  }
}

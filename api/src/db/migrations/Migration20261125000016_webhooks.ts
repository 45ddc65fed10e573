import { Migration } from '@mikro-orm/migrations';

/**
 * Signed webhooks (docs/webhooks.md): endpoints of merchants, billers and card companies, one
 * delivery per (outbox event, endpoint), and every attempt. The job queue that runs deliveries is
 * graphile-worker's; it keeps its own schema (`graphile_worker`) and migrates it when it starts.
 */
export class Migration20261125000016_webhooks extends Migration {
  override name = 'Migration20261125000016_webhooks';

  override up(): void {
    // The dispatcher marks each event once it has made its deliveries, and numbers it: positions
    // are given under one lock, so they follow commit order (ids do not: a transaction that took
    // id 10 may commit after the one that took id 11), and `events(after:)` never skips one.
    this.addSql(`alter table event_outbox add column dispatched_at timestamptz, add column position bigint unique`);
    this.addSql(`create index event_outbox_undispatched_idx on event_outbox (id) where dispatched_at is null`);
    this.addSql(`create index event_outbox_owner_position_idx on event_outbox (owner_kind, owner_id, position) where position is not null`);
    this.addSql(`
      create table webhook_endpoint (
        id uuid primary key,
        owner_kind text not null check (owner_kind in ('MERCHANT','BILLER','ISSUER')),
        owner_id uuid not null,
        url text not null check (length(url) between 1 and 2048),
        description text check (description is null or length(description) <= 500),
        event_types text[] not null check (cardinality(event_types) > 0),
        enabled boolean not null default true,
        -- the signing secret sealed with the key-encryption key (the server signs with it, so no hash)
        secret_sealed text not null,
        -- the secret before the last rotation, still signing alongside until it expires
        previous_secret_sealed text,
        previous_secret_expires_at timestamptz,
        disabled_at timestamptz,
        disabled_reason text check (disabled_reason in ('MANUAL','FAILING')),
        created_by_client text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        check (enabled = (disabled_at is null)),
        check ((previous_secret_sealed is null) = (previous_secret_expires_at is null))
      )`);
    this.addSql(`create index webhook_endpoint_owner_idx on webhook_endpoint (owner_kind, owner_id, created_at)`);
    this.addSql(`
      create table webhook_delivery (
        id bigserial primary key,
        event_id bigint not null references event_outbox (id),
        endpoint_id uuid not null references webhook_endpoint (id) on delete cascade,
        -- made by replayWebhookEvent rather than by the dispatcher
        replay boolean not null default false,
        status text not null default 'PENDING' check (status in ('PENDING','DELIVERED','FAILED','CANCELED')),
        -- handed to the job queue (graphile-worker); the dispatcher hands over the others
        queued boolean not null default false,
        attempts integer not null default 0,
        first_attempt_at timestamptz,
        last_attempt_at timestamptz,
        next_attempt_at timestamptz,
        last_status_code integer,
        last_error text,
        delivered_at timestamptz,
        created_at timestamptz not null default now(),
        check ((status = 'DELIVERED') = (delivered_at is not null))
      )`);
    // Exactly one dispatched delivery per event and endpoint, whatever the number of dispatchers.
    this.addSql(`create unique index webhook_delivery_once_idx on webhook_delivery (event_id, endpoint_id) where not replay`);
    this.addSql(`create index webhook_delivery_endpoint_idx on webhook_delivery (endpoint_id, id)`);
    this.addSql(`create index webhook_delivery_unqueued_idx on webhook_delivery (id) where status = 'PENDING' and not queued`);
    this.addSql(`create index webhook_delivery_delivered_idx on webhook_delivery (endpoint_id, delivered_at) where status = 'DELIVERED'`);
    this.addSql(`
      create table webhook_attempt (
        id bigserial primary key,
        delivery_id bigint not null references webhook_delivery (id) on delete cascade,
        attempted_at timestamptz not null,
        -- the receiver's HTTP status, or null when no answer came (error says why)
        status_code integer,
        error text,
        duration_ms integer not null check (duration_ms >= 0)
      )`);
    this.addSql(`create index webhook_attempt_delivery_idx on webhook_attempt (delivery_id, id)`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Online top-ups (充值) paid at the payment gateway and written onto the card later (补登), the
 * gateway's webhook events (each handled once), auto top-up settings, and the event outbox other
 * contexts' webhooks deliver from.
 */
export class Migration20261125000014_topups extends Migration {
  override name = 'Migration20261125000014_topups';

  override up(): void {
    this.addSql(`
      create table top_up (
        id uuid primary key,
        card_id uuid not null references card (id),
        card_company_id uuid not null references card_company (id),
        -- who asked: a cardholder app (for its holder), the card company at a counter, auto top-up,
        -- or a replaced card's balance on its way to the replacement (no gateway payment behind it)
        origin text not null check (origin in ('APP','COUNTER','AUTO','TRANSFER')),
        holder_id uuid references cardholder (id),
        created_by_client text not null,
        idempotency_key text not null check (length(idempotency_key) between 1 and 300),
        request_hash text not null,
        amount bigint not null check (amount > 0),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        status text not null check (status in ('CREATED','AWAITING_PAYMENT','PAID','LOADED','FAILED','CANCELED','REFUNDING','REFUNDED')),
        payment_method text,
        gateway_intent_id text unique,
        client_secret text,
        failure_code text,
        failure_message text,
        -- the day of the card's city the top-up counts against (daily limit)
        city_day date not null,
        -- the card session that received MAC2 for this load, and what the card said then (recovery)
        load_session_id uuid references card_session (id),
        load_claim jsonb,
        loaded_session_id uuid references card_session (id),
        gateway_refund_id text unique,
        -- the refund being asked of the gateway now: its ledger entry and the gateway's idempotency key carry it
        refund_attempt uuid,
        gateway_attempts integer not null default 0,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        paid_at timestamptz,
        loaded_at timestamptz,
        refunded_at timestamptz,
        unique (created_by_client, idempotency_key),
        check ((status in ('PAID','LOADED','REFUNDING','REFUNDED')) = (paid_at is not null)),
        check ((status = 'LOADED') = (loaded_session_id is not null))
      )`);
    this.addSql(`create index top_up_card_idx on top_up (card_id, created_at desc, id)`);
    this.addSql(`create index top_up_card_day_idx on top_up (card_id, city_day)`);
    this.addSql(`create index top_up_unsettled_idx on top_up (status, updated_at) where status in ('CREATED','AWAITING_PAYMENT','REFUNDING')`);
    this.addSql(`
      create table top_up_history (
        id bigserial primary key,
        top_up_id uuid not null references top_up (id),
        from_status text,
        to_status text not null,
        -- what moved it: the create call, a gateway event id, a poll, a card session
        cause text not null,
        at timestamptz not null default now()
      )`);
    this.addSql(`create index top_up_history_idx on top_up_history (top_up_id, id)`);
    this.addSql(`
      create table gateway_event (
        id text primary key,
        type text not null,
        object_id text,
        outcome text not null,
        received_at timestamptz not null default now()
      )`);
    this.addSql(`
      create table card_auto_top_up (
        card_id uuid primary key references card (id),
        holder_id uuid not null references cardholder (id),
        threshold bigint not null check (threshold >= 0),
        amount bigint not null check (amount > 0),
        payment_method text not null check (length(payment_method) between 1 and 200),
        enabled boolean not null default true,
        updated_by_client text not null,
        updated_at timestamptz not null default now(),
        last_triggered_at timestamptz
      )`);
    this.addSql(`
      create table event_outbox (
        id bigserial primary key,
        type text not null,
        -- whose endpoints receive it: a merchant, biller or card company (ISSUER)
        owner_kind text not null check (owner_kind in ('MERCHANT','BILLER','ISSUER','OPERATOR')),
        owner_id uuid,
        subject_id text not null,
        payload jsonb not null,
        created_at timestamptz not null default now()
      )`);
    this.addSql(`create index event_outbox_owner_idx on event_outbox (owner_kind, owner_id, id)`);
  }
}

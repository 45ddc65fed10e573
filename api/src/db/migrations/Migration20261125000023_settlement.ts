import { Migration } from '@mikro-orm/migrations';

/**
 * Clearing and settlement (issue 8): every settleable money movement leaves a clearing item in
 * the transaction that posts it; a window per city and business day takes the items when it
 * closes; clearing turns a closed window into a batch of lines (one per participant), interchange
 * positions between card companies, one ledger entry and payout instructions; reconciliation
 * compares the gateway's balance transactions with ours.
 */
export class Migration20261125000023_settlement extends Migration {
  override name = 'Migration20261125000023_settlement';

  override up(): void {
    // A card company pays the operator's fee on its own transit revenue by a plan, like merchants.
    this.addSql(`alter table card_company add column fee_plan_id uuid references fee_plan (id)`);
    // The gateway's charge behind a paid top-up: what its balance transaction names.
    this.addSql(`alter table top_up add column gateway_charge_id text`);
    this.addSql(`
      create table settlement_window (
        id uuid primary key,
        city_id uuid not null references city (id),
        business_day date not null,
        currency char(3) not null,
        status text not null check (status in ('OPEN','CLOSED','CLEARED','SETTLED')),
        -- when the cut-off job closes it (the next local day at the configured time)
        cutoff_at timestamptz not null,
        closed_at timestamptz,
        closed_by text,
        cleared_at timestamptz,
        settled_at timestamptz,
        created_at timestamptz not null default now(),
        unique (city_id, business_day),
        check ((status = 'OPEN') = (closed_at is null))
      )`);
    this.addSql(`
      create table clearing_item (
        id bigint generated always as identity primary key,
        -- the city where it happened: the participant's (merchant, biller, terminal owner, card's issuer for top-ups)
        city_id uuid not null references city (id),
        -- the local date of occurred_at in that city: the window it belongs to, unless that one had closed
        business_day date not null,
        window_id uuid references settlement_window (id),
        kind text not null check (kind in ('PAYMENT','PURCHASE','BILL_PAYMENT','TRANSIT','REFUND','TOP_UP','TOP_UP_REFUND','TOP_UP_REFUND_FAILED')),
        participant_kind text not null check (participant_kind in ('MERCHANT','BILLER','CARD_COMPANY')),
        participant_id uuid not null,
        -- the card's issuer: interchange when it is not the city's card company
        card_company_id uuid references card_company (id),
        amount bigint not null check (amount > 0),
        currency char(3) not null,
        occurred_at timestamptz not null,
        recorded_at timestamptz not null default clock_timestamp(),
        -- the ledger entry this item mirrors: one item per entry
        entry_key text not null unique,
        -- the business object (payment, bill payment, top-up, refund) and the gateway's id when there is one
        reference text not null,
        gateway_reference text
      )`);
    this.addSql(`create index clearing_item_unassigned_idx on clearing_item (city_id, business_day) where window_id is null`);
    this.addSql(`create index clearing_item_window_idx on clearing_item (window_id, participant_kind, participant_id)`);
    this.addSql(`create index clearing_item_gateway_idx on clearing_item (gateway_reference) where gateway_reference is not null`);
    this.addSql(`
      create table settlement_batch (
        id uuid primary key,
        window_id uuid not null unique references settlement_window (id),
        currency char(3) not null,
        status text not null check (status in ('PAYING','SETTLED')),
        item_count bigint not null,
        gross bigint not null,
        refunds bigint not null,
        fees bigint not null,
        net bigint not null,
        payout_total bigint not null,
        top_ups bigint not null,
        top_up_refunds bigint not null,
        journal_entry_id uuid references journal_entry (id),
        created_at timestamptz not null default now(),
        settled_at timestamptz
      )`);
    this.addSql(`
      create table settlement_line (
        id uuid primary key,
        batch_id uuid not null references settlement_batch (id),
        participant_kind text not null check (participant_kind in ('MERCHANT','BILLER','CARD_COMPANY')),
        participant_id uuid not null,
        participant_name text not null,
        currency char(3) not null,
        fee_plan_id uuid references fee_plan (id),
        sales_count bigint not null,
        refund_count bigint not null,
        gross bigint not null,
        refunds bigint not null,
        fees bigint not null,
        -- gross - refunds - fees
        net bigint not null,
        -- what earlier windows left: negative dues and failed payouts
        carried_in bigint not null,
        -- net + carried_in; paid out when positive, carried to the next window otherwise
        due bigint not null,
        payout_amount bigint not null check (payout_amount >= 0),
        status text not null check (status in ('PAYING','PAID','PAYOUT_FAILED','CARRIED_FORWARD','NOTHING_DUE')),
        carried_into uuid references settlement_line (id),
        top_up_count bigint not null default 0,
        top_ups bigint not null default 0,
        top_up_refunds bigint not null default 0,
        created_at timestamptz not null default now(),
        unique (batch_id, participant_kind, participant_id),
        check (due = net + carried_in),
        check (net = gross - refunds - fees)
      )`);
    this.addSql(`create index settlement_line_participant_idx on settlement_line (participant_kind, participant_id, created_at)`);
    this.addSql(`create index settlement_line_outstanding_idx on settlement_line (participant_kind, participant_id) where status in ('CARRIED_FORWARD','PAYOUT_FAILED') and carried_into is null`);
    this.addSql(`
      create table interchange_position (
        batch_id uuid not null references settlement_batch (id),
        -- the card's issuer owes the card company of the city where the card was used
        issuer_id uuid not null references card_company (id),
        acquirer_id uuid not null references card_company (id),
        currency char(3) not null,
        count bigint not null,
        gross bigint not null,
        refunds bigint not null,
        net bigint not null,
        primary key (batch_id, issuer_id, acquirer_id),
        check (issuer_id <> acquirer_id)
      )`);
    this.addSql(`
      create table settlement_payout (
        id uuid primary key,
        line_id uuid not null unique references settlement_line (id),
        amount bigint not null check (amount > 0),
        currency char(3) not null,
        status text not null check (status in ('PENDING','SENT','PAID','FAILED')),
        gateway_payout_id text unique,
        failure_code text,
        attempts integer not null default 0,
        next_attempt_at timestamptz not null default now(),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`create index settlement_payout_open_idx on settlement_payout (status, next_attempt_at) where status in ('PENDING','SENT')`);
    this.addSql(`
      create table gateway_balance_transaction (
        id text primary key,
        type text not null,
        source text not null,
        amount bigint not null,
        fee bigint not null,
        net bigint not null,
        currency char(3) not null,
        created timestamptz not null,
        imported_at timestamptz not null default now()
      )`);
    this.addSql(`create index gateway_balance_transaction_source_idx on gateway_balance_transaction (source)`);
    this.addSql(`
      create table reconciliation_difference (
        id uuid primary key,
        window_id uuid not null references settlement_window (id),
        kind text not null check (kind in ('OURS_ONLY','THEIRS_ONLY','AMOUNT_DIFFERS')),
        -- the gateway object (charge, refund, payout) both sides name
        gateway_reference text not null,
        our_reference text,
        our_amount bigint,
        gateway_amount bigint,
        currency char(3) not null,
        status text not null check (status in ('OPEN','RESOLVED','MATCHED_LATER')),
        note text,
        resolved_by text,
        resolved_at timestamptz,
        created_at timestamptz not null default now(),
        unique (window_id, gateway_reference)
      )`);
    this.addSql(`
      create table reconciliation_run (
        id uuid primary key,
        window_id uuid not null references settlement_window (id),
        gateway_count integer not null,
        our_count integer not null,
        matched integer not null,
        differences integer not null,
        ran_at timestamptz not null default now()
      )`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * `clearing_item` partitioned by business day, one partition a month (issue 23, item 3; docs/scaling.md
 * "Partitions"): a month of a large city is ~360M items, and a month is what the retention path
 * detaches and archives whole. The rows already there move over with their ids.
 *
 * A partitioned table's unique keys must hold its partition key: the primary key becomes
 * (id, business_day) and `entry_key` unique per business day. An entry's items are written with its
 * ledger entry, whose key is unique over the whole ledger, and every insert also asks that no
 * partition holds the key (settlement/clearing-items.ts), so one item per entry still holds.
 *
 * Partitions: every month the moved rows touch, this month and the next three (the job keeps three
 * ahead: jobs/partitions-ahead.ts), and a default partition that takes a row whose month has none, so
 * a booking never fails on a missing partition; the job moves such rows into their month.
 */
export class Migration20261207002300_clearing_item_partitions extends Migration {
  override name = 'Migration20261207002300_clearing_item_partitions';

  override up(): void {
    this.addSql(`alter table clearing_item rename to clearing_item_unpartitioned`);
    this.addSql(`alter index clearing_item_unassigned_idx rename to clearing_item_unpartitioned_unassigned_idx`);
    this.addSql(`alter index clearing_item_window_idx rename to clearing_item_unpartitioned_window_idx`);
    this.addSql(`alter index clearing_item_gateway_idx rename to clearing_item_unpartitioned_gateway_idx`);
    this.addSql(`alter table clearing_item_unpartitioned rename constraint clearing_item_pkey to clearing_item_unpartitioned_pkey`);
    this.addSql(`alter table clearing_item_unpartitioned rename constraint clearing_item_entry_key_key to clearing_item_unpartitioned_entry_key_key`);
    this.addSql(`alter sequence clearing_item_id_seq rename to clearing_item_unpartitioned_id_seq`);
    this.addSql(`
      create table clearing_item (
        id bigint generated always as identity,
        -- the city where it happened: the participant's (merchant, biller, terminal owner, card's issuer for top-ups)
        city_id uuid not null references city (id),
        -- the local date of occurred_at in that city: the window it belongs to, unless that one had closed; the partition key
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
        -- the ledger entry this item mirrors: one item per entry (unique per day here; the ledger's key is unique everywhere)
        entry_key text not null,
        -- the business object (payment, bill payment, top-up, refund) and the gateway's id when there is one
        reference text not null,
        gateway_reference text,
        primary key (id, business_day),
        unique (entry_key, business_day)
      ) partition by range (business_day)`);
    this.addSql(`create index clearing_item_unassigned_idx on clearing_item (city_id, business_day) where window_id is null`);
    this.addSql(`create index clearing_item_window_idx on clearing_item (window_id, participant_kind, participant_id)`);
    this.addSql(`create index clearing_item_gateway_idx on clearing_item (gateway_reference) where gateway_reference is not null`);
    this.addSql(`create table clearing_item_default partition of clearing_item default`);
    // One partition per month, clearing_item_yYYYYmMM: the moved rows' months, this one and three ahead.
    this.addSql(`
      do $$
      declare m date;
      begin
        for m in
          select distinct date_trunc('month', d)::date from (
            select business_day as d from clearing_item_unpartitioned
            union all select (date_trunc('month', current_date) + make_interval(months => k))::date from generate_series(0, 3) k
          ) months order by 1
        loop
          execute format('create table if not exists %I partition of clearing_item for values from (%L) to (%L)', 'clearing_item_' || to_char(m, '"y"YYYY"m"MM'), m, (m + interval '1 month')::date);
        end loop;
      end $$`);
    this.addSql(`insert into clearing_item overriding system value select * from clearing_item_unpartitioned`);
    this.addSql(`select setval(pg_get_serial_sequence('clearing_item', 'id'), coalesce((select max(id) from clearing_item), 0) + 1, false)`);
    this.addSql(`drop table clearing_item_unpartitioned`);
    this.addSql(`analyze clearing_item`);
  }
}

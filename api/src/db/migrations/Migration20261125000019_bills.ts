import { Migration } from '@mikro-orm/migrations';

/**
 * Utility bills (公用事业缴费): what billers publish (one by one, in bulk, by CSV, or answered live
 * from their fetch URL), the record of each CSV import, and the payments of bills from card purses.
 * docs/billers.md describes the rules; api/src/bills/ holds the code.
 */
export class Migration20261125000019_bills extends Migration {
  override name = 'Migration20261125000019_bills';

  override up(): void {
    // Live look-up: the biller's fetch URL and the secret OneCard signs its requests with (sealed
    // with the key-encryption key, like webhook secrets). Enabled only with both.
    this.addSql(`
      alter table biller
        add column fetch_url text check (fetch_url is null or length(fetch_url) <= 2048),
        add column fetch_secret_sealed text,
        add column fetch_enabled boolean not null default false,
        add constraint biller_fetch_check check (not fetch_enabled or (fetch_url is not null and fetch_secret_sealed is not null)),
        -- the target of bill's (biller, currency) key: a bill is in its biller's city currency
        add constraint biller_id_currency_key unique (id, currency)`);

    // A late fee rule, checked again by the database (the code validates it first, bills/late-fee.ts):
    // {"kind":"NONE"} | {"kind":"FIXED","amount":N} | {"kind":"DAILY_BASIS_POINTS","basisPoints":N,"cap":N}.
    // CASE keeps each cast behind the test that makes it safe.
    this.addSql(`
      create function bill_late_fee_is_valid(rule jsonb) returns boolean language sql immutable as $fn$
        select case
          when jsonb_typeof(rule) is distinct from 'object' then false
          when rule->>'kind' = 'NONE' then rule = '{"kind":"NONE"}'::jsonb
          when rule->>'kind' = 'FIXED' then
            case when rule - 'kind' - 'amount' = '{}'::jsonb and jsonb_typeof(rule->'amount') = 'number' and (rule->>'amount') ~ '^[1-9][0-9]{0,14}$'
                 then true else false end
          when rule->>'kind' = 'DAILY_BASIS_POINTS' then
            case when rule - 'kind' - 'basisPoints' - 'cap' = '{}'::jsonb
                  and jsonb_typeof(rule->'basisPoints') = 'number' and (rule->>'basisPoints') ~ '^[1-9][0-9]{0,4}$'
                  and jsonb_typeof(rule->'cap') = 'number' and (rule->>'cap') ~ '^[1-9][0-9]{0,14}$'
                 then (rule->>'basisPoints')::int <= 10000 else false end
          else false
        end
      $fn$`);

    this.addSql(`
      create table bill (
        id uuid primary key,
        biller_id uuid not null,
        currency char(3) not null,
        account_number text not null check (length(account_number) between 1 and 64),
        period text not null check (length(period) between 1 and 32),
        amount_due bigint not null check (amount_due > 0),
        due_date date not null,
        late_fee jsonb not null default '{"kind":"NONE"}' check (bill_late_fee_is_valid(late_fee)),
        allow_partial boolean not null default false,
        biller_reference text not null check (length(biller_reference) between 1 and 64),
        status text not null default 'OPEN' check (status in ('OPEN','PAID','WITHDRAWN')),
        -- what payments have paid; at most amount due + late fee (owed), which the paying code checks
        amount_paid bigint not null default 0 check (amount_paid >= 0),
        version integer not null default 1 check (version >= 1),
        source text not null check (source in ('PUBLISHED','FETCHED')),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        paid_at timestamptz,
        withdrawn_at timestamptz,
        constraint bill_biller_fk foreign key (biller_id, currency) references biller (id, currency),
        constraint bill_biller_reference_key unique (biller_id, biller_reference),
        -- the target of bill_payment's (bill, biller) key
        constraint bill_id_biller_key unique (id, biller_id),
        check ((status = 'PAID') = (paid_at is not null)),
        check ((status = 'WITHDRAWN') = (withdrawn_at is not null)),
        check (status <> 'WITHDRAWN' or amount_paid = 0)
      )`);
    // An app asks for the OPEN bills of an account; the biller lists its bills newest first.
    this.addSql(`create index bill_account_idx on bill (biller_id, account_number, status)`);
    this.addSql(`create index bill_biller_created_idx on bill (biller_id, created_at desc, id desc)`);

    this.addSql(`
      create table bill_import (
        id uuid primary key,
        biller_id uuid not null references biller (id),
        file_name text not null check (length(file_name) between 1 and 255),
        status text not null check (status in ('IMPORTED','REFUSED')),
        -- data rows read (0 when the file itself was refused), bills imported, rows refused
        row_count integer not null check (row_count >= 0),
        accepted integer not null check (accepted >= 0),
        refused integer not null check (refused >= 0),
        -- {"refusals": [{"row", "field", "code", "message"}…], "truncated": <refusals not listed>}
        report jsonb not null,
        created_by_client text not null,
        created_at timestamptz not null default now(),
        -- all or nothing: an import either took every row or none
        check (status <> 'IMPORTED' or (refused = 0 and accepted = row_count)),
        check (status <> 'REFUSED' or accepted = 0)
      )`);
    this.addSql(`create index bill_import_biller_idx on bill_import (biller_id, created_at desc, id desc)`);

    // Paying a bill from a card purse (through a card session, like a merchant payment).
    this.addSql(`
      create table bill_payment (
        id uuid primary key,
        bill_id uuid not null,
        biller_id uuid not null,
        amount bigint not null check (amount > 0),
        currency char(3) not null,
        status text not null check (status in ('REQUIRES_CARD','PROCESSING','SUCCEEDED','CANCELED','FAILED')),
        card_session_id uuid references card_session (id),
        card_claim jsonb,
        card_id uuid references card (id),
        card_asn text,
        holder_id uuid,
        created_by_client text not null,
        receipt_number text unique,
        -- the biller's city day when it was paid: the reconciliation day
        business_day date,
        attempts integer not null default 0 check (attempts >= 0),
        failure_code text,
        expires_at timestamptz not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        paid_at timestamptz,
        canceled_at timestamptz,
        constraint bill_payment_bill_fk foreign key (bill_id, biller_id) references bill (id, biller_id),
        constraint bill_payment_biller_fk foreign key (biller_id, currency) references biller (id, currency)
      )`);
    this.addSql(`create index bill_payment_biller_day_idx on bill_payment (biller_id, business_day)`);
    this.addSql(`create index bill_payment_bill_idx on bill_payment (bill_id)`);
    // At most one payment of a bill waiting for or taking a card: two at once never both pay.
    this.addSql(`create unique index bill_payment_live_idx on bill_payment (bill_id) where status in ('REQUIRES_CARD','PROCESSING')`);
    this.addSql(`create index bill_payment_open_idx on bill_payment (expires_at) where status in ('REQUIRES_CARD','PROCESSING')`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/** The double-entry ledger (DESIGN.md §3). */
export class Migration20261125000001_ledger extends Migration {
  override name = 'Migration20261125000001_ledger';

  override up(): void {
    this.addSql(`
      create table ledger_account (
        id uuid primary key,
        code text not null unique,
        type text not null check (type in ('ASSET','LIABILITY','REVENUE','EXPENSE','EQUITY')),
        owner_kind text not null,
        owner_id text,
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        non_negative boolean not null default false,
        balance bigint not null default 0,
        created_at timestamptz not null default now(),
        -- the backstop behind post()'s guarded update
        constraint ledger_account_non_negative check (not non_negative or balance >= 0),
        unique (id, currency)
      )`);
    this.addSql(`create index ledger_account_owner_idx on ledger_account (owner_kind, owner_id)`);
    this.addSql(`
      create table journal_entry (
        id uuid primary key,
        entry_key text not null unique,
        description text not null,
        posted_at timestamptz not null default clock_timestamp(),
        reverses_id uuid unique references journal_entry (id),
        metadata jsonb not null default '{}'
      )`);
    this.addSql(`create index journal_entry_posted_at_idx on journal_entry (posted_at, id)`);
    this.addSql(`
      create table posting (
        id bigint generated always as identity primary key,
        entry_id uuid not null references journal_entry (id),
        line_no integer not null,
        account_id uuid not null,
        amount bigint not null check (amount <> 0),
        currency char(3) not null,
        -- a posting is always in its account's currency
        foreign key (account_id, currency) references ledger_account (id, currency),
        balance_after bigint not null,
        unique (entry_id, line_no)
      )`);
    this.addSql(`create index posting_account_idx on posting (account_id, id)`);
    // Posted entries are never changed or deleted (DESIGN.md §3): corrections are reversals.
    this.addSql(`
      create function ledger_refuse_change() returns trigger language plpgsql as $$
      begin
        raise exception 'ledger rows are append-only: % on % refused', tg_op, tg_table_name;
      end $$`);
    this.addSql(`create trigger journal_entry_append_only before update or delete on journal_entry
      for each row execute function ledger_refuse_change()`);
    this.addSql(`create trigger posting_append_only before update or delete on posting
      for each row execute function ledger_refuse_change()`);
    this.addSql(`create trigger journal_entry_no_truncate before truncate on journal_entry
      for each statement execute function ledger_refuse_change()`);
    this.addSql(`create trigger posting_no_truncate before truncate on posting
      for each statement execute function ledger_refuse_change()`);
  }
}

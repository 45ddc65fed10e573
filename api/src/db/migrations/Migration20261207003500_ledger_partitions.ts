import { Migration } from '@mikro-orm/migrations';

/**
 * The ledger's `journal_entry` and `posting` partitioned by month of `posted_at` in UTC (issue 23,
 * item 3; docs/scaling.md "Partitions and retention"), so that a month can be archived once its
 * balances are carried forward (`ledger_opening`). The rows already there move over with their ids.
 *
 * A partitioned table's unique keys must hold its partition key, and `(entry_key, posted_at)` would
 * never see a replay: `entry_key` stays unique over the whole ledger in `journal_entry_key`, narrow
 * and unpartitioned, which post() writes in the entry's own statement. It also carries what refers
 * to an entry by id alone (a reversal, a card's balance transfer, a ride, a settlement batch): those
 * references stay valid once the entry's month is archived, because the key row never leaves.
 *
 * `posting` gets its entry's `posted_at`, so an entry and its postings are in the same month and
 * leave together. Partitions: every month the moved rows touch, this month and the next three, and a
 * default partition that takes a row whose month has none (the job keeps three ahead).
 */
export class Migration20261207003500_ledger_partitions extends Migration {
  override name = 'Migration20261207003500_ledger_partitions';

  override up(): void {
    this.addSql(`
      create table journal_entry_key (
        entry_key text primary key,
        entry_id uuid not null unique,
        -- the entry's, exactly: the partition that holds it (journal_entry and posting, by month in UTC)
        posted_at timestamptz not null default clock_timestamp(),
        -- an entry is reversed at most once (the unique index below)
        reverses_id uuid references journal_entry_key (entry_id)
      )`);
    this.addSql(`create unique index journal_entry_key_reverses_idx on journal_entry_key (reverses_id) where reverses_id is not null`);
    this.addSql(`insert into journal_entry_key (entry_key, entry_id, posted_at, reverses_id) select entry_key, id, posted_at, reverses_id from journal_entry order by posted_at, id`);

    // What refers to an entry by its id alone refers to its key row instead (every such foreign key
    // but the ledger's own, which go with the old tables).
    this.addSql(`
      do $$
      declare fk record;
      begin
        for fk in
          select c.conname, c.conrelid::regclass as tab, a.attname as col
            from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
           where c.contype = 'f' and c.confrelid = 'journal_entry'::regclass and c.conrelid not in ('journal_entry'::regclass, 'posting'::regclass)
        loop
          execute format('alter table %s drop constraint %I', fk.tab, fk.conname);
          execute format('alter table %s add constraint %I foreign key (%I) references journal_entry_key (entry_id)', fk.tab, fk.conname, fk.col);
        end loop;
      end $$`);

    this.addSql(`alter table posting rename to posting_unpartitioned`);
    this.addSql(`alter table journal_entry rename to journal_entry_unpartitioned`);
    this.addSql(`alter index journal_entry_posted_at_idx rename to journal_entry_unpartitioned_posted_at_idx`);
    this.addSql(`alter index journal_entry_payment_idx rename to journal_entry_unpartitioned_payment_idx`);
    this.addSql(`alter index posting_account_idx rename to posting_unpartitioned_account_idx`);
    this.addSql(`alter table journal_entry_unpartitioned rename constraint journal_entry_pkey to journal_entry_unpartitioned_pkey`);
    this.addSql(`alter table posting_unpartitioned rename constraint posting_pkey to posting_unpartitioned_pkey`);
    this.addSql(`alter sequence posting_id_seq rename to posting_unpartitioned_id_seq`);

    this.addSql(`
      create table journal_entry (
        id uuid not null,
        -- unique over the whole ledger in journal_entry_key; here for reading
        entry_key text not null,
        description text not null,
        -- the partition key: written by the database, so every write lands in the current month
        posted_at timestamptz not null default clock_timestamp(),
        -- at most once, and only an entry that exists: journal_entry_key holds both rules
        reverses_id uuid,
        metadata jsonb not null default '{}',
        primary key (id, posted_at)
      ) partition by range (posted_at)`);
    this.addSql(`create index journal_entry_posted_at_idx on journal_entry (posted_at, id)`);
    this.addSql(`create index journal_entry_payment_idx on journal_entry ((metadata->>'payment')) where metadata ? 'payment'`);
    this.addSql(`
      create table posting (
        id bigint generated always as identity,
        entry_id uuid not null,
        line_no integer not null,
        account_id uuid not null,
        amount bigint not null check (amount <> 0),
        currency char(3) not null,
        balance_after bigint not null,
        -- its entry's posted_at: the same month, so the two leave together
        posted_at timestamptz not null,
        primary key (id, posted_at),
        unique (entry_id, line_no, posted_at),
        -- a posting is always in its account's currency
        foreign key (account_id, currency) references ledger_account (id, currency),
        foreign key (entry_id, posted_at) references journal_entry (id, posted_at)
      ) partition by range (posted_at)`);
    this.addSql(`create index posting_account_idx on posting (account_id, id)`);

    // Posted entries are never changed or deleted (DESIGN.md §3); nor are their keys.
    for (const table of ['journal_entry', 'posting', 'journal_entry_key']) {
      this.addSql(`create trigger ${table}_append_only before update or delete on ${table} for each row execute function ledger_refuse_change()`);
      this.addSql(`create trigger ${table}_no_truncate before truncate on ${table} for each statement execute function ledger_refuse_change()`);
    }

    this.addSql(`create table journal_entry_default partition of journal_entry default`);
    this.addSql(`create table posting_default partition of posting default`);
    // One partition per month and table, journal_entry_yYYYYmMM and posting_yYYYYmMM, bounded in UTC.
    this.addSql(`
      do $$
      declare m timestamp;
      begin
        for m in
          select distinct date_trunc('month', d) from (
            select posted_at at time zone 'UTC' as d from journal_entry_unpartitioned
            union all select date_trunc('month', now() at time zone 'UTC') + make_interval(months => k) from generate_series(0, 3) k
          ) months order by 1
        loop
          execute format('create table %I partition of journal_entry for values from (%L) to (%L)', 'journal_entry_' || to_char(m, '"y"YYYY"m"MM'), m::text || '+00', (m + interval '1 month')::text || '+00');
          execute format('create table %I partition of posting for values from (%L) to (%L)', 'posting_' || to_char(m, '"y"YYYY"m"MM'), m::text || '+00', (m + interval '1 month')::text || '+00');
        end loop;
      end $$`);

    this.addSql(`insert into journal_entry (id, entry_key, description, posted_at, reverses_id, metadata) select id, entry_key, description, posted_at, reverses_id, metadata from journal_entry_unpartitioned`);
    this.addSql(`
      insert into posting (id, entry_id, line_no, account_id, amount, currency, balance_after, posted_at) overriding system value
      select p.id, p.entry_id, p.line_no, p.account_id, p.amount, p.currency, p.balance_after, e.posted_at
        from posting_unpartitioned p join journal_entry_unpartitioned e on e.id = p.entry_id`);
    this.addSql(`select setval(pg_get_serial_sequence('posting', 'id'), coalesce((select max(id) from posting), 0) + 1, false)`);
    this.addSql(`drop table posting_unpartitioned`);
    this.addSql(`drop table journal_entry_unpartitioned`);

    // The carry-forward: what an archived month leaves behind (ledger/ledger-archive.ts).
    this.addSql(`
      create table ledger_opening (
        -- the first month still kept (its first day, UTC)
        month date not null check (extract(day from month) = 1),
        account_id uuid not null references ledger_account (id),
        -- the sum of the account's postings before that month, debits positive (as posting.amount)
        balance bigint not null,
        primary key (month, account_id)
      )`);
    this.addSql(`create trigger ledger_opening_append_only before update or delete on ledger_opening for each row execute function ledger_refuse_change()`);
    this.addSql(`analyze journal_entry`);
    this.addSql(`analyze posting`);
  }
}

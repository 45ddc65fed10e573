import { Migration } from '@mikro-orm/migrations';

/**
 * Reconciliation with the gateway (issue 8, part 4): which window took a balance transaction no
 * item of ours names (so two cities with the same business day do not both list it), when a
 * difference last changed, a resolved difference always carries its note, and what each run found.
 */
export class Migration20261125000024_reconciliation extends Migration {
  override name = 'Migration20261125000024_reconciliation';

  override up(): void {
    // Only for transactions whose source no clearing item or payout names: a named one belongs to the window of what names it.
    this.addSql(`alter table gateway_balance_transaction add column claimed_by_window uuid references settlement_window (id)`);
    this.addSql(`create index gateway_balance_transaction_created_idx on gateway_balance_transaction (created)`);
    this.addSql(`alter table reconciliation_difference add column updated_at timestamptz not null default now()`);
    this.addSql(
      `alter table reconciliation_difference add constraint reconciliation_difference_resolved_check
         check (status <> 'RESOLVED' or (note is not null and resolved_by is not null and resolved_at is not null))`,
    );
    this.addSql(`create index reconciliation_difference_page_idx on reconciliation_difference (window_id, created_at, id)`);
    this.addSql(`create index reconciliation_difference_open_idx on reconciliation_difference (gateway_reference) where status = 'OPEN'`);
    this.addSql(`
      alter table reconciliation_run
        add column currency char(3),
        add column imported integer not null default 0,
        add column open_differences integer not null default 0,
        add column gateway_fees bigint not null default 0`);
    this.addSql(`create index reconciliation_run_window_idx on reconciliation_run (window_id, ran_at)`);
  }
}

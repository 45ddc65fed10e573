import { Migration } from '@mikro-orm/migrations';

/** What a card said its purse holds, whenever that differs from the ledger's shadow of it. */
export class Migration20261125000012_balance_discrepancies extends Migration {
  override name = 'Migration20261125000012_balance_discrepancies';

  override up(): void {
    this.addSql(`
      create table card_balance_discrepancy (
        id bigint generated always as identity primary key,
        card_asn text not null,
        session_id uuid not null references card_session (id),
        currency char(3) not null,
        card_balance bigint not null,
        shadow_balance bigint not null,
        observed_at timestamptz not null default now(),
        resolved_at timestamptz,
        resolution_note text,
        check (card_balance <> shadow_balance)
      )`);
    this.addSql(`create index card_balance_discrepancy_open_idx on card_balance_discrepancy (card_asn) where resolved_at is null`);
  }
}

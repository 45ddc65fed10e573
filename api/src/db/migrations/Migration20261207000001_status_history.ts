import { Migration } from '@mikro-orm/migrations';

/**
 * One history row per status move of every lifecycle that keeps no history of its own
 * (lifecycle/machine.ts): which machine, which row, from what to what, why, when. Cards and top-ups
 * keep theirs (card_status_history, top_up_history), card sessions their audit.
 */
export class Migration20261207000001_status_history extends Migration {
  override name = 'Migration20261207000001_status_history';

  override up(): void {
    this.addSql(`
      create table status_history (
        id bigserial primary key,
        -- the machine's name (lifecycle/machines), e.g. 'payment', 'settlement_payout'
        machine text not null,
        row_id text not null,
        from_status text not null,
        to_status text not null,
        -- what moved it: the operation, job or event (free text, for a reader of the trail)
        cause text,
        at timestamptz not null default now()
      )`);
    this.addSql(`create index status_history_row_idx on status_history (machine, row_id, id)`);
  }
}

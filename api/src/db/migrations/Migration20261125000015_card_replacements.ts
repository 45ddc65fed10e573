import { Migration } from '@mikro-orm/migrations';

/**
 * Card replacement (补卡): the old card's purse shadow moves to its replacement only after a wait,
 * because offline transactions made with the old card before the blacklist reached every terminal
 * keep arriving for days. One row per replacement: written with the replacement, finished (amount
 * and transferred_at) by the balance transfer job.
 */
export class Migration20261125000015_card_replacements extends Migration {
  override name = 'Migration20261125000015_card_replacements';

  override up(): void {
    this.addSql(`
      create table card_balance_transfer (
        id uuid primary key,
        -- a card is replaced once, and a replacement card replaces exactly one card
        from_card_id uuid not null unique references card (id),
        to_card_id uuid not null unique references card (id),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        due_at timestamptz not null,
        created_at timestamptz not null default now(),
        transferred_at timestamptz,
        -- what moved, in minor units; 0 when the old purse was empty (and nothing was posted)
        amount bigint check (amount >= 0),
        journal_entry_id uuid references journal_entry (id),
        check (from_card_id <> to_card_id),
        check ((transferred_at is null) = (amount is null)),
        check (journal_entry_id is null or amount > 0)
      )`);
    // The job's scan: due rows not yet transferred.
    this.addSql(`create index card_balance_transfer_due_idx on card_balance_transfer (due_at, id) where transferred_at is null`);
  }
}

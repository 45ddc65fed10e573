import { Migration } from '@mikro-orm/migrations';

/** Purchases (消费) through card sessions: each reader's terminal transaction serial. */
export class Migration20261125000008_purchase extends Migration {
  override name = 'Migration20261125000008_purchase';

  override up(): void {
    // The host plays the PSAM of its certified readers, so it numbers their purchases: a 4-byte
    // serial per reader that enters SESPK and the TAC (CARD-PROTOCOL.md §3). It only goes up (and
    // wraps after FFFFFFFF, as a terminal's does); a serial handed to a card is never handed out again.
    this.addSql(`
      create table reader_terminal_serial (
        reader_id uuid primary key references reader (id),
        last_serial bigint not null check (last_serial between 1 and 4294967295),
        updated_at timestamptz not null default now()
      )`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Where a terminal stands for ridership analytics (issue 25 item 3): its line and stop, and the
 * vehicle of a bus validator. A table of its own beside `reader`, set by the card company.
 */
export class Migration20261207000301_terminal_locations extends Migration {
  override name = 'Migration20261207000301_terminal_locations';

  override up(): void {
    this.addSql(`
      create table terminal_location (
        reader_id uuid primary key references reader (id),
        line text check (length(line) between 1 and 100),
        stop text check (length(stop) between 1 and 100),
        vehicle text check (length(vehicle) between 1 and 100),
        updated_at timestamptz not null default now()
      )`);
  }
}

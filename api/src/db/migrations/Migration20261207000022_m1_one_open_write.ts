import { Migration } from '@mikro-orm/migrations';

/**
 * At most one open write per M1 card. One value cannot tell two writes apart: a lost write settled
 * from a value another write produced would be booked for value the card never took. The unique
 * index is what makes two readers racing to write one card end with one write and one refusal.
 */
export class Migration20261207000022_m1_one_open_write extends Migration {
  override name = 'Migration20261207000022_m1_one_open_write';

  override up(): void {
    this.addSql(`drop index card_m1_write_open`);
    this.addSql(`create unique index card_m1_write_one_open on card_m1_write (uid) where outcome is null`);
  }

  override down(): void {
    this.addSql(`drop index card_m1_write_one_open`);
    this.addSql(`create index card_m1_write_open on card_m1_write (uid) where outcome is null`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 21: M1 cards get online value. An M1 card has no counter and no MAC, so the host keeps, per
 * write script it sends, the value the card held before and the value it must hold after; a lost
 * answer is settled from the card's value at its next session (docs/cards.md, "What an M1 card
 * proves"). `outcome` is set once (null while open): the update that sets it is the claim.
 * `m1_load_max` is the card company's limit per M1 load: what one write can put at risk.
 */
export class Migration20261207000021_m1_writes extends Migration {
  override name = 'Migration20261207000021_m1_writes';

  override up(): void {
    this.addSql(`
      create table card_m1_write (
        session_id uuid primary key references card_session (id),
        uid text not null,
        operation text not null check (operation in ('LOAD', 'PURCHASE')),
        old_value integer not null,
        new_value integer not null,
        outcome text check (outcome in ('WRITTEN', 'NOT_WRITTEN', 'UNRESOLVED')),
        settled_by uuid references card_session (id),
        settled_from text,
        created_at timestamptz not null default now(),
        settled_at timestamptz
      )`);
    this.addSql(`create index card_m1_write_open on card_m1_write (uid) where outcome is null`);
    this.addSql(`alter table card_company add column m1_load_max bigint not null default 20000 check (m1_load_max > 0)`);
  }

  override down(): void {
    this.addSql(`alter table card_company drop column m1_load_max`);
    this.addSql(`drop table card_m1_write`);
  }
}

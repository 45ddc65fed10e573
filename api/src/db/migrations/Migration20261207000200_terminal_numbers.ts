import { Migration } from '@mikro-orm/migrations';

/**
 * Each reader carries its terminal number (终端编号, 6 bytes as 12 hex digits; BCD for numbers a card
 * company registers): the terminal field of INITIALIZE FOR LOAD / PURCHASE, so it enters MAC1, MAC2
 * and every TAC (CARD-PROTOCOL.md §2, §3), unique within a city.
 *
 * Until now the number was derived from the serial (the first 6 bytes of SHA-256 of
 * `terminal:<serial>`, readers/session/terminal.ts). Existing readers keep exactly that number, so
 * the records their cards hold still match; a reader inserted without one (a registration that
 * names none) gets the same derivation from the trigger, the one place it is computed.
 */
export class Migration20261207000200_terminal_numbers extends Migration {
  override name = 'Migration20261207000200_terminal_numbers';

  override up(): void {
    this.addSql(`alter table reader add column terminal_number text`);
    this.addSql(`update reader set terminal_number = upper(substr(encode(sha256(convert_to('terminal:' || serial, 'UTF8')), 'hex'), 1, 12))`);
    this.addSql(`create function reader_derived_terminal_number() returns trigger language plpgsql as $$
      begin
        if new.terminal_number is null then
          new.terminal_number := upper(substr(encode(sha256(convert_to('terminal:' || new.serial, 'UTF8')), 'hex'), 1, 12));
        end if;
        return new;
      end $$`);
    this.addSql(`create trigger reader_terminal_number before insert on reader for each row execute function reader_derived_terminal_number()`);
    this.addSql(`alter table reader alter column terminal_number set not null,
      add constraint reader_terminal_number_format check (terminal_number ~ '^[0-9A-F]{12}$')`);
    this.addSql(`create unique index reader_city_terminal_number on reader (city_id, terminal_number)`);
  }
}

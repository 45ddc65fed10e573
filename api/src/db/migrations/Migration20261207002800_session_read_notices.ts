import { Migration } from '@mikro-orm/migrations';

/**
 * API processes keep what a card session reads and seldom changes in memory (db/noticed-cache.ts,
 * issue 20): the cities' host signing keys with their CA certificates, card profiles (with the card
 * companies of a city and the cities whose cards it takes), and card master key rows. Whatever
 * changes one of those tables, however it is written (a host key retired or created, a CA replaced,
 * a master key activated or retired, a new version, a profile set), notifies every listening
 * process at commit, and each one drops what it kept.
 */
const TABLES = ['host_signing_key', 'certificate_authority', 'card_profile', 'card_company', 'city_interoperation', 'card_master_key'];

export class Migration20261207002800_session_read_notices extends Migration {
  override name = 'Migration20261207002800_session_read_notices';

  override up(): void {
    this.addSql(`create function notify_session_read_change() returns trigger language plpgsql as $$
      begin
        perform pg_notify('onecard_session_reads', tg_table_name);
        return null;
      end $$`);
    for (const table of TABLES) {
      this.addSql(`create trigger ${table}_session_read_changed after insert or update or delete or truncate on ${table} for each statement execute function notify_session_read_change()`);
    }
  }

  override down(): void {
    for (const table of TABLES) this.addSql(`drop trigger ${table}_session_read_changed on ${table}`);
    this.addSql(`drop function notify_session_read_change()`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * The QR blocklist's sequence in commit order (docs/qr-rides.md, "The scanner"). Scanners ask for the
 * entries after the sequence they hold; a number taken at insert could commit after a higher one a
 * scanner had already read, and that entry would never reach it. The number is now given at commit,
 * by a deferred trigger under one advisory lock: a transaction takes its numbers only after every
 * earlier numbering transaction has committed, so a reader that sees number n sees all below it.
 */
export class Migration20261207002500_qr_blocklist_commit_order extends Migration {
  override name = 'Migration20261207002500_qr_blocklist_commit_order';

  override up(): void {
    this.addSql(`alter table qr_blocklist drop constraint qr_blocklist_pkey`);
    this.addSql(`alter table qr_blocklist alter column sequence drop default, alter column sequence drop not null`);
    this.addSql(`alter table qr_blocklist add primary key (credential_id)`);
    this.addSql(`create unique index qr_blocklist_sequence_uq on qr_blocklist (sequence)`);
    this.addSql(`
      create function qr_blocklist_number_at_commit() returns trigger language plpgsql as $$
      begin
        -- held until this transaction ends: numbers are handed out in commit order
        perform pg_advisory_xact_lock(hashtext('onecard.qr_blocklist.sequence'));
        update qr_blocklist set sequence = nextval('qr_blocklist_sequence_seq') where credential_id = new.credential_id and sequence is null;
        return null;
      end $$`);
    this.addSql(`
      create constraint trigger qr_blocklist_number_at_commit after insert on qr_blocklist
        deferrable initially deferred for each row execute function qr_blocklist_number_at_commit()`);
  }
}

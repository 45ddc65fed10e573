import { Migration } from '@mikro-orm/migrations';

/**
 * API processes keep verified reader chains in memory (pki/verified-leaves.ts, issue 20) and use one
 * only while its CA's and the root's `revocations` counters stand where they stood. Whatever revokes,
 * changes or deletes an issued certificate, however it is written (revokeCertificate, or plain SQL),
 * moves its issuer's counter in the same transaction, so no process keeps trusting it.
 */
export class Migration20261207000003_certificate_change_counters extends Migration {
  override name = 'Migration20261207000003_certificate_change_counters';

  override up(): void {
    this.addSql(`create function count_certificate_change() returns trigger language plpgsql as $$
      begin
        -- NEW is null for a delete.
        update certificate_authority set revocations = revocations + 1 where id = old.ca_id or id = new.ca_id;
        return null;
      end $$`);
    this.addSql(`create trigger issued_certificate_changed after update on issued_certificate for each row when (old.* is distinct from new.*) execute function count_certificate_change()`);
    this.addSql(`create trigger issued_certificate_deleted after delete on issued_certificate for each row execute function count_certificate_change()`);
  }

  override down(): void {
    this.addSql(`drop trigger issued_certificate_deleted on issued_certificate`);
    this.addSql(`drop trigger issued_certificate_changed on issued_certificate`);
    this.addSql(`drop function count_certificate_change()`);
  }
}

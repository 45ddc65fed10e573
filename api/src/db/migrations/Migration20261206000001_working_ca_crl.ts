import { Migration } from '@mikro-orm/migrations';

/**
 * A working CA's CRL is signed when its content changes (or daily) and kept, so that its thisUpdate
 * is the moment it was issued (RFC 5280 §5.1.2.4) and every process serves the same bytes.
 */
export class Migration20261206000001_working_ca_crl extends Migration {
  override name = 'Migration20261206000001_working_ca_crl';

  override up(): void {
    this.addSql(`alter table certificate_authority add column crl_this_update timestamptz, add column crl_revocations bigint`);
  }
}

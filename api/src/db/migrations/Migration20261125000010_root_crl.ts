import { Migration } from '@mikro-orm/migrations';

/** The offline root's CRL, signed on the offline machine and stored here only to be served. */
export class Migration20261125000010_root_crl extends Migration {
  override name = 'Migration20261125000010_root_crl';

  override up(): void {
    this.addSql(`alter table certificate_authority add column signed_crl bytea`);
  }
}

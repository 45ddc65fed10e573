import { Migration } from '@mikro-orm/migrations';

/**
 * Which terminals were sent which PURCHASE master key versions (issue 24 item 4), by whom and when:
 * after a terminal is lost or broken into, or a key version is retired, the card company knows
 * which keys that terminal held and which terminals still hold a version. What was sent, never the
 * keys: the package itself is not kept.
 */
export class Migration20261207000210_psam_provisioning extends Migration {
  override name = 'Migration20261207000210_psam_provisioning';

  override up(): void {
    this.addSql(`create table psam_provisioning (
      id uuid primary key,
      reader_id uuid not null references reader (id),
      card_company_id uuid not null references card_company (id),
      terminal_number text not null,
      key_versions integer[] not null check (cardinality(key_versions) > 0),
      client_id text not null,
      provisioned_at timestamptz not null default now()
    )`);
    this.addSql(`create index psam_provisioning_reader on psam_provisioning (reader_id, provisioned_at)`);
    this.addSql(`create index psam_provisioning_card_company on psam_provisioning (card_company_id, provisioned_at)`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * The host's signing key, one per city working CA: it signs every host → reader message of a card
 * session (DESIGN.md §6, both directions signed). An EC P-256 key with a server certificate from
 * the city CA; its private key is sealed with the key-encryption key, like the CAs' own. Made by the
 * seed when the city CA is, and on first use for a city CA made before this migration.
 */
export class Migration20261206000040_host_signing_keys extends Migration {
  override name = 'Migration20261206000040_host_signing_keys';

  override up(): void {
    this.addSql(`create table host_signing_key (
      ca_id text primary key references certificate_authority (id),
      certificate_serial text not null references issued_certificate (serial),
      certificate_pem text not null,
      sealed_private_key text not null,
      created_at timestamptz not null default now()
    )`);
  }
}

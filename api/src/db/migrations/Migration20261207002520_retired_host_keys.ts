import { Migration } from '@mikro-orm/migrations';

/**
 * Retired host keys, remembered (docs/qr-rides.md, "Host key rotation"). A host key is retired by
 * deleting its host_signing_key row (docs/readers.md); the QR ride credentials it signed stay in
 * phones for up to their validity, and scanners and the host must still verify them until then.
 * The trigger keeps the certificate (never the private key) and when it was retired, whichever way
 * the row goes.
 */
export class Migration20261207002520_retired_host_keys extends Migration {
  override name = 'Migration20261207002520_retired_host_keys';

  override up(): void {
    this.addSql(`
      create table retired_host_signing_key (
        certificate_serial text primary key references issued_certificate (serial),
        ca_id text not null references certificate_authority (id),
        certificate_pem text not null,
        retired_at timestamptz not null default now()
      )`);
    this.addSql(`create index retired_host_signing_key_ca_idx on retired_host_signing_key (ca_id, retired_at)`);
    this.addSql(`
      create function host_signing_key_retired() returns trigger language plpgsql as $$
      begin
        insert into retired_host_signing_key (certificate_serial, ca_id, certificate_pem) values (old.certificate_serial, old.ca_id, old.certificate_pem)
        on conflict (certificate_serial) do nothing;
        return old;
      end $$`);
    this.addSql(`create trigger host_signing_key_retired after delete on host_signing_key for each row execute function host_signing_key_retired()`);
  }
}

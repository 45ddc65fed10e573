import { Migration } from '@mikro-orm/migrations';

/** The CA hierarchy and every certificate it issued (DESIGN.md §6). The root's key is never here. */
export class Migration20261125000005_pki extends Migration {
  override name = 'Migration20261125000005_pki';

  override up(): void {
    this.addSql(`
      create table certificate_authority (
        id text primary key check (id ~ '^[a-z0-9-]{2,40}$'),
        kind text not null check (kind in ('ROOT','NATIONAL','CITY')),
        city_id uuid references city (id),
        name text not null,
        certificate_pem text not null,
        -- AES-GCM sealed with the key-encryption key; the offline root has none here
        sealed_private_key text,
        parent_id text references certificate_authority (id),
        revocations bigint not null default 0,
        created_at timestamptz not null default now(),
        check ((kind = 'CITY') = (city_id is not null)),
        check ((kind = 'ROOT') = (sealed_private_key is null)),
        check ((kind = 'ROOT') = (parent_id is null))
      )`);
    this.addSql(`create unique index certificate_authority_one_root on certificate_authority (kind) where kind in ('ROOT', 'NATIONAL')`);
    this.addSql(`create unique index certificate_authority_one_per_city on certificate_authority (city_id) where kind = 'CITY'`);
    this.addSql(`
      create table issued_certificate (
        serial text primary key check (serial ~ '^[0-9a-f]{2,40}$'),
        ca_id text not null references certificate_authority (id),
        profile text not null check (profile in ('working-ca','reader','terminal','server')),
        subject text not null,
        certificate_pem text not null,
        public_key_fingerprint text not null,
        not_before timestamptz not null,
        not_after timestamptz not null,
        status text not null default 'GOOD' check (status in ('GOOD','REVOKED')),
        revoked_at timestamptz,
        revocation_reason integer,
        created_at timestamptz not null default now(),
        check ((status = 'REVOKED') = (revoked_at is not null))
      )`);
    this.addSql(`create index issued_certificate_ca_idx on issued_certificate (ca_id, status)`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/** The registry of certified readers: two certificates (national and city) over one device key. */
export class Migration20261125000006_readers extends Migration {
  override name = 'Migration20261125000006_readers';

  override up(): void {
    this.addSql(`
      create table reader (
        id uuid primary key,
        serial text not null unique check (serial ~ '^[A-Za-z0-9._-]{3,64}$'),
        model text not null,
        owner_kind text not null check (owner_kind in ('MERCHANT','BILLER','CARD_COMPANY','CARDHOLDER')),
        owner_id uuid not null,
        city_id uuid not null references city (id),
        status text not null default 'ACTIVE' check (status in ('ACTIVE','SUSPENDED','REVOKED')),
        national_certificate_serial text not null unique references issued_certificate (serial),
        city_certificate_serial text not null unique references issued_certificate (serial),
        public_key_fingerprint text not null,
        created_at timestamptz not null default now(),
        status_changed_at timestamptz not null default now()
      )`);
    this.addSql(`create index reader_owner_idx on reader (owner_kind, owner_id)`);
    this.addSql(`create index reader_city_idx on reader (city_id)`);
  }
}

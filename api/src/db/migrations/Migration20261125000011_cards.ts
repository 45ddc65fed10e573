import { Migration } from '@mikro-orm/migrations';

/**
 * Cards issued by a city's card company, and the audit trail of their status changes. A card's
 * purse balance is not here: the host's shadow of it is a ledger account (`card.<asn>.purse.<CUR>`).
 */
export class Migration20261125000011_cards extends Migration {
  override name = 'Migration20261125000011_cards';

  override up(): void {
    this.addSql(`
      create table card (
        id uuid primary key,
        card_company_id uuid not null references card_company (id),
        card_number text not null unique check (card_number ~ '^[0-9]{16,19}$'),
        -- the application serial number the chip reports (CPU: 10 bytes), or an M1 card's 4-byte UID
        asn text not null unique,
        card_type text not null check (card_type in ('CPU','M1')),
        key_version integer not null check (key_version between 0 and 255),
        issued_on date not null,
        expires_on date not null,
        status text not null default 'ACTIVE' check (status in ('ACTIVE','LOST','BLOCKED','REPLACED','EXPIRED')),
        -- a registered card (记名卡) names its cardholder
        holder_id uuid references cardholder (id),
        concession text not null default 'ADULT' check (concession in ('ADULT','STUDENT','SENIOR')),
        concession_valid_until date,
        concession_proof text,
        replaced_by uuid references card (id),
        created_at timestamptz not null default now(),
        status_changed_at timestamptz not null default now(),
        check (expires_on > issued_on),
        check ((card_type = 'CPU' and asn ~ '^[0-9A-F]{20}$') or (card_type = 'M1' and asn ~ '^[0-9A-F]{8}$')),
        check ((concession = 'STUDENT') = (concession_valid_until is not null and concession_proof is not null)),
        check (replaced_by is null or status = 'REPLACED')
      )`);
    this.addSql(`create index card_company_number_idx on card (card_company_id, card_number)`);
    this.addSql(`create index card_holder_idx on card (holder_id, card_number) where holder_id is not null`);
    this.addSql(`
      create table card_status_history (
        id bigserial primary key,
        card_id uuid not null references card (id),
        from_status text not null,
        to_status text not null,
        reason text,
        at timestamptz not null default now(),
        -- the OAuth client that made the change
        by_client text not null
      )`);
    this.addSql(`create index card_status_history_card_idx on card_status_history (card_id, id)`);
  }
}

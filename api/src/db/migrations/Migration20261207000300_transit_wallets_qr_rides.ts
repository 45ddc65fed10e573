import { Migration } from '@mikro-orm/migrations';

/**
 * Transit wallets (交通钱包) and QR-code rides (乘车码), issue 25 items 1 and 2: an account-based
 * wallet per registered holder and card company, funded by top-ups through the gateway (a top-up
 * now targets a card or a wallet); ride credentials the card company signs; the QR blocklist that
 * scanners fetch as a delta; scanners' signed ride batches and each ride, booked once.
 */
export class Migration20261207000300_transit_wallets_qr_rides extends Migration {
  override name = 'Migration20261207000300_transit_wallets_qr_rides';

  override up(): void {
    this.addSql(`
      create table transit_wallet (
        id uuid primary key,
        holder_id uuid not null references cardholder (id),
        card_company_id uuid not null references card_company (id),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        -- how far rides may run the wallet into debt before its credentials are blocked
        debt_limit bigint not null check (debt_limit >= 0),
        created_at timestamptz not null default now(),
        unique (holder_id, card_company_id)
      )`);
    // A top-up is for a card (补登 later) or for a wallet (credited when paid): exactly one of them.
    this.addSql(`alter table top_up alter column card_id drop not null`);
    this.addSql(`alter table top_up add column wallet_id uuid references transit_wallet (id)`);
    this.addSql(`alter table top_up add constraint top_up_one_target check ((card_id is null) <> (wallet_id is null))`);
    this.addSql(`create index top_up_wallet_idx on top_up (wallet_id, created_at desc, id) where wallet_id is not null`);
    this.addSql(`
      create table qr_credential (
        id uuid primary key,
        wallet_id uuid not null references transit_wallet (id),
        -- the app's device key (P-256, uncompressed point) that signs each fresh part
        device_public_key bytea not null check (length(device_public_key) = 65),
        valid_from timestamptz not null,
        valid_until timestamptz not null check (valid_until > valid_from),
        issued_by_client text not null,
        created_at timestamptz not null default now()
      )`);
    this.addSql(`create index qr_credential_wallet_idx on qr_credential (wallet_id, valid_until)`);
    this.addSql(`
      create table qr_blocklist (
        sequence bigserial primary key,
        card_company_id uuid not null references card_company (id),
        credential_id uuid not null references qr_credential (id),
        reason text not null check (length(reason) between 1 and 500),
        blocked_at timestamptz not null default now(),
        unique (credential_id)
      )`);
    this.addSql(`create index qr_blocklist_company_idx on qr_blocklist (card_company_id, sequence)`);
    this.addSql(`
      create table qr_ride_batch (
        id uuid primary key,
        reader_id uuid not null references reader (id),
        batch_id text not null check (length(batch_id) between 1 and 100),
        body_sha256 text not null,
        received_at timestamptz not null default now(),
        answer jsonb,
        unique (reader_id, batch_id)
      )`);
    this.addSql(`
      create table qr_ride (
        id uuid primary key,
        batch_row_id uuid not null references qr_ride_batch (id),
        record_no integer not null,
        -- as the scanned code names it (null when it did not parse or its credential is unknown)
        credential_id uuid references qr_credential (id),
        counter bigint,
        -- the fresh part's time: with the counter, what makes one presentation of the code
        fresh_time timestamptz,
        scanned_at timestamptz not null,
        amount bigint not null check (amount > 0),
        outcome text not null check (outcome in ('ACCEPTED','DEBT','DUPLICATE','EXPIRED','BLOCKED','FORGED','DEBT_LIMIT_EXCEEDED')),
        reason text not null,
        journal_entry_id uuid references journal_entry (id),
        unique (batch_row_id, record_no),
        check ((outcome in ('ACCEPTED','DEBT')) = (journal_entry_id is not null))
      )`);
    // A presentation (credential + counter + fresh time) is booked once, whichever batch or scanner brings
    // it. The app chooses the counter: the same counter at another time is another ride (and a cloned app).
    this.addSql(`create unique index qr_ride_booked_uq on qr_ride (credential_id, counter, fresh_time) where outcome in ('ACCEPTED','DEBT')`);
    // issueQrCredential asks whether a wallet's ride was refused at its debt limit since its last top-up.
    this.addSql(`create index qr_ride_debt_refused_idx on qr_ride (credential_id) where outcome = 'DEBT_LIMIT_EXCEEDED'`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/** Card master keys, card sessions with their audit trail, and the counters each card has shown. */
export class Migration20261125000007_card_sessions extends Migration {
  override name = 'Migration20261125000007_card_sessions';

  override up(): void {
    // The city code cards carry in their issuer id (SFI 0x15 bytes 2–3), e.g. 5810 for Guangzhou.
    this.addSql(`alter table city add column card_city_code char(4) unique check (card_city_code ~ '^[0-9A-F]{4}$')`);
    // Which card companies accept each other's cards (互联互通), both directions listed.
    this.addSql(`
      create table city_interoperation (
        card_city_id uuid not null references city (id),
        reader_city_id uuid not null references city (id),
        primary key (card_city_id, reader_city_id)
      )`);
    this.addSql(`
      create table card_master_key (
        card_company_id uuid not null references card_company (id),
        purpose text not null check (purpose in ('LOAD','PURCHASE','TAC')),
        key_version integer not null check (key_version between 0 and 255),
        algorithm text not null check (algorithm in ('3DES','SM4')),
        sealed_key text not null,
        created_at timestamptz not null default now(),
        primary key (card_company_id, purpose, key_version)
      )`);
    this.addSql(`
      create table card_session (
        id uuid primary key,
        reader_id uuid not null references reader (id),
        operation text not null check (operation in ('BALANCE','LOAD','PURCHASE')),
        amount bigint check (amount > 0),
        state text not null check (state in ('OPEN','AUTHENTICATED','AWAITING_TAC','COMPLETED','FAILED')),
        challenge text not null,
        next_seq integer not null default 0,
        expires_at timestamptz not null,
        opened_by_client text not null,
        card_asn text,
        context jsonb not null default '{}',
        result jsonb,
        refusal text,
        created_at timestamptz not null default now(),
        finished_at timestamptz
      )`);
    this.addSql(`create index card_session_reader_idx on card_session (reader_id, created_at)`);
    this.addSql(`
      create table card_session_audit (
        id bigint generated always as identity primary key,
        session_id uuid not null references card_session (id),
        seq integer,
        step text not null,
        outcome text not null check (outcome in ('ACCEPTED','REFUSED')),
        refusal text,
        detail jsonb not null default '{}',
        at timestamptz not null default clock_timestamp()
      )`);
    this.addSql(`create index card_session_audit_session_idx on card_session_audit (session_id, id)`);
    // The highest counters each card has shown us: a lower one later means a cloned or rolled-back card.
    this.addSql(`
      create table card_counter (
        asn text primary key,
        online_counter integer not null default 0,
        offline_counter integer not null default 0,
        updated_at timestamptz not null default now()
      )`);
  }
}

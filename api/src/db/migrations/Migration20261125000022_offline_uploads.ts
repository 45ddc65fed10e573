import { Migration } from '@mikro-orm/migrations';

/**
 * Offline transit uploads (issue 8): certified terminals (registered as readers) send signed
 * batches of on-card purchases. A batch is taken once per terminal and batch id; a card's
 * purchase (ASN + offline counter) is accepted once.
 */
export class Migration20261125000022_offline_uploads extends Migration {
  override name = 'Migration20261125000022_offline_uploads';

  override up(): void {
    this.addSql(`
      create table offline_batch (
        id uuid primary key,
        reader_id uuid not null references reader (id),
        batch_id text not null check (length(batch_id) between 1 and 100),
        body_sha256 text not null,
        received_at timestamptz not null default now(),
        answer jsonb,
        unique (reader_id, batch_id)
      )`);
    this.addSql(`
      create table offline_transaction (
        id uuid primary key,
        batch_row_id uuid not null references offline_batch (id),
        record_no integer not null,
        asn text not null,
        card_city text not null,
        offline_counter integer not null check (offline_counter between 0 and 65535),
        amount bigint not null,
        terminal_serial bigint not null,
        date text not null,
        time text not null,
        tac text not null,
        outcome text not null check (outcome in ('ACCEPTED','DUPLICATE','GAP','BAD_TAC','UNKNOWN_CARD_ISSUER','REFUSED_INSUFFICIENT_SHADOW','MALFORMED')),
        reason text not null,
        journal_entry_id uuid references journal_entry (id),
        unique (batch_row_id, record_no),
        check ((outcome in ('ACCEPTED','GAP')) = (journal_entry_id is not null))
      )`);
    // A card's purchase is accepted (and posted) once, whichever batch or terminal brings it.
    this.addSql(`create unique index offline_transaction_accepted_uq on offline_transaction (asn, offline_counter) where outcome in ('ACCEPTED','GAP')`);
    this.addSql(`create index offline_transaction_asn_idx on offline_transaction (asn, offline_counter)`);
  }
}

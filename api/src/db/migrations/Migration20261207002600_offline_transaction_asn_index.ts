import { Migration } from '@mikro-orm/migrations';

/**
 * Offline uploads (issue 23): every record's row (refused and duplicate ones too) paid an entry in
 * a full index on (asn, offline_counter) that no statement reads. The reads by card — a batch's
 * highest and already accepted counters (`cardFacts`, offline-booking.ts) — ask only for booked
 * records (outcome ACCEPTED or GAP) and are index-only scans of the partial unique index
 * `offline_transaction_accepted_uq` on the same columns (EXPLAIN, docs/performance.md). Measured
 * alone, a bulk insert of rows cost 79 µs a row with it and 58 without.
 */
export class Migration20261207002600_offline_transaction_asn_index extends Migration {
  override name = 'Migration20261207002600_offline_transaction_asn_index';

  override up(): void {
    this.addSql(`drop index offline_transaction_asn_idx`);
  }

  override down(): void {
    this.addSql(`create index offline_transaction_asn_idx on offline_transaction (asn, offline_counter)`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Ridership analytics (issue 25 item 3) reads one city's booked rides of a few days out of every
 * city's and every day's: without these indexes each answer scanned both ride tables whole (the
 * plans of `npm run bench:ridership -- --explain`, docs/performance.md). Partial, on the booked
 * outcomes the statements ask for, so refused and duplicate records cost nothing to keep indexed.
 * A card fare's day is its terminal date (`YYYYMMDD` text); a QR ride's instant is its scan time.
 */
export class Migration20261207002500_ride_analytics_indexes extends Migration {
  override name = 'Migration20261207002500_ride_analytics_indexes';

  override up(): void {
    this.addSql(`create index offline_transaction_booked_date_idx on offline_transaction (date) where outcome in ('ACCEPTED', 'GAP')`);
    this.addSql(`create index qr_ride_booked_scanned_idx on qr_ride (scanned_at) where outcome in ('ACCEPTED', 'DEBT')`);
  }
}

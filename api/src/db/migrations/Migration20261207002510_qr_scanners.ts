import { Migration } from '@mikro-orm/migrations';

/**
 * QR scanners (docs/qr-rides.md, "Scanners and fare caps"): the terminals the card company of their
 * city lets upload QR rides, each with the highest fare it may charge. Any other terminal's ride
 * batch is refused whole; a ride above the cap is recorded as FARE_ABOVE_CAP and not booked.
 */
export class Migration20261207002510_qr_scanners extends Migration {
  override name = 'Migration20261207002510_qr_scanners';

  override up(): void {
    this.addSql(`
      create table qr_scanner (
        reader_id uuid primary key references reader (id),
        -- the highest fare one ride may cost on this terminal, minor units of its city's currency
        fare_cap bigint not null check (fare_cap between 1 and 100000),
        registered_by text not null,
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`alter table qr_ride drop constraint qr_ride_outcome_check`);
    this.addSql(`alter table qr_ride add constraint qr_ride_outcome_check check (outcome in ('ACCEPTED','DEBT','DUPLICATE','EXPIRED','BLOCKED','FORGED','DEBT_LIMIT_EXCEEDED','FARE_ABOVE_CAP'))`);
  }
}

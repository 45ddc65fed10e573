import { Migration } from '@mikro-orm/migrations';

/**
 * National certificates are issued by the national authority (DESIGN.md §6), not by a city card
 * company's call alone: a reader a card company registers waits with its national CSR until the
 * operator approves it (approveReaderNationalCertificate); until then it cannot open a session.
 */
export class Migration20261206000042_reader_national_approval extends Migration {
  override name = 'Migration20261206000042_reader_national_approval';

  override up(): void {
    this.addSql(`alter table reader alter column national_certificate_serial drop not null,
      add column national_csr_pem text,
      add constraint reader_national_issued_or_requested check (national_certificate_serial is not null or national_csr_pem is not null)`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Each reader certificate for its purpose (DESIGN.md §6): a reader registered from now on has three
 * key pairs, national (access: the hello), city (signs its messages) and encryption (what is sealed
 * to it, a `reader-encryption` certificate from the city CA). Readers registered before have one key
 * for everything: they are SINGLE_KEY and keep working until they re-register.
 */
export class Migration20261206000041_reader_key_pairs extends Migration {
  override name = 'Migration20261206000041_reader_key_pairs';

  override up(): void {
    this.addSql(`alter table issued_certificate drop constraint issued_certificate_profile_check`);
    this.addSql(`alter table issued_certificate add constraint issued_certificate_profile_check check (profile in ('working-ca','reader','reader-encryption','terminal','server'))`);
    this.addSql(`alter table reader add column key_scheme text not null default 'SINGLE_KEY' check (key_scheme in ('SINGLE_KEY','SEPARATE_KEYS')),
      add column encryption_certificate_serial text unique references issued_certificate (serial),
      add constraint reader_separate_keys_have_encryption check ((key_scheme = 'SEPARATE_KEYS') = (encryption_certificate_serial is not null))`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * The card blacklist terminals keep: an append-only log of ADD and REMOVE entries per ASN. Each
 * entry's version comes from one sequence; entries are written under a transaction-scoped advisory
 * lock so versions become visible in version order, and a terminal that asks for "everything after
 * version N" never skips one committed later with a lower number.
 */
export class Migration20261125000013_blacklist extends Migration {
  override name = 'Migration20261125000013_blacklist';

  override up(): void {
    this.addSql(`create sequence card_blacklist_version_seq as bigint`);
    this.addSql(`
      create table card_blacklist (
        version bigint primary key default nextval('card_blacklist_version_seq'),
        asn text not null,
        card_id uuid not null references card (id),
        card_company_id uuid not null references card_company (id),
        action text not null check (action in ('ADD','REMOVE')),
        reason text,
        at timestamptz not null default now(),
        -- the OAuth client whose card status change wrote the entry
        by_client text not null
      )`);
    this.addSql(`alter sequence card_blacklist_version_seq owned by card_blacklist.version`);
    this.addSql(`create index card_blacklist_company_version_idx on card_blacklist (card_company_id, version)`);
  }
}

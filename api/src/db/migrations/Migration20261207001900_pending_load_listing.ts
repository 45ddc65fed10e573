import { Migration } from '@mikro-orm/migrations';

/**
 * A card company's pending loads, oldest first (the `pendingLoads` query of its back office, issue
 * 26): only PAID card top-ups, few beside the rest, so a partial index keeps the list cheap.
 */
export class Migration20261207001900_pending_load_listing extends Migration {
  override name = 'Migration20261207001900_pending_load_listing';

  override up(): void {
    this.addSql(`create index top_up_pending_load_idx on top_up (card_company_id, created_at, id) where status = 'PAID' and card_id is not null`);
  }

  override down(): void {
    this.addSql(`drop index top_up_pending_load_idx`);
  }
}

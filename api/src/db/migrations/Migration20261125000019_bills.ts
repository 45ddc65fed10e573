import { Migration } from '@mikro-orm/migrations';

/** Placeholder, filled in by the change that needs it. */
export class Migration20261125000019_bills extends Migration {
  override name = 'Migration20261125000019_bills';

  override up(): void {
    this.addSql('select 1');
  }
}

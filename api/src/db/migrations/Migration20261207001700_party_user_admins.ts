import { Migration } from '@mikro-orm/migrations';

/**
 * Party users made through the API or the CLI (issue 26): an admin of a party may make the party's
 * other users; a user made with an initial password must choose their own at the first sign-in.
 */
export class Migration20261207001700_party_user_admins extends Migration {
  override name = 'Migration20261207001700_party_user_admins';

  override up(): void {
    this.addSql(`alter table party_user add column admin boolean not null default false, add column must_change_password boolean not null default false`);
  }

  override down(): void {
    this.addSql(`alter table party_user drop column admin, drop column must_change_password`);
  }
}

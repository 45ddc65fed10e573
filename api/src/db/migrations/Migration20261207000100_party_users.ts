import { Migration } from '@mikro-orm/migrations';

/**
 * The people of a merchant, biller, card company or the operator who sign in to the web console
 * (issue 26). Each belongs to one sign-in client of its party (a public client, code + PKCE): the
 * client's kind and tenant make the token's principal, exactly as for the party's back end.
 */
export class Migration20261207000100_party_users extends Migration {
  override name = 'Migration20261207000100_party_users';

  override up(): void {
    this.addSql(`create table party_user (
      id uuid primary key,
      client_id text not null references oauth_client (client_id),
      username text not null unique,
      password_hash text not null,
      display_name text not null,
      created_at timestamptz not null default now()
    )`);
  }

  override down(): void {
    this.addSql(`drop table party_user`);
  }
}

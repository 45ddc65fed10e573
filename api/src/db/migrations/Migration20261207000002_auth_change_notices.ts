import { Migration } from '@mikro-orm/migrations';

/**
 * API processes keep verified tokens' client status and revocation in memory (auth/token-status-cache.ts,
 * issue 20). Whatever changes a client or revokes a token, however it is written, notifies every
 * listening process at commit, and each one drops what it kept.
 */
export class Migration20261207000002_auth_change_notices extends Migration {
  override name = 'Migration20261207000002_auth_change_notices';

  override up(): void {
    this.addSql(`create function notify_auth_change() returns trigger language plpgsql as $$
      begin
        perform pg_notify('onecard_auth_changes', tg_table_name);
        return null;
      end $$`);
    this.addSql(`create trigger oauth_client_changed after insert or update or delete on oauth_client for each statement execute function notify_auth_change()`);
    this.addSql(`create trigger access_token_revoked after insert on revoked_access_token for each statement execute function notify_auth_change()`);
  }

  override down(): void {
    this.addSql(`drop trigger access_token_revoked on revoked_access_token`);
    this.addSql(`drop trigger oauth_client_changed on oauth_client`);
    this.addSql(`drop function notify_auth_change()`);
  }
}

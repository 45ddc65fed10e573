import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 18: back-off after failed sign-ins and client authentications (auth/throttle.ts), shared
 * by every API process. `key` is a hash of what is throttled; a row goes at `expires_at`.
 */
export class Migration20261206000001_auth_throttle extends Migration {
  override name = 'Migration20261206000001_auth_throttle';

  override up(): void {
    this.addSql(`
      create table auth_throttle (
        key text primary key,
        failures integer not null,
        last_failure_at timestamptz not null,
        blocked_until timestamptz,
        expires_at timestamptz not null
      )`);
    this.addSql(`create index auth_throttle_expires_idx on auth_throttle (expires_at)`);
  }
}

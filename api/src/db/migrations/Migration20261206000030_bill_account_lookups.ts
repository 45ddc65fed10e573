import { Migration } from '@mikro-orm/migrations';

/**
 * Bill look-ups by account number (issue 18): every look-up and binding attempt by a holder's app is
 * recorded (the audit, and the throttle's counter: distinct accounts per holder per hour); a biller
 * may let holders bind an account, after which the holder sees that account's bills in full.
 */
export class Migration20261206000030_bill_account_lookups extends Migration {
  override name = 'Migration20261206000030_bill_account_lookups';

  override up(): void {
    this.addSql(`alter table biller add column account_binding boolean not null default false`);
    this.addSql(`
      create table bill_lookup (
        id bigserial primary key,
        holder_id uuid not null references cardholder (id),
        client_id text not null,
        biller_id uuid not null references biller (id),
        account_number text not null,
        action text not null check (action in ('LOOK_UP', 'BIND')),
        -- null while the look-up runs (its row already counts against the holder's budget)
        outcome text check (outcome in ('FOUND', 'NOT_FOUND', 'THROTTLED', 'NOT_ALLOWED', 'REFUSED', 'BOUND')),
        -- the account was bound to the holder: audited, never throttled or counted
        bound boolean not null,
        at timestamptz not null default now()
      )`);
    this.addSql(`create index bill_lookup_holder_at_idx on bill_lookup (holder_id, at)`);
    this.addSql(`
      create table bill_account_binding (
        holder_id uuid not null references cardholder (id),
        biller_id uuid not null references biller (id),
        account_number text not null,
        bound_by_client text not null,
        bound_at timestamptz not null default now(),
        primary key (holder_id, biller_id, account_number)
      )`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * A paid top-up can be spent on a bill instead of being loaded onto the card (status SPENT): the
 * status check and the "paid statuses have paid_at" check are replaced to include it.
 */
export class Migration20261125000021_top_up_spent extends Migration {
  override name = 'Migration20261125000021_top_up_spent';

  override up(): void {
    // The table's unnamed checks got generated names; drop the two by what they say.
    this.addSql(`
      do $$
      declare c record;
      begin
        for c in select conname from pg_constraint
                  where conrelid = 'top_up'::regclass and contype = 'c'
                    and (pg_get_constraintdef(oid) like '%paid_at IS NOT NULL%' or pg_get_constraintdef(oid) like '%''AWAITING_PAYMENT''%')
        loop
          execute format('alter table top_up drop constraint %I', c.conname);
        end loop;
      end $$`);
    this.addSql(`alter table top_up add constraint top_up_status_check check (status in ('CREATED','AWAITING_PAYMENT','PAID','LOADED','SPENT','FAILED','CANCELED','REFUNDING','REFUNDED'))`);
    this.addSql(`alter table top_up add constraint top_up_paid_at_check check ((status in ('PAID','LOADED','SPENT','REFUNDING','REFUNDED')) = (paid_at is not null))`);
    this.addSql(`alter table top_up add column spent_on text`);
  }
}

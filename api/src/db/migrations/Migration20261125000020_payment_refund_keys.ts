import { Migration } from '@mikro-orm/migrations';

/** A refund remembers the client's idempotency key: one refund per key, whatever happens to the answer. */
export class Migration20261125000020_payment_refund_keys extends Migration {
  override name = 'Migration20261125000020_payment_refund_keys';

  override up(): void {
    this.addSql(`alter table payment_refund add column idempotency_key text`);
    this.addSql(`alter table payment_refund add constraint payment_refund_key_unique unique (payment_id, created_by_client, idempotency_key)`);
  }
}

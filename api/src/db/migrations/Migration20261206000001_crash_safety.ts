import { Migration } from '@mikro-orm/migrations';

/**
 * Crash safety (docs/api-conventions.md#idempotency, docs/operations.md):
 * - an idempotency claim names the advisory lock its API process holds for as long as it lives
 *   (`owner_lock`), so a claim whose process died is taken over at once instead of after its lease;
 * - a top-up refund remembers the idempotency key that started it (`refund_key`), so a retry of
 *   that request after a crash resumes its refund instead of refusing a REFUNDING top-up;
 * - `payment.card_asn` (the card that paid; the only link to a card the registry does not know) was
 *   never written: it is now set when a card takes the payment, and filled here from the claims.
 */
export class Migration20261206000001_crash_safety extends Migration {
  override name = 'Migration20261206000001_crash_safety';

  override up(): void {
    this.addSql(`alter table idempotency_record add column owner_lock bigint`);
    this.addSql(`alter table top_up add column refund_key text`);
    this.addSql(`update payment set card_asn = card_claim->>'cardAsn' where card_asn is null and card_claim->>'cardAsn' is not null`);
  }
}

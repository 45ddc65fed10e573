import { Migration } from '@mikro-orm/migrations';

/**
 * `payment.card_asn` is the card that paid, written when the payment succeeds; the crash-safety
 * migration also filled it from the claims of payments that were CANCELED or FAILED (a card was
 * asked, it did not pay): those are cleared. The payer (whose the order reference and refunds are)
 * is now the card's holder when it paid (`payer_holder_id`), not its holder today; payments from
 * before this are given their card's holder as it is now (the best there is).
 */
export class Migration20261206000041_payment_payer_at_success extends Migration {
  override name = 'Migration20261206000041_payment_payer_at_success';

  override up(): void {
    this.addSql(`update payment set card_asn = null where status in ('CANCELED', 'FAILED') and card_asn is not null`);
    this.addSql(`alter table payment add column payer_holder_id uuid references cardholder (id)`);
    this.addSql(`update payment p set payer_holder_id = c.holder_id from card c where c.id = p.card_id and p.status = 'SUCCEEDED'`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Merchant payments from the card wallet: a payment waits for the holder's card at a certified
 * reader (a card session), and refunds go back to the card as pending loads.
 */
export class Migration20261125000018_payments extends Migration {
  override name = 'Migration20261125000018_payments';

  override up(): void {
    this.addSql(`
      create table payment (
        id uuid primary key,
        merchant_id uuid not null references merchant (id),
        created_by_client text not null,
        amount bigint not null check (amount > 0),
        currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
        order_reference text not null check (length(order_reference) between 1 and 200),
        description text check (description is null or length(description) <= 500),
        metadata jsonb not null default '{}',
        status text not null check (status in ('REQUIRES_CARD','PROCESSING','SUCCEEDED','CANCELED','FAILED')),
        expires_at timestamptz not null,
        -- the card session paying it now (PROCESSING), and what the card said (recovery of a lost answer)
        card_session_id uuid references card_session (id),
        card_claim jsonb,
        attempts integer not null default 0,
        failure_code text,
        cancel_reason text check (cancel_reason in ('MERCHANT','EXPIRED')),
        card_id uuid references card (id),
        card_asn text,
        refunded_amount bigint not null default 0 check (refunded_amount >= 0 and refunded_amount <= amount),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now(),
        succeeded_at timestamptz,
        canceled_at timestamptz,
        check ((status = 'SUCCEEDED') = (succeeded_at is not null)),
        check ((status = 'CANCELED') = (cancel_reason is not null)),
        check (refunded_amount = 0 or status = 'SUCCEEDED')
      )`);
    // One live payment per order: a retry of a checkout cannot charge the same order twice.
    this.addSql(`create unique index payment_live_order_idx on payment (merchant_id, order_reference) where status in ('REQUIRES_CARD','PROCESSING','SUCCEEDED')`);
    this.addSql(`create index payment_merchant_idx on payment (merchant_id, created_at desc, id desc)`);
    this.addSql(`create index payment_open_idx on payment (expires_at) where status in ('REQUIRES_CARD','PROCESSING')`);
    this.addSql(`
      create table payment_refund (
        id uuid primary key,
        payment_id uuid not null references payment (id),
        amount bigint not null check (amount > 0),
        reason text check (reason is null or length(reason) <= 500),
        -- the refund goes back onto the card as a pending load (a top-up of origin REFUND)
        top_up_id uuid not null references top_up (id),
        created_by_client text not null,
        created_at timestamptz not null default now()
      )`);
    this.addSql(`create index payment_refund_payment_idx on payment_refund (payment_id, created_at)`);
    this.addSql(`alter table top_up drop constraint top_up_origin_check`);
    this.addSql(`alter table top_up add constraint top_up_origin_check check (origin in ('APP','COUNTER','AUTO','TRANSFER','REFUND'))`);
    // A payment's ledger entries are found by the payment id in their metadata.
    this.addSql(`create index journal_entry_payment_idx on journal_entry ((metadata->>'payment')) where metadata ? 'payment'`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Issue 17 item 3, no value left unbooked: a load or purchase whose answer was lost is settled at the
 * card's next session from GET TRANSACTION PROVE. One row per transaction the card proved (its TAC
 * verified) or completed, keyed by card and counter: the card does one load per online counter and
 * one purchase per offline counter, so the ledger books each once.
 */
export class Migration20261206000040_card_transaction_proofs extends Migration {
  override name = 'Migration20261206000040_card_transaction_proofs';

  override up(): void {
    this.addSql(`alter table card_session drop constraint card_session_state_check`);
    this.addSql(`alter table card_session add constraint card_session_state_check
      check (state in ('OPEN','AUTHENTICATED','AWAITING_TAC','AWAITING_PROOF','AWAITING_PURSE','AWAITING_WRITE','COMPLETED','FAILED'))`);
    // Every CPU session's first answer looks up its card's unanswered loads and purchases: only those are indexed.
    this.addSql(`create index card_session_open_claim_idx on card_session (card_asn) where card_type = 'CPU' and operation in ('LOAD', 'PURCHASE') and state <> 'COMPLETED'`);
    this.addSql(`
      create table card_load_proof (
        asn text not null,
        online_counter integer not null,
        session_id uuid not null unique references card_session (id),
        proved_by uuid not null references card_session (id),
        tac text not null,
        proved_at timestamptz not null default now(),
        primary key (asn, online_counter)
      )`);
    this.addSql(`
      create table card_purchase_proof (
        asn text not null,
        offline_counter integer not null,
        session_id uuid not null unique references card_session (id),
        proved_by uuid not null references card_session (id),
        tac text not null,
        proved_at timestamptz not null default now(),
        primary key (asn, offline_counter)
      )`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/** M1 (MIFARE Classic) cards in card sessions: their kind, their states, their master keys. */
export class Migration20261125000009_m1_sessions extends Migration {
  override name = 'Migration20261125000009_m1_sessions';

  override up(): void {
    this.addSql(`alter table card_session add column card_type text not null default 'CPU' check (card_type in ('CPU','M1'))`);
    this.addSql(`alter table card_session drop constraint card_session_state_check`);
    this.addSql(`alter table card_session add constraint card_session_state_check
      check (state in ('OPEN','AUTHENTICATED','AWAITING_TAC','AWAITING_PURSE','AWAITING_WRITE','COMPLETED','FAILED'))`);
    this.addSql(`alter table card_master_key drop constraint card_master_key_purpose_check`);
    this.addSql(`alter table card_master_key add constraint card_master_key_purpose_check check (purpose in ('LOAD','PURCHASE','TAC','M1'))`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Card companies import their master keys (issue 24): each version has a key check value, is
 * activated and retired, and lives either sealed here (SOFTWARE) or inside a PKCS#11 HSM (PKCS11,
 * no sealed copy: the row only names it). Keys written before this stay active. One key-transport
 * key pair per store wraps what a card company sends.
 */
export class Migration20261207000024_card_master_key_lifecycle extends Migration {
  override name = 'Migration20261207000024_card_master_key_lifecycle';

  override up(): void {
    this.addSql(`alter table card_master_key add column key_check_value text`);
    this.addSql(`alter table card_master_key add column stored_in text not null default 'SOFTWARE' check (stored_in in ('SOFTWARE','PKCS11'))`);
    this.addSql(`alter table card_master_key add column activated_at timestamptz default now()`);
    this.addSql(`alter table card_master_key add column retired_at timestamptz`);
    this.addSql(`alter table card_master_key alter column sealed_key drop not null`);
    this.addSql(`alter table card_master_key add constraint card_master_key_sealed_in_software check ((stored_in = 'SOFTWARE') = (sealed_key is not null))`);
    this.addSql(`alter table card_master_key add constraint card_master_key_retired_after_activation check (retired_at is null or activated_at is not null)`);
    this.addSql(`
      create table card_key_transport_key (
        stored_in text primary key check (stored_in in ('SOFTWARE','PKCS11')),
        public_key_pem text not null,
        sealed_private_key text,
        created_at timestamptz not null default now(),
        check ((stored_in = 'SOFTWARE') = (sealed_private_key is not null))
      )`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Card profiles as data (issue 24 item 2): per card company, and optionally per card product, how
 * the engine selects the application, which key indexes it asks for, which algorithm ids it
 * accepts, which files it reads, where an M1 purse lives and which warnings it tolerates. Every card
 * company that exists gets today's behaviour as its row, so no existing card sees a change.
 */
export class Migration20261207000200_card_profiles extends Migration {
  override name = 'Migration20261207000200_card_profiles';

  override up(): void {
    this.addSql(`
      create table card_profile (
        id uuid primary key default gen_random_uuid(),
        card_company_id uuid not null references card_company (id),
        -- null: the card company's own profile; otherwise a product's, matched by the AID a card selected
        product text check (product is null or product ~ '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$'),
        selection jsonb not null check (jsonb_typeof(selection) = 'array' and jsonb_array_length(selection) between 1 and 8),
        load_key_index int not null check (load_key_index between 0 and 255),
        purchase_key_index int not null check (purchase_key_index between 0 and 255),
        algorithm_ids int[] not null check (cardinality(algorithm_ids) >= 1 and 0 <= all (algorithm_ids) and 255 >= all (algorithm_ids)),
        public_data_sfi int not null check (public_data_sfi between 1 and 30),
        transaction_log_sfi int not null check (transaction_log_sfi between 1 and 30 and transaction_log_sfi <> public_data_sfi),
        m1 jsonb not null,
        tolerated_status_words text[] not null default '{}' check (array_to_string(tolerated_status_words, ',') ~ '^(6[23][0-9A-F]{2}(,6[23][0-9A-F]{2})*)?$'),
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      )`);
    this.addSql(`create unique index card_profile_one_per_product on card_profile (card_company_id, coalesce(product, ''))`);
    this.addSql(`
      insert into card_profile (card_company_id, product, selection, load_key_index, purchase_key_index, algorithm_ids, public_data_sfi, transaction_log_sfi, m1)
      select id, null, '[{"kind":"AID","aid":"A00000000386980701"}]'::jsonb, 1, 1, '{0,4}', 21, 24,
             '{"purseSector":1,"valueBlock":4,"backupBlock":5,"keyType":"B","keyDerivation":"UID_SECTOR_3DES"}'::jsonb
        from card_company`);
  }

  override down(): void {
    this.addSql(`drop table card_profile`);
  }
}

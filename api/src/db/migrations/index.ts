import { Migration20261125000001_ledger } from './Migration20261125000001_ledger.js';
import { Migration20261125000002_seed_runs } from './Migration20261125000002_seed_runs.js';
import { Migration20261125000003_tenancy } from './Migration20261125000003_tenancy.js';
import { Migration20261125000004_auth } from './Migration20261125000004_auth.js';
import { Migration20261125000005_pki } from './Migration20261125000005_pki.js';
import { Migration20261125000006_readers } from './Migration20261125000006_readers.js';
import { Migration20261125000007_card_sessions } from './Migration20261125000007_card_sessions.js';
import { Migration20261125000008_purchase } from './Migration20261125000008_purchase.js';
import { Migration20261125000009_m1_sessions } from './Migration20261125000009_m1_sessions.js';
import { Migration20261125000010_root_crl } from './Migration20261125000010_root_crl.js';
import { Migration20261125000011_cards } from './Migration20261125000011_cards.js';
import { Migration20261125000012_balance_discrepancies } from './Migration20261125000012_balance_discrepancies.js';
import { Migration20261125000013_blacklist } from './Migration20261125000013_blacklist.js';
import { Migration20261125000014_topups } from './Migration20261125000014_topups.js';
import { Migration20261125000015_card_replacements } from './Migration20261125000015_card_replacements.js';
import { Migration20261125000016_webhooks } from './Migration20261125000016_webhooks.js';
import { Migration20261125000017_idempotency } from './Migration20261125000017_idempotency.js';
import { Migration20261125000018_payments } from './Migration20261125000018_payments.js';
import { Migration20261125000019_bills } from './Migration20261125000019_bills.js';
import { Migration20261125000020_payment_refund_keys } from './Migration20261125000020_payment_refund_keys.js';
import { Migration20261125000021_top_up_spent } from './Migration20261125000021_top_up_spent.js';
import { Migration20261125000022_offline_uploads } from './Migration20261125000022_offline_uploads.js';
import { Migration20261125000023_settlement } from './Migration20261125000023_settlement.js';
import { Migration20261125000024_reconciliation } from './Migration20261125000024_reconciliation.js';
import { Migration20261206000001_auth_throttle } from './Migration20261206000001_auth_throttle.js';
import { Migration20261206000001_crash_safety } from './Migration20261206000001_crash_safety.js';
import { Migration20261206000001_graphql_cost_buckets } from './Migration20261206000001_graphql_cost_buckets.js';
import { Migration20261206000001_working_ca_crl } from './Migration20261206000001_working_ca_crl.js';
import { Migration20261206000002_seal_gateway_client_secrets } from './Migration20261206000002_seal_gateway_client_secrets.js';
import { Migration20261206000030_bill_account_lookups } from './Migration20261206000030_bill_account_lookups.js';
import { Migration20261206000040_card_transaction_proofs } from './Migration20261206000040_card_transaction_proofs.js';
import { Migration20261206000040_host_signing_keys } from './Migration20261206000040_host_signing_keys.js';
import { Migration20261206000040_scrub_stored_client_secrets } from './Migration20261206000040_scrub_stored_client_secrets.js';
import { Migration20261206000041_payment_payer_at_success } from './Migration20261206000041_payment_payer_at_success.js';
import { Migration20261206000041_reader_key_pairs } from './Migration20261206000041_reader_key_pairs.js';
import { Migration20261206000042_reader_national_approval } from './Migration20261206000042_reader_national_approval.js';
import { Migration20261207000001_status_history } from './Migration20261207000001_status_history.js';
import { Migration20261207000002_auth_change_notices } from './Migration20261207000002_auth_change_notices.js';
import { Migration20261207000003_certificate_change_counters } from './Migration20261207000003_certificate_change_counters.js';
import { Migration20261207000021_m1_writes } from './Migration20261207000021_m1_writes.js';
import { Migration20261207000022_m1_one_open_write } from './Migration20261207000022_m1_one_open_write.js';
import { Migration20261207000024_card_master_key_lifecycle } from './Migration20261207000024_card_master_key_lifecycle.js';
import { Migration20261207000100_party_users } from './Migration20261207000100_party_users.js';
import { Migration20261207000200_card_profiles } from './Migration20261207000200_card_profiles.js';
import { Migration20261207000200_terminal_numbers } from './Migration20261207000200_terminal_numbers.js';
import { Migration20261207000210_psam_provisioning } from './Migration20261207000210_psam_provisioning.js';
import { Migration20261207000300_transit_wallets_qr_rides } from './Migration20261207000300_transit_wallets_qr_rides.js';
import { Migration20261207000301_terminal_locations } from './Migration20261207000301_terminal_locations.js';
import { Migration20261207001700_party_user_admins } from './Migration20261207001700_party_user_admins.js';
import { Migration20261207002300_clearing_item_partitions } from './Migration20261207002300_clearing_item_partitions.js';

/** Every migration, in order. Listed rather than globbed so the same list runs from src and dist. */
export const migrations = [Migration20261125000001_ledger, Migration20261125000002_seed_runs, Migration20261125000003_tenancy, Migration20261125000004_auth, Migration20261125000005_pki, Migration20261125000006_readers, Migration20261125000007_card_sessions, Migration20261125000008_purchase, Migration20261125000009_m1_sessions, Migration20261125000010_root_crl, Migration20261125000011_cards, Migration20261125000012_balance_discrepancies, Migration20261125000013_blacklist, Migration20261125000014_topups, Migration20261125000015_card_replacements, Migration20261125000016_webhooks, Migration20261125000017_idempotency, Migration20261125000018_payments, Migration20261125000019_bills, Migration20261125000020_payment_refund_keys, Migration20261125000021_top_up_spent, Migration20261125000022_offline_uploads, Migration20261125000023_settlement, Migration20261125000024_reconciliation, Migration20261206000001_auth_throttle, Migration20261206000001_crash_safety, Migration20261206000001_graphql_cost_buckets, Migration20261206000001_working_ca_crl, Migration20261206000002_seal_gateway_client_secrets, Migration20261206000030_bill_account_lookups, Migration20261206000040_card_transaction_proofs, Migration20261206000040_host_signing_keys, Migration20261206000040_scrub_stored_client_secrets, Migration20261206000041_payment_payer_at_success, Migration20261206000041_reader_key_pairs, Migration20261206000042_reader_national_approval, Migration20261207000001_status_history, Migration20261207000002_auth_change_notices, Migration20261207000003_certificate_change_counters, Migration20261207000021_m1_writes, Migration20261207000022_m1_one_open_write, Migration20261207000024_card_master_key_lifecycle, Migration20261207000100_party_users, Migration20261207000200_card_profiles, Migration20261207000200_terminal_numbers, Migration20261207000210_psam_provisioning, Migration20261207000300_transit_wallets_qr_rides, Migration20261207000301_terminal_locations, Migration20261207001700_party_user_admins, Migration20261207002300_clearing_item_partitions].map((migration) => ({
  name: migration.name,
  class: migration,
}));

import { Migration } from '@mikro-orm/migrations';

/**
 * The gateway client secret was part of the stored answer of createTopUp (and of any mutation whose
 * payload carried a top-up), in clear in `idempotency_record.response` for 48 hours. It is now
 * resolved from the sealed column on every read; this takes it out of the answers already stored.
 * The stored shape is `{"$type": "TopUpPayload", "topUp": {"$type": "TopUp", …, "clientSecret": …}, …}`
 * (graphql/idempotency.ts encodePayload).
 */
export const SCRUB_STORED_CLIENT_SECRETS = `update idempotency_record set response = response #- '{topUp,clientSecret}' where jsonb_exists(response -> 'topUp', 'clientSecret')`;

export class Migration20261206000040_scrub_stored_client_secrets extends Migration {
  override name = 'Migration20261206000040_scrub_stored_client_secrets';

  override up(): void {
    this.addSql(SCRUB_STORED_CLIENT_SECRETS);
  }
}

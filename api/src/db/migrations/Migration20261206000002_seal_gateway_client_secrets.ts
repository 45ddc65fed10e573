import { Migration } from '@mikro-orm/migrations';
import { loadConfig } from '../../config/config.js';
import { loadKeyEncryptionKey, seal } from '../../secrets/kek.js';
import { clientSecretContext } from '../../topups/client-secret.js';

type Execute = (sql: string, params?: unknown[]) => Promise<unknown[]>;

/**
 * Seals the client secrets of top-ups still awaiting payment (the only ones an app is shown), and
 * forgets those of the others (no use once the payment is over). The key is loaded only when a
 * row needs it, the way the API loads it (ONECARD_KEY_ENCRYPTION_KEY, or outside production the
 * data folder's key file): run migrations with the API's environment.
 */
export async function sealClearClientSecrets(execute: Execute, loadKek: () => Promise<Buffer>): Promise<number> {
  const rows = (await execute(`select id, client_secret from top_up where client_secret is not null and status = 'AWAITING_PAYMENT'`)) as { id: string; client_secret: string }[];
  if (rows.length > 0) {
    const kek = await loadKek();
    for (const row of rows) {
      await execute(`update top_up set client_secret_sealed = ? where id = ?`, [seal(kek, clientSecretContext(row.id), Buffer.from(row.client_secret, 'utf8')), row.id]);
    }
  }
  await execute(`update top_up set client_secret = null where client_secret is not null`);
  return rows.length;
}

/** Issue 18: the gateway's payment-intent client secret, sealed at rest. */
export class Migration20261206000002_seal_gateway_client_secrets extends Migration {
  override name = 'Migration20261206000002_seal_gateway_client_secrets';

  override async up(): Promise<void> {
    const execute: Execute = (sql, params) => this.execute(sql, params);
    await execute(`alter table top_up add column client_secret_sealed text`);
    await sealClearClientSecrets(execute, () => loadKeyEncryptionKey(loadConfig()));
    await execute(`alter table top_up drop column client_secret`);
  }
}

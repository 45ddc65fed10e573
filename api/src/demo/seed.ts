import fs from 'node:fs/promises';
import path from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import { toGlobalId } from '../graphql/global-id.js';
import { authDemo, consoleDemo } from '../auth/auth.seed.js';
import { pkiDemo } from '../pki/pki.seed.js';
import { readersDemo } from '../readers/readers.seed.js';
import { readersHomeDemo } from '../readers/readers-home.seed.js';
import { cardsDemo } from '../cards/cards.seed.js';
import { m1CardDemo } from '../cards/m1-card.seed.js';
import { qrScannersDemo } from '../wallets/qr-scanners.seed.js';
import { billsDemo } from '../bills/bills.seed.js';
import { tenancyDemo } from '../tenancy/tenancy.seed.js';
import type { DemoData, SeedStep } from './seed-step.js';
import { feeRevenueAccount, gatewayClearingAccount, settlementInTransitAccount } from '../ledger/accounts.js';

export type { DemoData, SeedContext, SeedStep } from './seed-step.js';

/** Keys whose values are secrets: printed once, kept in demo.json, never stored in the database. */
const SECRET_KEYS = new Set(['client_secret', 'rootCaPassphrase', 'password']);

function withoutSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([k]) => !SECRET_KEYS.has(k)).map(([k, v]) => [k, withoutSecrets(v)]));
  return value;
}

const platformAccounts: SeedStep = {
  name: 'platform-ledger-accounts',
  async run(em) {
    const accounts = {
      // The very accounts the flows post to (top-ups, clearing, payouts).
      gatewayClearing: await gatewayClearingAccount(em, 'CNY'),
      operatorFeeRevenue: await feeRevenueAccount(em, 'CNY'),
      settlementInTransit: await settlementInTransitAccount(em, 'CNY'),
    };
    return { ledgerAccounts: Object.fromEntries(Object.entries(accounts).map(([name, a]) => [name, { id: toGlobalId('LedgerAccount', a.id), code: a.code }])) };
  },
};

/** The demo seed, in order. Later contexts append their steps. */
export const seedSteps: SeedStep[] = [platformAccounts, tenancyDemo, authDemo, pkiDemo, readersDemo, cardsDemo, billsDemo, readersHomeDemo, consoleDemo, m1CardDemo, qrScannersDemo];

/**
 * Runs every step not yet recorded in `seed_run`, each in its own transaction with its record,
 * and returns the merged output of all steps (new and earlier). Secrets appear only in the output
 * of the run that made them; demo.json keeps them (see `keepSecrets`). Concurrent starts run a step once:
 * the second waits on the first's row and then finds it done.
 */
export async function seedDemoData(em: EntityManager, log: Logger, env: { config: Config; kek: Buffer }, steps: SeedStep[] = seedSteps): Promise<DemoData> {
  const demo: DemoData = {};
  for (const step of steps) {
    const output = await em.fork().transactional(async (tx) => {
      const [claimed] = await tx.execute<{ step: string }[]>(`insert into seed_run (step) values (?) on conflict (step) do nothing returning step`, [step.name]);
      if (!claimed) {
        const [done] = await tx.execute<{ output: DemoData }[]>(`select output from seed_run where step = ?`, [step.name]);
        return done!.output;
      }
      const result = await step.run(tx, { earlier: demo, ...env });
      await tx.execute(`update seed_run set output = ? where step = ?`, [JSON.stringify(withoutSecrets(result)), step.name]);
      log.info({ step: step.name }, 'demo data seeded');
      return result;
    });
    Object.assign(demo, output);
  }
  return demo;
}

/**
 * demo.json is rewritten at each start from what the database knows, which has no secrets: carry
 * over the secrets the previous demo.json printed, wherever the same path exists again.
 */
export function keepSecrets(previous: unknown, next: unknown): unknown {
  if (Array.isArray(next)) return next.map((item, i) => keepSecrets(Array.isArray(previous) ? previous[i] : undefined, item));
  if (!next || typeof next !== 'object' || !previous || typeof previous !== 'object') return next;
  const prev = previous as Record<string, unknown>;
  const merged: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(next)) merged[k] = keepSecrets(prev[k], v);
  for (const k of SECRET_KEYS) if (k in prev && !(k in merged)) merged[k] = prev[k];
  return merged;
}

/**
 * The demo seed as `npm start` and `onecard seed` both run it: the steps, then demo.json with where
 * the API is (`publicUrl`, `graphqlUrl`: the examples and the SDK read them) and, for the embedded
 * PostgreSQL, its URL. One function, so the two commands cannot write different files. Returns what
 * this run seeded (secrets only of what it made) and the file written (secrets kept from earlier runs).
 */
export async function seedDemoFile(
  em: EntityManager,
  log: Logger,
  env: { config: Config; kek: Buffer; database: { url: string; embedded: boolean } },
): Promise<{ seeded: DemoData; file: DemoData }> {
  const { config, database } = env;
  const seeded = {
    publicUrl: config.publicUrl,
    graphqlUrl: `${config.publicUrl}/graphql`,
    ...(database.embedded ? { databaseUrl: database.url } : {}),
    ...(await seedDemoData(em, log, env)),
  };
  return { seeded, file: await writeDemoFile(config.dataDir, seeded) };
}

/** Writes demo.json (mode 600: it holds the demo secrets), keeping the secrets an earlier run printed. */
export async function writeDemoFile(dataDir: string, seeded: DemoData): Promise<DemoData> {
  await fs.mkdir(dataDir, { recursive: true });
  const file = path.join(dataDir, 'demo.json');
  const previous: unknown = JSON.parse(await fs.readFile(file, 'utf8').catch(() => 'null'));
  const demo = keepSecrets(previous, seeded) as DemoData;
  await fs.writeFile(file, `${JSON.stringify(demo, null, 2)}\n`, { mode: 0o600 });
  await fs.chmod(file, 0o600); // also when the file existed before
  return demo;
}

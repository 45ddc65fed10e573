import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { toGlobalId } from '../graphql/global-id.js';
import { openAccount } from '../ledger/ledger.service.js';
import { AccountOwnerKind, AccountType } from '../ledger/ledger-account.entity.js';
import { tenancyDemo } from '../tenancy/tenancy.seed.js';

/** What a person needs to try the platform; written to `$ONECARD_DATA_DIR/demo.json`. */
export type DemoData = Record<string, unknown>;

/** One step of the demo seed. Each runs once per database; its output is kept and merged into demo.json. */
export interface SeedStep {
  name: string;
  run(em: EntityManager): Promise<DemoData>;
}

const platformAccounts: SeedStep = {
  name: 'platform-ledger-accounts',
  async run(em) {
    const accounts = {
      gatewayClearing: await openAccount(em, { code: 'platform.gateway-clearing.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.GATEWAY_CLEARING, currency: 'CNY' }),
      operatorFeeRevenue: await openAccount(em, { code: 'operator.fee-revenue.CNY', type: AccountType.REVENUE, ownerKind: AccountOwnerKind.OPERATOR_FEE_REVENUE, currency: 'CNY' }),
      settlementInTransit: await openAccount(em, { code: 'platform.settlement-in-transit.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.SETTLEMENT_IN_TRANSIT, currency: 'CNY' }),
    };
    return { ledgerAccounts: Object.fromEntries(Object.entries(accounts).map(([name, a]) => [name, { id: toGlobalId('LedgerAccount', a.id), code: a.code }])) };
  },
};

/** The demo seed, in order. Later contexts append their steps. */
export const seedSteps: SeedStep[] = [platformAccounts, tenancyDemo];

/**
 * Runs every step not yet recorded in `seed_run`, each in its own transaction with its record,
 * and returns the merged output of all steps (new and earlier). Concurrent starts run a step once:
 * the second waits on the first's row and then finds it done.
 */
export async function seedDemoData(em: EntityManager, log: Logger, steps: SeedStep[] = seedSteps): Promise<DemoData> {
  const demo: DemoData = {};
  for (const step of steps) {
    const output = await em.fork().transactional(async (tx) => {
      const [claimed] = await tx.execute<{ step: string }[]>(`insert into seed_run (step) values (?) on conflict (step) do nothing returning step`, [step.name]);
      if (!claimed) {
        const [done] = await tx.execute<{ output: DemoData }[]>(`select output from seed_run where step = ?`, [step.name]);
        return done!.output;
      }
      const result = await step.run(tx);
      await tx.execute(`update seed_run set output = ? where step = ?`, [JSON.stringify(result), step.name]);
      log.info({ step: step.name }, 'demo data seeded');
      return result;
    });
    Object.assign(demo, output);
  }
  return demo;
}

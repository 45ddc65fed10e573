import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { registerDemoReader } from './readers.seed.js';

/**
 * A home reader of the demo cardholder `lin` (a Guangzhou reader she owns, as one plugged into her
 * phone or computer), so her card can pay a merchant's payment at home through her card company's
 * app (docs/payments.md). Its device key is written to a file, like the counter reader's: the
 * merchant-checkout example runs it as a simulated reader.
 */
export const readersHomeDemo: SeedStep = {
  name: 'readers-home-demo',
  async run(em, { earlier, config, kek }) {
    const tenants = earlier.tenants as { cities: Record<string, string> };
    const [lin] = await em.execute<{ id: string }[]>(`select id from cardholder where username = 'lin'`);
    if (!lin) throw new Error('readers-home-demo: the demo cardholder lin is missing (auth-demo runs first)');

    const home = await registerDemoReader(em, kek, config, {
      serial: 'GZ-HOME-LIN-0001',
      model: 'OneCard virtual home reader',
      owner: { kind: 'CARDHOLDER', id: lin.id, name: 'lin' },
      cityId: fromGlobalId(tenants.cities.GZ!, 'City').id,
      cityCode: 'GZ',
      file: 'demo-home-reader.json',
      extra: { holder: 'lin' },
    });
    // demo.json merges each step's output at the top level: keep the counter reader beside this one.
    return { readers: { ...(earlier.readers as Record<string, unknown>), home } };
  },
};

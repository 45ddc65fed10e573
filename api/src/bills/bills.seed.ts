import type { SeedStep } from '../demo/seed-step.js';
import { fromGlobalId } from '../graphql/global-id.js';
import { insertBills } from './bills.service.js';

/**
 * A month of water bills for a few customer accounts of the demo water utility, one of them
 * overdue with a late fee and one payable in part, so a holder's app has something to pay.
 */
export const billsDemo: SeedStep = {
  name: 'bills-demo',
  async run(em, { earlier }) {
    const water = fromGlobalId((earlier.tenants as { billers: { water: string } }).billers.water, 'Biller').id;
    const accounts = ['GZW-0010001', 'GZW-0010002', 'GZW-0010003'];
    await insertBills(
      em,
      { id: water, currency: 'CNY' },
      [
        { accountNumber: accounts[0]!, period: '2026-10', amountDue: 4_650n, dueDate: '2026-12-15', lateFee: { kind: 'DAILY_BASIS_POINTS', basisPoints: 5, cap: 1_000n }, allowPartial: false, billerReference: 'WB-2026-10-0010001' },
        { accountNumber: accounts[1]!, period: '2026-09', amountDue: 3_120n, dueDate: '2026-10-15', lateFee: { kind: 'FIXED', amount: 200n }, allowPartial: false, billerReference: 'WB-2026-09-0010002' },
        { accountNumber: accounts[2]!, period: '2026-10', amountDue: 12_800n, dueDate: '2026-12-15', lateFee: { kind: 'NONE' }, allowPartial: true, billerReference: 'WB-2026-10-0010003' },
      ],
      'PUBLISHED',
    );
    return { bills: { water: { accounts } } };
  },
};

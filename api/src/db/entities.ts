import { JournalEntry, Posting } from '../ledger/journal-entry.entity.js';
import { LedgerAccount } from '../ledger/ledger-account.entity.js';
import { Biller } from '../tenancy/biller.entity.js';
import { CardCompany, City } from '../tenancy/city.entity.js';
import { FeePlan } from '../tenancy/fee-plan.entity.js';
import { Merchant } from '../tenancy/merchant.entity.js';

/** Every MikroORM entity of every context. */
export const entities = [LedgerAccount, JournalEntry, Posting, City, CardCompany, FeePlan, Merchant, Biller];

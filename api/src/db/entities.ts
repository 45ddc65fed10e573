import { LedgerAccount } from '../ledger/ledger-account.entity.js';
import { Biller } from '../tenancy/biller.entity.js';
import { CardCompany, City } from '../tenancy/city.entity.js';
import { FeePlan } from '../tenancy/fee-plan.entity.js';
import { Merchant } from '../tenancy/merchant.entity.js';

/**
 * Every MikroORM entity of every context: the tables read and written through the ORM. The others
 * (journal entries and postings among them, written by `post()`) are reached
 * by SQL, and have no entity class: one that nothing uses is a second, unchecked copy of a table.
 */
export const entities = [LedgerAccount, City, CardCompany, FeePlan, Merchant, Biller];

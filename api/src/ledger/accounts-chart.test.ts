/**
 * The chart of accounts (accounts.ts) as docs/ledger.md "Opening accounts: the chart of accounts"
 * states it: each function opens the account with that code, type, owner kind, owner and
 * currency, and the non-negative rule where the table says so. The code is how every later call
 * finds the account again (a code spelled differently would open a second account and split a
 * merchant's payable or a card's purse in two); the non-negative rule is what keeps a purse, a
 * pending load or a wallet from being spent below zero. (Found by mutation testing: only the
 * services using each function reached it, so the ledger's own tests left the chart unchecked.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../../test/support/database.js';
import {
  billerPayableAccount,
  cardPurseAccount,
  cardPurseBalance,
  counterCashAccount,
  feeRevenueAccount,
  gatewayClearingAccount,
  gatewayFeesAccount,
  merchantPayableAccount,
  payableAccount,
  pendingLoadAccount,
  settlementInTransitAccount,
  transitRevenueAccount,
  transitWalletAccount,
  walletDebtAccount,
} from './accounts.js';
import { credit, debit, openAccount, post } from './ledger.service.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase();
});
afterAll(() => db.close());

const ID = '7c1f0a52-5d1e-4b7e-9a3c-0e2d4f6a8b10';
const ASN = '0000cafe000000000042';

type Opened = { id: string };
/** [function, how it is called, the row the table says it opens] */
const CHART: [string, () => Promise<Opened>, { code: string; type: string; owner_kind: string; owner_id: string | null; currency: string; non_negative: boolean }][] = [
  ['cardPurseAccount', () => cardPurseAccount(db.orm.em.fork(), ASN, 'HKD'), { code: `card.${ASN}.purse.HKD`, type: 'LIABILITY', owner_kind: 'CARD_PURSE', owner_id: ASN, currency: 'HKD', non_negative: true }],
  ['pendingLoadAccount', () => pendingLoadAccount(db.orm.em.fork(), ID, 'CNY'), { code: `card-company.${ID}.pending-loads.CNY`, type: 'LIABILITY', owner_kind: 'PENDING_LOAD', owner_id: ID, currency: 'CNY', non_negative: true }],
  ['counterCashAccount', () => counterCashAccount(db.orm.em.fork(), ID, 'CNY'), { code: `issuer.${ID}.counter-cash.CNY`, type: 'ASSET', owner_kind: 'ISSUER', owner_id: ID, currency: 'CNY', non_negative: false }],
  ['gatewayClearingAccount', () => gatewayClearingAccount(db.orm.em.fork(), 'CNY'), { code: 'gateway.clearing.CNY', type: 'ASSET', owner_kind: 'GATEWAY_CLEARING', owner_id: null, currency: 'CNY', non_negative: false }],
  ['gatewayFeesAccount', () => gatewayFeesAccount(db.orm.em.fork(), 'CNY'), { code: 'operator.gateway-fees.CNY', type: 'EXPENSE', owner_kind: 'OTHER', owner_id: null, currency: 'CNY', non_negative: false }],
  ['feeRevenueAccount', () => feeRevenueAccount(db.orm.em.fork(), 'CNY'), { code: 'operator.fee-revenue.CNY', type: 'REVENUE', owner_kind: 'OPERATOR_FEE_REVENUE', owner_id: null, currency: 'CNY', non_negative: false }],
  ['settlementInTransitAccount', () => settlementInTransitAccount(db.orm.em.fork(), 'CNY'), { code: 'settlement.in-transit.CNY', type: 'LIABILITY', owner_kind: 'SETTLEMENT_IN_TRANSIT', owner_id: null, currency: 'CNY', non_negative: false }],
  ['merchantPayableAccount', () => merchantPayableAccount(db.orm.em.fork(), ID, 'CNY'), { code: `merchant.${ID}.payable.CNY`, type: 'LIABILITY', owner_kind: 'MERCHANT_PAYABLE', owner_id: ID, currency: 'CNY', non_negative: false }],
  ['billerPayableAccount', () => billerPayableAccount(db.orm.em.fork(), ID, 'CNY'), { code: `biller.${ID}.payable.CNY`, type: 'LIABILITY', owner_kind: 'BILLER_PAYABLE', owner_id: ID, currency: 'CNY', non_negative: false }],
  ['transitRevenueAccount', () => transitRevenueAccount(db.orm.em.fork(), ID, 'CNY'), { code: `card-company.${ID}.transit-revenue.CNY`, type: 'LIABILITY', owner_kind: 'ISSUER', owner_id: ID, currency: 'CNY', non_negative: false }],
  ['transitWalletAccount', () => transitWalletAccount(db.orm.em.fork(), ID, 'CNY'), { code: `wallet.${ID}.balance.CNY`, type: 'LIABILITY', owner_kind: 'TRANSIT_WALLET', owner_id: ID, currency: 'CNY', non_negative: true }],
  ['walletDebtAccount', () => walletDebtAccount(db.orm.em.fork(), ID, 'CNY'), { code: `wallet.${ID}.debt.CNY`, type: 'ASSET', owner_kind: 'WALLET_DEBT', owner_id: ID, currency: 'CNY', non_negative: true }],
];

const row = async (id: string) =>
  (await db.orm.em.fork().execute<Record<string, unknown>[]>(`select code, type, owner_kind, owner_id, currency, non_negative from ledger_account where id = ?`, [id]))[0];

describe('the chart of accounts opens each account as docs/ledger.md says', () => {
  it.each(CHART)('%s', async (_name, open, expected) => {
    const account = await open();
    expect(await row(account.id)).toEqual(expected);
    // Called again it is the same account: the code finds it.
    expect((await open()).id).toBe(account.id);
  });

  it("payableAccount by participant kind is the merchant's, the biller's, the card company's account", async () => {
    const em = db.orm.em.fork();
    expect((await payableAccount(em, 'MERCHANT', ID, 'CNY')).id).toBe((await merchantPayableAccount(em, ID, 'CNY')).id);
    expect((await payableAccount(em, 'BILLER', ID, 'CNY')).id).toBe((await billerPayableAccount(em, ID, 'CNY')).id);
    expect((await payableAccount(em, 'CARD_COMPANY', ID, 'CNY')).id).toBe((await transitRevenueAccount(em, ID, 'CNY')).id);
  });

  it("a card's purse is in CNY unless told otherwise", async () => {
    const purse = await cardPurseAccount(db.orm.em.fork(), '0000cafe000000000043');
    expect(await row(purse.id)).toMatchObject({ code: 'card.0000cafe000000000043.purse.CNY', currency: 'CNY' });
  });
});

describe('cardPurseBalance', () => {
  it("reads what the purse's shadow holds, in that currency, and 0 for a card the ledger never saw, opening nothing", async () => {
    const em = db.orm.em.fork();
    const asn = '0000cafe000000000044';
    expect(await cardPurseBalance(em, asn, 'CNY')).toBe(0n);
    const [opened] = await em.execute<{ n: string }[]>(`select count(*)::text as n from ledger_account where owner_id = ?`, [asn]);
    expect(opened!.n).toBe('0');

    const funding = await openAccount(em, { code: 'test.chart.funding.CNY', type: AccountType.ASSET, ownerKind: AccountOwnerKind.OTHER, currency: 'CNY' });
    const purse = await cardPurseAccount(em, asn, 'CNY');
    await post(em, { key: 'chart.purse-load', description: 'a load', lines: [debit(funding.id, 1234n), credit(purse.id, 1234n)] });
    expect(await cardPurseBalance(db.orm.em.fork(), asn, 'CNY')).toBe(1234n);
    // Another currency's purse of the same card is another account.
    expect(await cardPurseBalance(db.orm.em.fork(), asn, 'HKD')).toBe(0n);
  });
});

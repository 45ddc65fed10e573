import type { EntityManager } from '@mikro-orm/postgresql';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';
import { openAccountRef } from './ledger.service.js';

/**
 * The chart of accounts: one function per kind of account, the one place an account is opened
 * and its code spelled (docs/ledger.md, "Chart of accounts"). Every context opens its accounts
 * here; `openAccount` itself (which also reads the balance) is for tests and benchmarks.
 */

/** The ledger code of a card's purse shadow. */
export const cardPurseCode = (asn: string, currency: string) => `card.${asn}.purse.${currency}`;

/**
 * The host's shadow of a card's purse (DESIGN.md §3): a non-negative liability per card, keyed by
 * the card's ASN (an M1 card's UID) until the cards context gives cards ids of their own.
 */
export function cardPurseAccount(em: EntityManager, asn: string, currency = 'CNY') {
  return openAccountRef(em, { code: cardPurseCode(asn, currency), type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.CARD_PURSE, ownerId: asn, currency, nonNegative: true });
}

/** What the shadow holds for a card (0 when the card never went through our ledger); reads, opens nothing. */
export async function cardPurseBalance(em: EntityManager, asn: string, currency: string): Promise<bigint> {
  const [row] = await em.execute<{ balance: string }[]>(`select balance from ledger_account where code = ?`, [cardPurseCode(asn, currency)]);
  return row ? BigInt(row.balance) : 0n;
}

/** Paid top-ups of a card company's cards not yet written onto a card: value owed to holders. */
export function pendingLoadAccount(em: EntityManager, cardCompanyId: string, currency: string) {
  return openAccountRef(em, { code: `card-company.${cardCompanyId}.pending-loads.${currency}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.PENDING_LOAD, ownerId: cardCompanyId, currency, nonNegative: true });
}

/** The cash a card company took in at its counter for loads onto cards. */
export function counterCashAccount(em: EntityManager, cardCompanyId: string, currency: string) {
  return openAccountRef(em, { code: `issuer.${cardCompanyId}.counter-cash.${currency}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.ISSUER, ownerId: cardCompanyId, currency });
}

/** What the gateway owes us for payments it took (and we owe it back for refunds): one per currency. */
export function gatewayClearingAccount(em: EntityManager, currency: string) {
  return openAccountRef(em, { code: `gateway.clearing.${currency}`, type: AccountType.ASSET, ownerKind: AccountOwnerKind.GATEWAY_CLEARING, currency });
}

/** The gateway's fees on its own balance: an operator expense, one account per currency. */
export function gatewayFeesAccount(em: EntityManager, currency: string) {
  return openAccountRef(em, { code: `operator.gateway-fees.${currency}`, type: AccountType.EXPENSE, ownerKind: AccountOwnerKind.OTHER, currency });
}

/** The operator's service fees, earned at clearing. */
export function feeRevenueAccount(em: EntityManager, currency: string) {
  return openAccountRef(em, { code: `operator.fee-revenue.${currency}`, type: AccountType.REVENUE, ownerKind: AccountOwnerKind.OPERATOR_FEE_REVENUE, currency });
}

/** What clearing has moved out of payables and the payouts have not yet paid (or given back). */
export function settlementInTransitAccount(em: EntityManager, currency: string) {
  return openAccountRef(em, { code: `settlement.in-transit.${currency}`, type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.SETTLEMENT_IN_TRANSIT, currency });
}

/** Who clearing pays out: a merchant, a biller, or a card company (for its own terminals' transit). */
export type ParticipantKind = 'MERCHANT' | 'BILLER' | 'CARD_COMPANY';

/** The code of the account a participant's clearing items credit (and clearing debits). */
export const PAYABLE_ACCOUNT_CODE: Record<string, (id: string, currency: string) => string> = {
  MERCHANT: (id, cur) => `merchant.${id}.payable.${cur}`,
  BILLER: (id, cur) => `biller.${id}.payable.${cur}`,
  CARD_COMPANY: (id, cur) => `card-company.${id}.transit-revenue.${cur}`,
};

const PAYABLE_OWNER: Record<string, AccountOwnerKind> = { MERCHANT: AccountOwnerKind.MERCHANT_PAYABLE, BILLER: AccountOwnerKind.BILLER_PAYABLE, CARD_COMPANY: AccountOwnerKind.ISSUER };

/** What the operator owes a participant until clearing pays it out (`payableOf` in issue 16). */
export function payableAccount(em: EntityManager, participantKind: ParticipantKind | string, participantId: string, currency: string) {
  return openAccountRef(em, { code: PAYABLE_ACCOUNT_CODE[participantKind]!(participantId, currency), type: AccountType.LIABILITY, ownerKind: PAYABLE_OWNER[participantKind]!, ownerId: participantId, currency });
}

/** What the operator owes a merchant until clearing pays it out. */
export const merchantPayableAccount = (em: EntityManager, merchantId: string, currency: string) => payableAccount(em, 'MERCHANT', merchantId, currency);

/** What the operator owes a biller until clearing pays it out. */
export const billerPayableAccount = (em: EntityManager, billerId: string, currency: string) => payableAccount(em, 'BILLER', billerId, currency);

/** What a card company's own terminals earn (offline transit) until clearing pays it out. */
export const transitRevenueAccount = (em: EntityManager, cardCompanyId: string, currency: string) => payableAccount(em, 'CARD_COMPANY', cardCompanyId, currency);

/**
 * A registered holder's transit wallet (交通钱包, issue 25): value the platform owes the holder, held
 * online rather than on a chip; a non-negative liability like a card purse. Keyed by the wallet's id.
 */
export const transitWalletCode = (walletId: string, currency: string) => `wallet.${walletId}.balance.${currency}`;

export function transitWalletAccount(em: EntityManager, walletId: string, currency: string) {
  return openAccountRef(em, { code: transitWalletCode(walletId, currency), type: AccountType.LIABILITY, ownerKind: AccountOwnerKind.TRANSIT_WALLET, ownerId: walletId, currency, nonNegative: true });
}

/**
 * What a wallet's holder owes for rides the wallet did not cover (scanners let a rider through
 * offline): an asset, never negative, capped per wallet by its debt limit and cleared by the next top-up.
 */
export const walletDebtCode = (walletId: string, currency: string) => `wallet.${walletId}.debt.${currency}`;

export function walletDebtAccount(em: EntityManager, walletId: string, currency: string) {
  return openAccountRef(em, { code: walletDebtCode(walletId, currency), type: AccountType.ASSET, ownerKind: AccountOwnerKind.WALLET_DEBT, ownerId: walletId, currency, nonNegative: true });
}

import { BigIntType } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** Account types of double-entry bookkeeping; the type decides the account's normal side. */
export enum AccountType {
  ASSET = 'ASSET',
  LIABILITY = 'LIABILITY',
  REVENUE = 'REVENUE',
  EXPENSE = 'EXPENSE',
  EQUITY = 'EQUITY',
}

/** Whom an account belongs to, or what it stands for. Later contexts add their owners here. */
export enum AccountOwnerKind {
  /** The host's shadow of a card's on-card purse (电子钱包). */
  CARD_PURSE = 'CARD_PURSE',
  /** Paid top-ups waiting to be written onto a card (补登). */
  PENDING_LOAD = 'PENDING_LOAD',
  MERCHANT_PAYABLE = 'MERCHANT_PAYABLE',
  BILLER_PAYABLE = 'BILLER_PAYABLE',
  ISSUER = 'ISSUER',
  GATEWAY_CLEARING = 'GATEWAY_CLEARING',
  OPERATOR_FEE_REVENUE = 'OPERATOR_FEE_REVENUE',
  SETTLEMENT_IN_TRANSIT = 'SETTLEMENT_IN_TRANSIT',
  INTERCHANGE = 'INTERCHANGE',
  /** A registered holder's transit wallet (交通钱包): value held online, spent by QR-code rides. */
  TRANSIT_WALLET = 'TRANSIT_WALLET',
  /** What a holder owes for rides their transit wallet did not cover, cleared by the next top-up. */
  WALLET_DEBT = 'WALLET_DEBT',
  /** Accounts made by tests, benchmarks and manual adjustments. */
  OTHER = 'OTHER',
}

/** Assets and expenses grow with debits; the rest grow with credits. */
export function isDebitNormal(type: AccountType): boolean {
  return type === AccountType.ASSET || type === AccountType.EXPENSE;
}

@Entity({ tableName: 'ledger_account' })
export class LedgerAccount {
  @PrimaryKey({ type: 'uuid' })
  id!: string;

  /** A stable, human-readable name, unique: `operator.fee-revenue.CNY`, `card.<id>.purse`. */
  @Property({ type: 'text' })
  code!: string;

  @Property({ type: 'text' })
  type!: AccountType;

  @Property({ type: 'text' })
  ownerKind!: AccountOwnerKind;

  @Property({ type: 'text', nullable: true })
  ownerId?: string | null;

  @Property({ type: 'text' })
  currency!: string;

  /** The ledger refuses any entry that would take this account below zero (a card purse). */
  @Property({ type: 'boolean' })
  nonNegative!: boolean;

  /** On the account's normal side, in minor units; only `post()` changes it. */
  @Property({ type: new BigIntType('bigint') })
  balance!: bigint;

  @Property({ type: 'timestamptz' })
  createdAt!: Date;
}

import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { TopUpStatusEnum } from '../topups/topups.types.js';

@ObjectType('WalletTopUp', { implements: Node, description: 'A top-up of a transit wallet: paid at the payment gateway like a card’s, and in the wallet as soon as it is PAID (nothing to write onto a chip).' })
export class WalletTopUpType extends Node {
  uuid!: string;

  @Field(() => ID, { description: 'Global id of the TransitWallet the value is for.' })
  wallet!: string;

  @Field(() => Money, { description: 'The amount, in the wallet’s currency.' })
  amount!: Money;

  @Field(() => TopUpStatusEnum, { description: 'Where the top-up stands: PAID means in the wallet (a wallet top-up is never LOADED).' })
  status!: TopUpStatusEnum;

  @Field(() => String, { nullable: true, description: 'The gateway’s hosted page where the holder pays (while AWAITING_PAYMENT).' })
  paymentUrl!: string | null;

  @Field(() => String, { nullable: true, description: 'Why the payment failed (the gateway’s decline code), or why a refund failed.' })
  failureCode!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the top-up was created.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the gateway confirmed the payment (and the wallet was credited).' })
  paidAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the refund completed.' })
  refundedAt!: Date | null;
}

export const WalletTopUpConnection = connectionType(WalletTopUpType, 'WalletTopUp');

@ObjectType('WalletEntry', { description: 'One movement of a transit wallet: a journal entry that changed its balance or its debt.' })
export class WalletEntryType {
  @Field(() => ID, { description: 'Global id of the JournalEntry.' })
  journalEntry!: string;

  @Field(() => DateTimeScalar, { description: 'When it was posted.' })
  postedAt!: Date;

  @Field(() => String, { nullable: true, description: 'What it was: TOP_UP_PAID, TOP_UP_REFUND, TOP_UP_REFUND_FAILED, QR_RIDE.' })
  kind!: string | null;

  @Field({ description: 'The ledger’s description of the entry.' })
  description!: string;

  @Field(() => Money, { description: 'How the wallet’s balance changed: positive for a top-up, negative for a ride or a refund.' })
  balanceChange!: Money;

  @Field(() => Money, { description: 'How the wallet’s debt changed: positive when a ride was not covered, negative when a top-up cleared it.' })
  debtChange!: Money;
}

export const WalletEntryConnection = connectionType(WalletEntryType, 'WalletEntry');

@ObjectType('TransitWallet', { implements: Node, description: 'A registered holder’s transit wallet (交通钱包) with one card company: value held online, topped up through the gateway and spent by QR-code rides (docs/qr-rides.md).' })
export class TransitWalletType extends Node {
  uuid!: string;
  currencyCode!: string;

  @Field(() => ID, { description: 'Global id of the CardCompany whose rides it pays.' })
  cardCompany!: string;

  @Field(() => Money, { description: 'The most rides may owe; past it the wallet’s QR credentials are blocked.' })
  debtLimit!: Money;

  @Field(() => DateTimeScalar, { description: 'When the wallet was opened.' })
  createdAt!: Date;
}

@InputType({ description: 'The card company to open a transit wallet with.' })
export class OpenTransitWalletInput {
  @Field(() => ID, { description: 'Global id of the CardCompany.' })
  cardCompany!: string;
}

@InputType({ description: 'How far rides may run a transit wallet into debt.' })
export class SetWalletDebtLimitInput {
  @Field(() => ID, { description: 'Global id of the TransitWallet (one of your card company’s).' })
  wallet!: string;

  @Field(() => MinorUnitsScalar, { description: 'The debt limit in minor units of the wallet’s currency: 0 (rides only from what the wallet holds) to 10000 (100.00). New wallets get 2000 (20.00).' })
  debtLimit!: bigint;
}

@ObjectType({ description: 'The result of openTransitWallet.' })
export class TransitWalletPayload {
  @Field(() => TransitWalletType, { nullable: true, description: 'The wallet (the one already open, if any); null when refused.' })
  wallet!: TransitWalletType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@InputType({ description: 'A top-up of your holder’s transit wallet.' })
export class CreateWalletTopUpInput {
  @Field(() => ID, { description: 'Global id of the TransitWallet.' })
  wallet!: string;

  @Field(() => MinorUnitsScalar, { description: 'The amount in minor units of the wallet’s currency, within the top-up limits.' })
  amount!: bigint;

  @Field({ description: 'Your key for this top-up (1 to 200 printable ASCII): the same key and request returns the first answer, never a second charge.' })
  idempotencyKey!: string;

  @Field(() => String, { nullable: true, description: 'A saved payment method at the gateway (pm_…): charged at once. Without it, the holder pays at paymentUrl.' })
  paymentMethod?: string | null;
}

@InputType({ description: 'A paid wallet top-up to refund through the gateway.' })
export class RefundWalletTopUpInput {
  @Field(() => ID, { description: 'Global id of the WalletTopUp.' })
  topUp!: string;

  @Field({ description: 'Your key for this refund (1 to 200 printable ASCII): the same key and request returns the first answer, never a second refund.' })
  idempotencyKey!: string;
}

@ObjectType({ description: 'The result of a wallet top-up mutation: the top-up, or why not. A GATEWAY_UNAVAILABLE or PAYMENT_DECLINED error comes with the top-up as it stands.' })
export class WalletTopUpPayload {
  @Field(() => WalletTopUpType, { nullable: true, description: 'The top-up; null when refused before one was recorded.' })
  topUp!: WalletTopUpType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

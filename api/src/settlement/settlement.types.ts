import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum SettlementWindowStatusEnum {
  OPEN = 'OPEN',
  CLOSED = 'CLOSED',
  CLEARED = 'CLEARED',
  SETTLED = 'SETTLED',
}
registerEnumType(SettlementWindowStatusEnum, {
  name: 'SettlementWindowStatus',
  description: 'Where a settlement window stands.',
  valuesConfig: {
    OPEN: { description: 'Taking transactions of its business day (and late ones of earlier days).' },
    CLOSED: { description: 'Cut off: its transactions are fixed; clearing comes next.' },
    CLEARED: { description: 'Cleared into a batch; payouts are on their way.' },
    SETTLED: { description: 'Every payout of its batch was confirmed or failed (a failed one is carried into the next window).' },
  },
});

export enum SettlementBatchStatusEnum {
  PAYING = 'PAYING',
  SETTLED = 'SETTLED',
}
registerEnumType(SettlementBatchStatusEnum, {
  name: 'SettlementBatchStatus',
  description: 'Where a batch’s payouts stand.',
  valuesConfig: {
    PAYING: { description: 'Some payouts are on their way.' },
    SETTLED: { description: 'Every payout was confirmed by the gateway, or failed and is carried.' },
  },
});

export enum SettlementLineStatusEnum {
  PAYING = 'PAYING',
  PAID = 'PAID',
  PAYOUT_FAILED = 'PAYOUT_FAILED',
  CARRIED_FORWARD = 'CARRIED_FORWARD',
  NOTHING_DUE = 'NOTHING_DUE',
}
registerEnumType(SettlementLineStatusEnum, {
  name: 'SettlementLineStatus',
  description: 'Where a settlement line (a participant’s statement) stands.',
  valuesConfig: {
    PAYING: { description: 'The payout is on its way.' },
    PAID: { description: 'The gateway confirmed the payout.' },
    PAYOUT_FAILED: { description: 'The payout failed: the amount went back to the participant’s payable and is carried into its next statement.' },
    CARRIED_FORWARD: { description: 'Refunds and fees exceeded sales: the participant owes the difference, taken from its next statement.' },
    NOTHING_DUE: { description: 'Nets to zero: nothing to pay.' },
  },
});

export enum ParticipantKindEnum {
  MERCHANT = 'MERCHANT',
  BILLER = 'BILLER',
  CARD_COMPANY = 'CARD_COMPANY',
}
registerEnumType(ParticipantKindEnum, {
  name: 'SettlementParticipantKind',
  description: 'Who a settlement line is for.',
  valuesConfig: {
    MERCHANT: { description: 'A merchant: its payments, till purchases, transit fares of its terminals and refunds.' },
    BILLER: { description: 'A biller: its bill payments.' },
    CARD_COMPANY: { description: 'A card company: transit fares of its own terminals, and the top-ups of its cards (reported, not paid out).' },
  },
});

@ObjectType('SettlementWindow', { implements: Node, description: 'A city’s business day of transactions, cleared and settled as one batch.' })
export class SettlementWindowType extends Node {
  uuid!: string;

  @Field(() => ID, { description: 'Global id of its City (what `settlementWindows(city:)` takes).' })
  city!: string;

  @Field({ description: 'The city’s code.' })
  cityCode!: string;

  @Field({ description: 'YYYY-MM-DD in the city’s time zone.' })
  businessDay!: string;

  @Field({ description: 'ISO 4217: the city’s currency.' })
  currency!: string;

  @Field(() => SettlementWindowStatusEnum, { description: 'Where the window stands.' })
  status!: SettlementWindowStatusEnum;

  @Field(() => DateTimeScalar, { description: 'When the cut-off job closes it (the next local day at SETTLEMENT_CUTOFF).' })
  cutoffAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it closed.' })
  closedAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'Who closed it: `cut-off`, `cli`, or the operator client.' })
  closedBy!: string | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When clearing made its batch.' })
  clearedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When its last payout was confirmed (or failed).' })
  settledAt!: Date | null;
}

@ObjectType('SettlementBatch', { implements: Node, description: 'What clearing made of a closed window: totals, a line per participant, interchange, one ledger entry, payouts.' })
export class SettlementBatchType extends Node {
  uuid!: string;

  @Field(() => SettlementWindowType, { description: 'The window it clears.' })
  window!: SettlementWindowType;

  @Field(() => SettlementBatchStatusEnum, { description: 'Where its payouts stand.' })
  status!: SettlementBatchStatusEnum;

  @Field(() => Int, { description: 'Transactions cleared: sales, refunds and top-ups.' })
  itemCount!: number;

  @Field(() => Money, { description: 'Sales: card payments, till purchases, bill payments and transit fares.' })
  gross!: Money;

  @Field(() => Money, { description: 'Refunds of payments.' })
  refunds!: Money;

  @Field(() => Money, { description: 'The operator’s service fees, by each participant’s fee plan.' })
  fees!: Money;

  @Field(() => Money, { description: 'gross − refunds − fees.' })
  net!: Money;

  @Field(() => Money, { description: 'What the batch pays out (positive dues, with amounts carried from earlier windows).' })
  payoutTotal!: Money;

  @Field(() => Money, { description: 'Top-ups paid at the gateway in the window (stored value, not paid out).' })
  topUps!: Money;

  @Field(() => Money, { description: 'Top-ups refunded through the gateway in the window.' })
  topUpRefunds!: Money;

  @Field(() => ID, { nullable: true, description: 'The JournalEntry moving payables to fee revenue and settlement in transit (none when nothing moved).' })
  journalEntry!: string | null;

  @Field(() => DateTimeScalar, { description: 'When clearing made it.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When every payout was final.' })
  settledAt!: Date | null;
}

@ObjectType('SettlementLine', { implements: Node, description: 'One participant’s part of a batch: its statement for the window.' })
export class SettlementLineType extends Node {
  uuid!: string;
  /** For volumeByHour: the window, the participant and the currency, unexposed. */
  windowUuid!: string;
  participantUuid!: string;
  currency!: string;

  @Field(() => ID, { description: 'The SettlementBatch.' })
  batch!: string;

  @Field(() => ID, { description: 'The SettlementWindow.' })
  window!: string;

  @Field({ description: 'The window’s city.' })
  cityCode!: string;

  @Field({ description: 'The window’s business day, YYYY-MM-DD.' })
  businessDay!: string;

  @Field(() => ParticipantKindEnum, { description: 'Merchant, biller or card company.' })
  participantKind!: ParticipantKindEnum;

  @Field(() => ID, { description: 'The Merchant, Biller or CardCompany.' })
  participant!: string;

  @Field({ description: 'Its name when cleared.' })
  participantName!: string;

  @Field(() => ID, { nullable: true, description: 'The FeePlan its fees were computed by; none: no fees.' })
  feePlan!: string | null;

  @Field(() => Int, { description: 'Sales cleared.' })
  salesCount!: number;

  @Field(() => Int, { description: 'Refunds cleared.' })
  refundCount!: number;

  @Field(() => Money, { description: 'Sales.' })
  gross!: Money;

  @Field(() => Money, { description: 'Refunds.' })
  refunds!: Money;

  @Field(() => Money, { description: 'The operator’s fees on the sales (refunds give none back).' })
  fees!: Money;

  @Field(() => Money, { description: 'gross − refunds − fees.' })
  net!: Money;

  @Field(() => Money, { description: 'What earlier windows left: a negative due owed, or a failed payout owed to you.' })
  carriedIn!: Money;

  @Field(() => Money, { description: 'net + carriedIn.' })
  due!: Money;

  @Field(() => Money, { description: 'Paid out: the due when positive, else zero.' })
  payout!: Money;

  @Field(() => SettlementLineStatusEnum, { description: 'Where the line stands.' })
  status!: SettlementLineStatusEnum;

  @Field(() => ID, { nullable: true, description: 'The later SettlementLine that took over this one’s negative due or failed payout.' })
  carriedInto!: string | null;

  @Field(() => String, { nullable: true, description: 'The gateway’s payout id, once sent.' })
  gatewayPayoutId!: string | null;

  @Field(() => String, { nullable: true, description: 'Why the payout failed.' })
  payoutFailureCode!: string | null;

  @Field(() => Int, { description: 'Card company lines: top-ups of its cards paid in the window.' })
  topUpCount!: number;

  @Field(() => Money, { description: 'Card company lines: top-ups paid (stored value the operator holds; not paid out).' })
  topUps!: Money;

  @Field(() => Money, { description: 'Card company lines: top-ups refunded through the gateway.' })
  topUpRefunds!: Money;
}

export const SettlementWindowConnection = connectionType(SettlementWindowType, 'SettlementWindow');
export const SettlementLineConnection = connectionType(SettlementLineType, 'SettlementLine');

export enum ClearingKindEnum {
  PAYMENT = 'PAYMENT',
  PURCHASE = 'PURCHASE',
  BILL_PAYMENT = 'BILL_PAYMENT',
  TRANSIT = 'TRANSIT',
  REFUND = 'REFUND',
  TOP_UP = 'TOP_UP',
  TOP_UP_REFUND = 'TOP_UP_REFUND',
  TOP_UP_REFUND_FAILED = 'TOP_UP_REFUND_FAILED',
}
registerEnumType(ClearingKindEnum, {
  name: 'ClearingKind',
  description: 'What a cleared transaction was: the channel it came through.',
  valuesConfig: {
    PAYMENT: { description: 'A merchant payment paid by card (online checkout).' },
    PURCHASE: { description: 'A purchase at a merchant’s till reader.' },
    BILL_PAYMENT: { description: 'A bill paid by card or from a top-up.' },
    TRANSIT: { description: 'An offline transit fare uploaded by a terminal.' },
    REFUND: { description: 'A merchant’s refund to a card.' },
    TOP_UP: { description: 'A top-up paid at the gateway.' },
    TOP_UP_REFUND: { description: 'A top-up refunded through the gateway.' },
    TOP_UP_REFUND_FAILED: { description: 'A top-up refund the gateway failed (its value came back).' },
  },
});

@ObjectType('SettlementVolume', { description: 'A window’s transactions of one kind in one local hour.' })
export class SettlementVolumeType {
  @Field(() => Int, { description: 'The hour of the day, 0–23, in the window’s city.' })
  hour!: number;

  @Field(() => ClearingKindEnum, { description: 'The kind (channel).' })
  kind!: ClearingKindEnum;

  @Field(() => Int, { description: 'How many.' })
  count!: number;

  @Field(() => Money, { description: 'Their total.' })
  amount!: Money;
}

@ObjectType('CardCompanyRef', { description: 'A card company as a party to interchange.' })
export class CardCompanyRefType {
  @Field(() => ID, { description: 'The CardCompany.' })
  id!: string;

  @Field({ description: 'Its name.' })
  name!: string;

  @Field({ description: 'Its city’s code.' })
  cityCode!: string;
}

@ObjectType('InterchangePosition', { description: 'What one card company’s cards spent (less refunds) in another card company’s city in a window: the issuer owes the acquirer.' })
export class InterchangePositionType {
  @Field(() => CardCompanyRefType, { description: 'The card’s issuer (it owes).' })
  issuer!: CardCompanyRefType;

  @Field(() => CardCompanyRefType, { description: 'The card company of the city where the cards were used (it is owed).' })
  acquirer!: CardCompanyRefType;

  @Field(() => Int, { description: 'Transactions (sales and refunds).' })
  count!: number;

  @Field(() => Money, { description: 'Sales.' })
  gross!: Money;

  @Field(() => Money, { description: 'Refunds.' })
  refunds!: Money;

  @Field(() => Money, { description: 'gross − refunds: what the issuer owes the acquirer.' })
  net!: Money;
}

@ObjectType('BilateralNet', { description: 'A pair of card companies netted: one owes the other.' })
export class BilateralNetType {
  @Field(() => CardCompanyRefType, { description: 'Owes.' })
  debtor!: CardCompanyRefType;

  @Field(() => CardCompanyRefType, { description: 'Is owed.' })
  creditor!: CardCompanyRefType;

  @Field(() => Money, { description: 'What the debtor owes the creditor after netting both directions.' })
  amount!: Money;
}

@ObjectType('MultilateralNet', { description: 'One card company against all others.' })
export class MultilateralNetType {
  @Field(() => CardCompanyRefType, { description: 'The card company (one per city).' })
  cardCompany!: CardCompanyRefType;

  @Field(() => Money, { description: 'Other card companies’ cards spent in its city.' })
  receivable!: Money;

  @Field(() => Money, { description: 'Its cards spent in other cities.' })
  payable!: Money;

  @Field(() => Money, { description: 'receivable − payable: positive, it is owed; negative, it owes.' })
  net!: Money;
}

@ObjectType('InterchangeMatrix', { description: 'Cross-city use (互联互通) of one business day over every city’s window: gross positions, bilateral and multilateral nets.' })
export class InterchangeMatrixType {
  @Field({ description: 'YYYY-MM-DD.' })
  businessDay!: string;

  @Field(() => [InterchangePositionType], { description: 'Each issuer → acquirer pair with use.' })
  positions!: InterchangePositionType[];

  @Field(() => [BilateralNetType], { description: 'Each pair netted.' })
  bilateral!: BilateralNetType[];

  @Field(() => [MultilateralNetType], { description: 'Each card company against all others (a card company sees its own).' })
  multilateral!: MultilateralNetType[];
}

@InputType({ description: 'Close a city’s settlement window now (and any earlier one still open).' })
export class CloseSettlementWindowInput {
  @Field(() => ID, { description: 'The City.' })
  city!: string;

  @Field({ description: 'YYYY-MM-DD in the city’s time zone; today or earlier.' })
  businessDay!: string;
}

@ObjectType({ description: 'The window, closed.' })
export class CloseSettlementWindowPayload {
  @Field(() => SettlementWindowType, { nullable: true, description: 'The window.' })
  window!: SettlementWindowType | null;

  @Field(() => [UserError], { description: 'Why it was refused.' })
  userErrors!: UserError[];
}

@InputType({ description: 'Clear a closed window (clearing runs by itself after the cut-off; this runs it now). Running it again answers the same batch.' })
export class ClearSettlementWindowInput {
  @Field(() => ID, { description: 'The SettlementWindow.' })
  window!: string;
}

@ObjectType({ description: 'The batch of the window.' })
export class ClearSettlementWindowPayload {
  @Field(() => SettlementBatchType, { nullable: true, description: 'The batch.' })
  batch!: SettlementBatchType | null;

  @Field(() => [UserError], { description: 'Why it was refused.' })
  userErrors!: UserError[];
}

import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum BillPaymentStatusEnum {
  REQUIRES_CARD = 'REQUIRES_CARD',
  PROCESSING = 'PROCESSING',
  SUCCEEDED = 'SUCCEEDED',
  CANCELED = 'CANCELED',
  FAILED = 'FAILED',
}
registerEnumType(BillPaymentStatusEnum, {
  name: 'BillPaymentStatus',
  description: 'REQUIRES_CARD: waiting for the holder’s card at a reader; PROCESSING: a card session is paying it; SUCCEEDED: paid, with a receipt; CANCELED: expired; FAILED: the card was refused three times.',
  valuesConfig: {
    REQUIRES_CARD: { description: 'Waiting for the holder’s card at a certified reader (openCardSession with operation PURCHASE and billPayment).' },
    PROCESSING: { description: 'A card session is paying it (or its answer was lost: the card’s next tap settles it).' },
    SUCCEEDED: { description: 'Paid: `receiptNumber`, `paidAt` and `businessDay` are set, and the bill’s amountPaid includes it.' },
    CANCELED: { description: 'Not paid: it expired, was superseded, or the card’s answer was lost (`failureCode`).' },
    FAILED: { description: 'The card was refused three times; `failureCode` is the last refusal.' },
  },
});

@ObjectType('BillPayment', { implements: Node, description: 'A payment of a bill from a card purse; once SUCCEEDED, its receipt.' })
export class BillPaymentType extends Node {
  uuid!: string;

  @Field(() => ID, { description: 'Global id of the Bill.' })
  bill!: string;

  @Field(() => ID, { description: 'Global id of the Biller.' })
  biller!: string;

  @Field({ description: 'The biller’s name.' })
  billerName!: string;

  @Field({ description: 'The customer account number of the bill.' })
  accountNumber!: string;

  @Field({ description: 'The bill’s period, as the biller names it (e.g. 2026-10).' })
  period!: string;

  @Field(() => Money, { description: 'The amount paid (or to pay).' })
  amount!: Money;

  @Field(() => BillPaymentStatusEnum, { description: 'Where the payment stands.' })
  status!: BillPaymentStatusEnum;

  @Field(() => String, { nullable: true, description: 'The receipt number, once paid.' })
  receiptNumber!: string | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the card paid.' })
  paidAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'The biller’s business day (its city’s date) the payment counts in: its reconciliation day.' })
  businessDay!: string | null;

  @Field(() => String, { nullable: true, description: 'The card that paid, masked but for the last 4 digits.' })
  cardNumber!: string | null;

  @Field(() => String, { nullable: true, description: 'FAILED: the last refusal of the card; CANCELED: EXPIRED or CARD_ANSWER_LOST.' })
  failureCode!: string | null;

  @Field(() => DateTimeScalar, { description: 'Until when it waits for the card.' })
  expiresAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When it was created.' })
  createdAt!: Date;
}

export const BillPaymentConnection = connectionType(BillPaymentType, 'BillPayment');

@InputType({ description: 'A bill to pay from a card purse.' })
export class PayBillInput {
  @Field(() => ID, { description: 'Global id of the Bill.' })
  bill!: string;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'How much; omitted: all that remains today (late fee included). A part only where the biller allows it; never more than remains.' })
  amount?: bigint | null;

  @Field(() => ID, { nullable: true, description: 'Global id of one of your PAID top-ups to pay with instead of the card: spent whole (its amount is the payment’s), paid at once, no card session.' })
  fromTopUp?: string | null;

  @Field({ description: 'Your key for this request: a retry never makes a second payment.' })
  idempotencyKey!: string;
}

@ObjectType({ description: 'The result of payBill: the bill payment to pay with the card, or why not.' })
export class BillPaymentPayload {
  @Field(() => BillPaymentType, { nullable: true, description: 'The bill payment; pay it with openCardSession(operation: PURCHASE, billPayment).' })
  billPayment!: BillPaymentType | null;

  @Field(() => [UserError], { description: 'Why it was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'A biller’s day of bill payments, with totals that must equal the ledger’s.' })
export class BillerReconciliationType {
  @Field({ description: 'The business day (YYYY-MM-DD) in the biller’s city.' })
  businessDay!: string;

  @Field(() => Int, { description: 'How many payments.' })
  count!: number;

  @Field(() => Money, { description: 'The sum of the payments.' })
  total!: Money;

  @Field(() => Money, { description: 'What the ledger credited to the biller’s payable for these payments; equal to total.' })
  ledgerTotal!: Money;

  @Field(() => [BillPaymentType], { description: 'The payments, in the order they were paid.' })
  payments!: BillPaymentType[];

  @Field({ description: 'The same as CSV (receipt_number, paid_at, account_number, period, biller_reference, amount, currency, card); also at GET /billers/reconciliation.csv?day=YYYY-MM-DD.' })
  csv!: string;
}

import { JSONObjectResolver } from 'graphql-scalars';
import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { CurrencyScalar, DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum PaymentStatusEnum {
  REQUIRES_CARD = 'REQUIRES_CARD',
  PROCESSING = 'PROCESSING',
  SUCCEEDED = 'SUCCEEDED',
  CANCELED = 'CANCELED',
  FAILED = 'FAILED',
}
registerEnumType(PaymentStatusEnum, {
  name: 'PaymentStatus',
  description: 'Where a payment stands (docs/payments.md has the state diagram).',
  valuesConfig: {
    REQUIRES_CARD: { description: 'Waiting for the holder’s card at a certified reader.' },
    PROCESSING: { description: 'A card session is taking the payment (or its answer was lost: the card’s next tap settles it).' },
    SUCCEEDED: { description: 'The card paid (its TAC proved it); the money is owed to the merchant. Refunds keep it SUCCEEDED with refundedAmount.' },
    CANCELED: { description: 'Canceled by the merchant, or expired (cancelReason).' },
    FAILED: { description: 'The holder’s attempts were refused too often (failureCode: the last refusal).' },
  },
});

export enum PaymentCancelReasonEnum {
  MERCHANT = 'MERCHANT',
  EXPIRED = 'EXPIRED',
}
registerEnumType(PaymentCancelReasonEnum, {
  name: 'PaymentCancelReason',
  description: 'Why a payment was canceled: by the merchant, or it expired waiting for the card.',
  valuesConfig: {
    MERCHANT: { description: 'The merchant canceled it (`cancelPayment`).' },
    EXPIRED: { description: 'No card paid it before `expiresAt`.' },
  },
});

@ObjectType({ description: 'A refund of (part of) a payment: back to the card that paid, as a pending load its next tap writes onto the chip.' })
export class PaymentRefundType {
  @Field(() => ID, { description: 'Global id of the refund.' })
  id!: string;

  @Field(() => Money, { description: 'The amount refunded.' })
  amount!: Money;

  @Field(() => String, { nullable: true, description: 'Why, as the merchant gave it.' })
  reason!: string | null;

  @Field(() => ID, { description: 'Global id of the TopUp (origin REFUND) that carries the money back onto the card.' })
  pendingLoad!: string;

  @Field(() => DateTimeScalar, { description: 'When the refund was made.' })
  createdAt!: Date;
}

@ObjectType({ description: 'A ledger entry of a payment: the purchase (card purse → merchant payable) or a refund.' })
export class PaymentLedgerEntryType {
  @Field({ description: 'The entry’s idempotency key in the ledger.' })
  key!: string;

  @Field({ description: 'What the entry records.' })
  description!: string;

  @Field(() => String, { nullable: true, description: 'PAYMENT or REFUND.' })
  kind!: string | null;

  @Field(() => Money, { description: 'The amount moved.' })
  amount!: Money;

  @Field(() => DateTimeScalar, { description: 'When it was posted.' })
  postedAt!: Date;
}

@ObjectType('Payment', { implements: Node, description: 'A merchant’s payment from a city card wallet, paid by presenting the card at a certified reader.' })
export class PaymentType extends Node {
  uuid!: string;
  /** The holder whose card paid: the one cardholder app that is a party to the payment (not in the schema). */
  payerHolderId!: string | null;

  @Field(() => ID, { description: 'Global id of the Merchant.' })
  merchant!: string;

  @Field({ description: 'The merchant’s name, for the holder’s app to show.' })
  merchantName!: string;

  @Field(() => Money, { description: 'The amount to pay.' })
  amount!: Money;

  @Field({ description: 'The merchant’s order reference; one live payment per order. The merchant, the operator, and the holder whose card paid (FORBIDDEN to another holder’s app).' })
  orderReference!: string;

  @Field(() => String, { nullable: true, description: 'What is paid for, as the merchant describes it.' })
  description!: string | null;

  @Field(() => JSONObjectResolver, { description: 'The merchant’s own key-value data (string values). The merchant and the operator only (FORBIDDEN to a cardholder app).' })
  metadata!: Record<string, string>;

  @Field(() => PaymentStatusEnum, { description: 'Where the payment stands.' })
  status!: PaymentStatusEnum;

  @Field(() => DateTimeScalar, { description: 'Until when the payment waits for the card.' })
  expiresAt!: Date;

  @Field(() => String, { nullable: true, description: 'FAILED: the last refusal of the holder’s card (e.g. INSUFFICIENT_BALANCE); CANCELED after a lost card answer: CARD_ANSWER_LOST. The merchant, the operator, and the holder whose card paid.' })
  failureCode!: string | null;

  @Field(() => PaymentCancelReasonEnum, { nullable: true, description: 'CANCELED: by the merchant or on expiry.' })
  cancelReason!: PaymentCancelReasonEnum | null;

  @Field(() => Money, { description: 'What has been refunded so far (several partial refunds up to the amount).' })
  refundedAmount!: Money;

  @Field(() => ID, { nullable: true, description: 'Global id of the Card that paid. The merchant, the operator, and the holder whose card paid.' })
  card!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the payment was created.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the card paid.' })
  succeededAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was canceled.' })
  canceledAt!: Date | null;
}

export const PaymentConnection = connectionType(PaymentType, 'Payment');

@InputType({ description: 'A payment to create.' })
export class CreatePaymentInput {
  @Field(() => MinorUnitsScalar, { description: 'The amount in minor units, 1 to 100000.' })
  amount!: bigint;

  @Field(() => CurrencyScalar, { description: 'The merchant’s currency (its city’s).' })
  currency!: string;

  @Field({ description: 'Your order reference (1 to 200 characters): one live payment per order.' })
  orderReference!: string;

  @Field(() => String, { nullable: true, description: 'What is paid for (at most 500 characters), shown to the holder.' })
  description?: string | null;

  @Field(() => JSONObjectResolver, { nullable: true, description: 'Your own data: at most 20 string values; returned with the payment and in its webhooks.' })
  metadata?: Record<string, string> | null;

  @Field({ description: 'Your key for this request (1 to 200 printable ASCII): a retry with it gets the same answer, never a second payment.' })
  idempotencyKey!: string;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Until when to wait for the card: 1 minute to 24 hours from now (default 15 minutes).' })
  expiresAt?: Date | null;
}

@InputType({ description: 'A payment to cancel.' })
export class CancelPaymentInput {
  @Field(() => ID, { description: 'Global id of the Payment.' })
  payment!: string;

  @Field({ description: 'Your key for this request.' })
  idempotencyKey!: string;
}

@InputType({ description: 'A refund of a succeeded payment.' })
export class RefundPaymentInput {
  @Field(() => ID, { description: 'Global id of the Payment.' })
  payment!: string;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'How much; omitted: all that is left to refund.' })
  amount?: bigint | null;

  @Field(() => String, { nullable: true, description: 'Why (at most 500 characters).' })
  reason?: string | null;

  @Field({ description: 'Your key for this request: a retry never refunds twice.' })
  idempotencyKey!: string;
}

@InputType({ description: 'Which payments to list.' })
export class PaymentFilterInput {
  @Field(() => [PaymentStatusEnum], { nullable: true, description: 'Only these statuses.' })
  status?: PaymentStatusEnum[] | null;

  @Field(() => String, { nullable: true, description: 'Only this order reference.' })
  orderReference?: string | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Created at or after.' })
  createdFrom?: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Created before.' })
  createdTo?: Date | null;
}

@ObjectType({ description: 'The result of a payment mutation: the payment, or why not.' })
export class PaymentPayload {
  @Field(() => PaymentType, { nullable: true, description: 'The payment after the change; null when refused.' })
  payment!: PaymentType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The result of refundPayment.' })
export class RefundPaymentPayload {
  @Field(() => PaymentType, { nullable: true, description: 'The payment after the refund; null when refused.' })
  payment!: PaymentType | null;

  @Field(() => PaymentRefundType, { nullable: true, description: 'The refund made; null when refused.' })
  refund!: PaymentRefundType | null;

  @Field(() => [UserError], { description: 'Why the refund was refused; empty on success.' })
  userErrors!: UserError[];
}

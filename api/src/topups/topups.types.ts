import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum TopUpStatusEnum {
  CREATED = 'CREATED',
  AWAITING_PAYMENT = 'AWAITING_PAYMENT',
  PAID = 'PAID',
  LOADED = 'LOADED',
  SPENT = 'SPENT',
  FAILED = 'FAILED',
  CANCELED = 'CANCELED',
  REFUNDING = 'REFUNDING',
  REFUNDED = 'REFUNDED',
}
registerEnumType(TopUpStatusEnum, {
  name: 'TopUpStatus',
  description: 'Where a top-up stands (docs/topups.md has the state diagram).',
  valuesConfig: {
    CREATED: { description: 'Recorded; the payment is being set up at the gateway.' },
    AWAITING_PAYMENT: { description: 'Waiting for the holder to pay at the gateway (paymentUrl).' },
    PAID: { description: 'Paid: a pending load, written onto the card the next time it meets a certified reader (补登).' },
    LOADED: { description: 'On the card: the card’s TAC proved it.' },
    SPENT: { description: 'Spent on a bill instead of being loaded onto the card (payBill with fromTopUp).' },
    FAILED: { description: 'The payment was declined or refused (failureCode); a later successful attempt still makes it PAID.' },
    CANCELED: { description: 'The payment was canceled or expired at the gateway before it was paid.' },
    REFUNDING: { description: 'A refund was asked of the gateway.' },
    REFUNDED: { description: 'The money went back through the gateway; nothing is owed to the card.' },
  },
});

export enum TopUpOriginEnum {
  APP = 'APP',
  COUNTER = 'COUNTER',
  AUTO = 'AUTO',
  TRANSFER = 'TRANSFER',
  REFUND = 'REFUND',
}
registerEnumType(TopUpOriginEnum, {
  name: 'TopUpOrigin',
  description: 'Who asked for the top-up: a cardholder app, the card company at a counter, auto top-up, TRANSFER: the balance of a replaced card, waiting to be loaded onto its replacement; REFUND: a merchant’s refund of a card payment, waiting to be loaded onto the card (neither has a gateway payment behind it).',
  valuesConfig: {
    APP: { description: 'A cardholder app (`createTopUp`, scope card:topup), paid at the gateway.' },
    COUNTER: { description: 'The card company at its counter (`createTopUp`, scope topups:write), paid at the gateway.' },
    AUTO: { description: 'The card’s auto top-up, charged to its saved payment method after a purchase took the purse below the threshold.' },
    TRANSFER: { description: 'The balance of a replaced card, waiting to be loaded onto its replacement; no gateway payment.' },
    REFUND: { description: 'A merchant’s refund of a card payment, waiting to be loaded onto the card; no gateway payment.' },
  },
});

@ObjectType({ description: 'One status change of a top-up, and what caused it.' })
export class TopUpStatusChange {
  @Field(() => TopUpStatusEnum, { nullable: true, description: 'The status before; null for the first.' })
  from!: TopUpStatusEnum | null;

  @Field(() => TopUpStatusEnum, { description: 'The status after.' })
  to!: TopUpStatusEnum;

  @Field({ description: 'What moved it: the create call, a gateway event id, a poll, a card session.' })
  cause!: string;

  @Field(() => DateTimeScalar, { description: 'When.' })
  at!: Date;
}

@ObjectType('TopUp', { implements: Node, description: 'An online top-up of a card: paid at the payment gateway, then written onto the card at a certified reader (补登).' })
export class TopUpType extends Node {
  uuid!: string;
  cardUuid!: string;

  @Field(() => ID, { description: 'Global id of the Card the value is for.' })
  card!: string;

  @Field(() => Money, { description: 'The amount, in the card’s currency.' })
  amount!: Money;

  @Field(() => TopUpStatusEnum, { description: 'Where the top-up stands.' })
  status!: TopUpStatusEnum;

  @Field(() => TopUpOriginEnum, { description: 'Who asked for it.' })
  origin!: TopUpOriginEnum;

  @Field(() => String, { nullable: true, description: 'The gateway’s hosted page where the holder pays (while AWAITING_PAYMENT).' })
  paymentUrl!: string | null;

  // clientSecret is resolved from the row on every read (TopUpResolver.clientSecret): never part of a stored answer.

  @Field(() => String, { nullable: true, description: 'Why the payment failed (the gateway’s decline code), or why a refund failed.' })
  failureCode!: string | null;

  @Field(() => String, { nullable: true, description: 'The gateway’s message about the failure; for developers, not end users.' })
  failureMessage!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the top-up was created.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the gateway confirmed the payment.' })
  paidAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the card took the load.' })
  loadedAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When the refund completed.' })
  refundedAt!: Date | null;
}

export const TopUpConnection = connectionType(TopUpType, 'TopUp');

@InputType({ description: 'A top-up to create.' })
export class CreateTopUpInput {
  @Field(() => ID, { description: 'Global id of the Card: your cardholder’s registered card (app, scope card:topup), or one your card company issued (counter, scope topups:write).' })
  card!: string;

  @Field(() => MinorUnitsScalar, { description: 'The amount in minor units of the card’s currency, within the top-up limits.' })
  amount!: bigint;

  @Field({ description: 'Your key for this top-up (1 to 200 printable ASCII): the same key and request returns the first answer, never a second charge (docs/api-conventions.md#idempotency).' })
  idempotencyKey!: string;

  @Field(() => String, { nullable: true, description: 'A saved payment method at the gateway (pm_…): charged at once. Without it, the holder pays at paymentUrl.' })
  paymentMethod?: string | null;
}

@InputType({ description: 'A paid top-up to refund through the gateway.' })
export class RefundTopUpInput {
  @Field(() => ID, { description: 'Global id of the TopUp.' })
  topUp!: string;

  @Field({ description: 'Your key for this refund (1 to 200 printable ASCII): the same key and request returns the first answer, never a second refund (docs/api-conventions.md#idempotency).' })
  idempotencyKey!: string;
}

@InputType({ description: 'How the card company settled a pending load the card could not settle itself.' })
export class ResolvePendingLoadInput {
  @Field(() => ID, { description: 'Global id of the TopUp (PAID, its write onto the card started).' })
  topUp!: string;

  @Field({ description: 'True: the card holds it (booked onto the card’s purse, LOADED). False: it does not (the claim is released; it can be written again or refunded).' })
  loaded!: boolean;

  @Field({ description: 'How it was established (kept in the top-up’s history), 1 to 500 characters.' })
  note!: string;

  @Field(() => String, {
    nullable: true,
    description:
      'With loaded: true, the proof: the TAC (8 hex digits) the card answered GET TRANSACTION PROVE with for this load (docs/readers.md). It is verified with the card’s key; one that does not prove this load is refused (INVALID_INPUT on tac). A load settled with it is booked once however the card proves it again.',
  })
  tac?: string | null;

  @Field({ description: 'Your key for this request.' })
  idempotencyKey!: string;
}

@ObjectType({ description: 'The result of a top-up mutation: the top-up, or why not. A GATEWAY_UNAVAILABLE or PAYMENT_DECLINED error comes with the top-up as it stands.' })
export class TopUpPayload {
  @Field(() => TopUpType, { nullable: true, description: 'The top-up; null when refused before one was recorded.' })
  topUp!: TopUpType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'A card’s auto top-up: when its purse falls below the threshold after a purchase, the amount is charged to the saved payment method and becomes a pending load.' })
export class AutoTopUpType {
  @Field(() => Money, { description: 'Below this balance (after a purchase) a top-up is made, and a card.low_balance event is sent.' })
  threshold!: Money;

  @Field(() => Money, { description: 'The amount topped up each time.' })
  amount!: Money;

  @Field({ description: 'The saved payment method at the gateway (pm_…).' })
  paymentMethod!: string;

  @Field({ description: 'Off: only the low-balance event is sent.' })
  enabled!: boolean;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it last made a top-up.' })
  lastTriggeredAt!: Date | null;
}

@InputType({ description: 'Auto top-up settings of a card.' })
export class SetAutoTopUpInput {
  @Field(() => ID, { description: 'Global id of your cardholder’s registered Card.' })
  card!: string;

  @Field(() => MinorUnitsScalar, { description: 'The balance below which to top up, in minor units.' })
  threshold!: bigint;

  @Field(() => MinorUnitsScalar, { description: 'The amount to top up, in minor units, within the top-up limits.' })
  amount!: bigint;

  @Field({ description: 'The saved payment method at the gateway (pm_…).' })
  paymentMethod!: string;

  @Field({ description: 'On or off.' })
  enabled!: boolean;
}

@ObjectType({ description: 'The result of setAutoTopUp.' })
export class AutoTopUpPayload {
  @Field(() => AutoTopUpType, { nullable: true, description: 'The settings as saved; null when refused.' })
  autoTopUp!: AutoTopUpType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

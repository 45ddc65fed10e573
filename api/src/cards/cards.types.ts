import { LocalDateResolver } from 'graphql-scalars';
import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ConnectionArgs, connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { CardTypeEnum } from '../readers/session/card-session.types.js';

// The chip technology enum is the card sessions' own (`CardType`): one enum for both contexts.
export { CardTypeEnum };


export enum CardStatusEnum {
  ACTIVE = 'ACTIVE',
  LOST = 'LOST',
  BLOCKED = 'BLOCKED',
  REPLACED = 'REPLACED',
  EXPIRED = 'EXPIRED',
}
registerEnumType(CardStatusEnum, {
  name: 'CardStatus',
  description: 'ACTIVE cards may be used. LOST (reported lost) and BLOCKED (by the card company) may become ACTIVE again or REPLACED; REPLACED and EXPIRED are final.',
  valuesConfig: {
    ACTIVE: { description: 'In use: card sessions and terminals accept it.' },
    LOST: { description: 'Reported lost (挂失): on the blacklist; `reportCardFound` makes it ACTIVE again, `replaceCard` replaces it.' },
    BLOCKED: { description: 'Blocked by its card company: on the blacklist; `unblockCard` makes it ACTIVE again, `replaceCard` replaces it.' },
    REPLACED: { description: 'Replaced by another card (补卡): its balance moves to the replacement. Final.' },
    EXPIRED: { description: 'Past its `expiresOn`. Final.' },
  },
});

export enum ConcessionEnum {
  ADULT = 'ADULT',
  STUDENT = 'STUDENT',
  SENIOR = 'SENIOR',
}
registerEnumType(ConcessionEnum, {
  name: 'Concession',
  description: 'The fare concession of a card: ADULT (none), STUDENT (with a validity and a proof reference) or SENIOR.',
  valuesConfig: {
    ADULT: { description: 'No concession: full fares.' },
    STUDENT: { description: 'Student fares, until `concessionValidUntil`, on the proof named by `concessionProof`.' },
    SENIOR: { description: 'Senior fares.' },
  },
});

@ObjectType('Card', { implements: Node, description: 'A city card issued by a card company: CPU or M1, optionally registered (记名) to a cardholder.' })
export class CardType extends Node {
  uuid!: string;
  asnValue!: string;
  currency!: string;

  @Field({ description: 'The printed card number: in full for its card company and the operator, otherwise masked but for the last 4 digits ("**** **** **** 1234").' })
  number!: string;

  @Field({ description: 'The application serial number the chip reports (20 hex digits), or an M1 card’s 8-hex-digit UID.' })
  asn!: string;

  @Field(() => CardTypeEnum, { description: 'The chip technology.' })
  cardType!: CardTypeEnum;

  @Field(() => Int, { description: 'The version of the card company’s master keys the card’s keys are diversified from.' })
  keyVersion!: number;

  @Field(() => LocalDateResolver, { description: 'The day the card was issued.' })
  issuedOn!: string;

  @Field(() => LocalDateResolver, { description: 'The last day the card is valid.' })
  expiresOn!: string;

  @Field(() => CardStatusEnum, { description: 'Where the card stands; changes only along the allowed transitions.' })
  status!: CardStatusEnum;

  @Field(() => ID, { description: 'Global id of the CardCompany that issued the card.' })
  cardCompany!: string;

  @Field(() => ID, { nullable: true, description: 'Global id of the Cardholder a registered card (记名卡) names; null for an anonymous card.' })
  holder!: string | null;

  @Field(() => ConcessionEnum, { description: 'The fare concession of the card.' })
  concession!: ConcessionEnum;

  @Field(() => LocalDateResolver, { nullable: true, description: 'For a STUDENT concession: the last day it applies.' })
  concessionValidUntil!: string | null;

  @Field(() => String, { nullable: true, description: 'For a STUDENT concession: the reference of the proof seen (card company and operator only).' })
  concessionProof!: string | null;

  /** The internal id of the card that replaced this one; `replacedBy` resolves it. */
  replacedById!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the card was issued in the system.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When the status last changed.' })
  statusChangedAt!: Date;
}

export const CardConnection = connectionType(CardType, 'Card');

export enum CardActivityKindEnum {
  COUNTER_LOAD = 'COUNTER_LOAD',
  TOP_UP_LOAD = 'TOP_UP_LOAD',
  PURCHASE = 'PURCHASE',
  PAYMENT = 'PAYMENT',
  BILL_PAYMENT = 'BILL_PAYMENT',
  REFUND = 'REFUND',
  TRANSFER_IN = 'TRANSFER_IN',
  TRANSFER_OUT = 'TRANSFER_OUT',
  TRANSIT = 'TRANSIT',
  ADJUSTMENT = 'ADJUSTMENT',
}
registerEnumType(CardActivityKindEnum, {
  name: 'CardActivityKind',
  description: 'What moved value on or off a card’s purse.',
  valuesConfig: {
    COUNTER_LOAD: { description: 'Value loaded at the card company’s counter (圈存).' },
    TOP_UP_LOAD: { description: 'A paid online top-up written onto the card at a reader (补登).' },
    PURCHASE: { description: 'A purchase (消费) on a merchant’s reader.' },
    PAYMENT: { description: 'A merchant payment with an order reference.' },
    BILL_PAYMENT: { description: 'A utility bill paid from the card.' },
    REFUND: { description: 'A refund back onto the card.' },
    TRANSFER_IN: { description: 'The balance of the card this one replaced, moved here.' },
    TRANSFER_OUT: { description: 'This replaced card’s balance, moved to its replacement.' },
    TRANSIT: { description: 'A bus or metro fare, from a terminal’s offline upload.' },
    ADJUSTMENT: { description: 'A correction by the card company or the operator.' },
  },
});

@ObjectType('CardActivity', { implements: Node, description: 'One movement of a card’s purse (its host shadow, a ledger account), as the card sees it.' })
export class CardActivity extends Node {
  @Field(() => DateTimeScalar, { description: 'When the movement was posted.' })
  at!: Date;

  @Field(() => CardActivityKindEnum, { description: 'What moved the purse.' })
  kind!: CardActivityKindEnum;

  @Field(() => Money, { description: 'Signed from the card’s view: a load positive, a purchase negative.' })
  amount!: Money;

  @Field(() => Money, { description: 'The purse balance right after this movement.' })
  balanceAfter!: Money;

  @Field({ description: 'What the movement was, as the ledger entry describes it.' })
  description!: string;

  @Field(() => ID, { nullable: true, description: 'Global id of what caused it (a top-up, a card session, a balance transfer), when there is one.' })
  reference!: string | null;
}

export const CardActivityConnection = connectionType(CardActivity, 'CardActivity');

@ArgsType()
export class CardHistoryArgs extends ConnectionArgs {
  @Field(() => [CardActivityKindEnum], { nullable: true, description: 'Only these kinds (omitted or empty: every kind).' })
  kinds?: CardActivityKindEnum[] | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'From this instant, inclusive (default: six months before `to`).' })
  from?: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'Up to this instant, exclusive (default: now). At most 13 months after `from`.' })
  to?: Date | null;
}

@ObjectType('BalanceTransfer', { implements: Node, description: 'The move of a replaced card’s purse balance to its replacement, made once the wait for offline transactions is over.' })
export class BalanceTransferType extends Node {
  @Field(() => ID, { description: 'Global id of the replaced Card.' })
  fromCard!: string;

  @Field(() => ID, { description: 'Global id of the replacement Card.' })
  toCard!: string;

  @Field(() => DateTimeScalar, { description: 'When the balance moves: offline transactions of the old card arriving until then are still counted.' })
  dueAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it moved; null while it waits.' })
  transferredAt!: Date | null;

  @Field(() => Money, { nullable: true, description: 'What moved (zero for an empty purse); null while it waits.' })
  amount!: Money | null;
}

@InputType({ description: 'The replacement card’s own particulars; its card company, cardholder and concession are the old card’s.' })
export class NewCardInput {
  @Field({ description: 'The printed card number: 16 to 19 digits with a valid Luhn check digit.' })
  cardNumber!: string;

  @Field({ description: 'The application serial number: 20 hex digits for a CPU card, the 8-hex-digit UID for an M1 card.' })
  asn!: string;

  @Field(() => CardTypeEnum, { description: 'The chip technology.' })
  cardType!: CardTypeEnum;

  @Field(() => Int, { description: 'The master key version the card was personalised with (0 to 255).' })
  keyVersion!: number;

  @Field(() => LocalDateResolver, { description: 'The day of issue.' })
  issuedOn!: string;

  @Field(() => LocalDateResolver, { description: 'The last day the card is valid; after issuedOn.' })
  expiresOn!: string;
}

@InputType({ description: 'A card to issue: its card company is the caller’s.' })
/** The card's own particulars (those a replacement card gives too), and who and what fare it is for. */
export class IssueCardInput extends NewCardInput {
  @Field(() => ConcessionEnum, { nullable: true, description: 'The fare concession (default ADULT).' })
  concession?: ConcessionEnum | null;

  @Field(() => LocalDateResolver, { nullable: true, description: 'For STUDENT only, and required then: the last day the concession applies.' })
  concessionValidUntil?: string | null;

  @Field(() => String, { nullable: true, description: 'For STUDENT only, and required then: the reference of the proof seen (student card, school letter).' })
  concessionProof?: string | null;

  @Field(() => ID, { nullable: true, description: 'Global id of the Cardholder, to issue a registered card (记名卡).' })
  holder?: string | null;
}

@InputType({ description: 'A card whose status to change, and why.' })
export class CardStatusInput {
  @Field(() => ID, { description: 'Global id of the Card.' })
  card!: string;

  @Field(() => String, { nullable: true, description: 'Why; kept in the card’s status history.' })
  reason?: string | null;
}

@ObjectType({ description: 'The result of a card mutation: the card, or why not.' })
export class CardPayload {
  @Field(() => CardType, { nullable: true, description: 'The card after the change; null when refused.' })
  card!: CardType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

@InputType({ description: 'A card to replace (补卡), and its replacement.' })
export class ReplaceCardInput {
  @Field(() => ID, { description: 'Global id of the Card to replace: ACTIVE, LOST or BLOCKED.' })
  card!: string;

  @Field(() => NewCardInput, { description: 'The replacement card’s number, ASN, chip technology, key version and validity.' })
  newCard!: NewCardInput;

  @Field(() => String, { nullable: true, description: 'Why; kept in the old card’s status history and blacklist entry.' })
  reason?: string | null;
}

@ObjectType({ description: 'The result of replaceCard: the new card, the old one, and the scheduled balance transfer, or why not.' })
export class ReplaceCardPayload {
  @Field(() => CardType, { nullable: true, description: 'The new card; null when refused.' })
  card!: CardType | null;

  @Field(() => CardType, { nullable: true, description: 'The old card, now REPLACED; null when refused.' })
  oldCard!: CardType | null;

  @Field(() => BalanceTransferType, { nullable: true, description: 'The old card’s balance transfer to the new one, waiting until its due time; null when refused.' })
  balanceTransfer!: BalanceTransferType | null;

  @Field(() => [UserError], { description: 'Why the mutation was refused; empty on success.' })
  userErrors!: UserError[];
}

export enum BlacklistActionEnum {
  ADD = 'ADD',
  REMOVE = 'REMOVE',
}
registerEnumType(BlacklistActionEnum, {
  name: 'BlacklistAction',
  description: 'ADD puts a card on the blacklist (reported LOST, BLOCKED, or REPLACED while ACTIVE); REMOVE takes it off (found or unblocked).',
  valuesConfig: {
    ADD: { description: 'The card goes on the blacklist: terminals refuse it.' },
    REMOVE: { description: 'The card comes off the blacklist: terminals accept it again.' },
  },
});

@ObjectType({ description: 'One change to the card blacklist: a card (by its ASN) added or removed.' })
export class BlacklistEntry {
  @Field(() => Int, { description: 'The change’s version: increasing, from one sequence; ask for changes after the highest you hold.' })
  version!: number;

  @Field({ description: 'The application serial number the chip reports (or an M1 card’s UID): what a terminal matches.' })
  asn!: string;

  @Field(() => BlacklistActionEnum, { description: 'Whether the card was added to or removed from the blacklist.' })
  action!: BlacklistActionEnum;

  @Field(() => String, { nullable: true, description: 'Why, as given with the card’s status change.' })
  reason!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the change was made.' })
  at!: Date;

  @Field(() => ID, { description: 'Global id of the Card.' })
  card!: string;

  @Field(() => ID, { description: 'Global id of the CardCompany that issued the card.' })
  cardCompany!: string;
}

@ObjectType({ description: 'The blacklist changes after a version, for a terminal to apply in order.' })
export class BlacklistDelta {
  @Field(() => [BlacklistEntry], { description: 'The changes with a version above `since`, in version order (at most `first`).' })
  entries!: BlacklistEntry[];

  @Field(() => Int, { description: 'The highest version you may see (0 when none): pass it as `since` next time once hasMore is false.' })
  latestVersion!: number;

  @Field({ description: 'True when more changes follow the last entry: ask again with its version as `since`.' })
  hasMore!: boolean;
}

import { LocalDateResolver } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
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
});

export enum ConcessionEnum {
  ADULT = 'ADULT',
  STUDENT = 'STUDENT',
  SENIOR = 'SENIOR',
}
registerEnumType(ConcessionEnum, { name: 'Concession', description: 'The fare concession of a card: ADULT (none), STUDENT (with a validity and a proof reference) or SENIOR.' });

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

  @Field(() => ID, { nullable: true, description: 'Global id of the Card that replaced this one, once REPLACED.' })
  replacedBy!: string | null;

  @Field(() => DateTimeScalar, { description: 'When the card was issued in the system.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When the status last changed.' })
  statusChangedAt!: Date;
}

export const CardConnection = connectionType(CardType, 'Card');

@InputType({ description: 'A card to issue: its card company is the caller’s.' })
export class IssueCardInput {
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

export enum BlacklistActionEnum {
  ADD = 'ADD',
  REMOVE = 'REMOVE',
}
registerEnumType(BlacklistActionEnum, {
  name: 'BlacklistAction',
  description: 'ADD puts a card on the blacklist (reported LOST or BLOCKED); REMOVE takes it off (found or unblocked).',
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

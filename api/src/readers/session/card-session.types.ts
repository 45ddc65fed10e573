import { JSONObjectResolver } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Node } from '../../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../../graphql/scalars.js';
import { UserError } from '../../graphql/user-error.js';

export enum CardOperationEnum {
  BALANCE = 'BALANCE',
  LOAD = 'LOAD',
  PURCHASE = 'PURCHASE',
}
registerEnumType(CardOperationEnum, { name: 'CardOperation', description: 'What a card session does: read the balance, load value onto the card (圈存), or take a purchase from it (消费).' });

export enum CardSessionStateEnum {
  OPEN = 'OPEN',
  AUTHENTICATED = 'AUTHENTICATED',
  AWAITING_TAC = 'AWAITING_TAC',
  AWAITING_PURSE = 'AWAITING_PURSE',
  AWAITING_WRITE = 'AWAITING_WRITE',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}
registerEnumType(CardSessionStateEnum, { name: 'CardSessionState' });

export enum CardTypeEnum {
  CPU = 'CPU',
  M1 = 'M1',
}
registerEnumType(CardTypeEnum, { name: 'CardType', description: 'CPU: a PBOC e-purse card (APDUs, MACs, TAC). M1: a MIFARE Classic card, driven by sealed scripts.' });

@ObjectType('CardSession', { implements: Node, description: 'One card-present operation through one certified reader (docs/readers.md).' })
export class CardSessionType extends Node {
  @Field(() => CardOperationEnum)
  operation!: CardOperationEnum;

  @Field(() => CardSessionStateEnum)
  state!: CardSessionStateEnum;

  @Field({ description: 'Hex; the reader signs it in its first message.' })
  challenge!: string;

  @Field(() => Int, { description: 'The sequence number the next reader message must carry.' })
  nextSeq!: number;

  @Field(() => DateTimeScalar)
  expiresAt!: Date;

  @Field(() => ID, { description: 'Global id of the Reader.' })
  reader!: string;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'For a load or a purchase: the amount.' })
  amount!: bigint | null;

  @Field(() => JSONObjectResolver, { nullable: true, description: 'When COMPLETED: what the card said (asn, balances, counters, terminal serial, TAC).' })
  result!: Record<string, unknown> | null;

  @Field(() => String, { nullable: true, description: 'When FAILED: the step that refused (e.g. BAD_SIGNATURE, WRONG_MAC1, INSUFFICIENT_BALANCE).' })
  refusal!: string | null;
}

@ObjectType('SealedReaderCommand', { description: 'An APDU only the reader can read: AES-256-GCM under a key wrapped with RSA-OAEP-SHA256 to its device key. Associated data: `<session id>:<seq>`.' })
export class SealedCommandType {
  @Field() wrappedKey!: string;
  @Field() iv!: string;
  @Field() ciphertext!: string;
  @Field() tag!: string;
}

@ObjectType('ReaderCommand', { description: 'One command for the reader to send to the card: a plain APDU (hex) or a sealed one.' })
export class ReaderCommandType {
  @Field(() => String, { nullable: true })
  apdu!: string | null;

  @Field(() => SealedCommandType, { nullable: true })
  sealed!: SealedCommandType | null;

  @Field(() => Boolean, { nullable: true, description: 'M1 cards: the reader answers with the card UID (hex).' })
  readUid!: boolean | null;

  @Field(() => SealedCommandType, { nullable: true, description: 'M1 cards: a sealed JSON script (authenticate, read, increment/decrement, transfer, write); the reader answers with the JSON list of step results.' })
  sealedScript!: SealedCommandType | null;
}

@InputType()
export class OpenCardSessionInput {
  @Field(() => ID, { description: 'Global id of the Reader the card is at.' })
  reader!: string;

  @Field(() => CardOperationEnum)
  operation!: CardOperationEnum;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'For LOAD and PURCHASE: the amount, in minor units.' })
  amount?: bigint | null;

  @Field(() => CardTypeEnum, { nullable: true, description: 'The kind of card at the reader (default CPU).' })
  cardType?: CardTypeEnum | null;

  @Field(() => ID, { nullable: true, description: 'For LOAD: global id of a PAID TopUp to write onto its card (补登); the amount is the top-up’s.' })
  topUp?: string | null;

  @Field(() => ID, { nullable: true, description: 'For PURCHASE: global id of a merchant’s Payment the card pays; the amount is the payment’s.' })
  payment?: string | null;

  @Field(() => ID, { nullable: true, description: 'For PURCHASE: global id of a BillPayment (from payBill) the card pays; the amount is the bill payment’s.' })
  billPayment?: string | null;
}

@InputType()
export class CardSessionMessageInput {
  @Field(() => ID)
  session!: string;

  @Field(() => Int, { description: '0 for the hello, then 1, 2, ... in order.' })
  seq!: number;

  @Field({ description: 'The message as the reader signed it (JSON).' })
  body!: string;

  @Field({ description: 'Base64 RSA-SHA256 signature by the device key over `onecard-card-session-v1\\n<session id>\\n<seq>\\n<body>`, the session id being its global id.' })
  signature!: string;
}

@ObjectType()
export class CardSessionPayload {
  @Field(() => CardSessionType, { nullable: true })
  session!: CardSessionType | null;

  @Field(() => [ReaderCommandType], { description: 'What the reader sends to the card next; empty when the session is over.' })
  commands!: ReaderCommandType[];

  @Field(() => [UserError])
  userErrors!: UserError[];
}

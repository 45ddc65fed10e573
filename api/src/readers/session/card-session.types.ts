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
registerEnumType(CardOperationEnum, {
  name: 'CardOperation',
  description: 'What a card session does: read the balance, load value onto the card (圈存), or take a purchase from it (消费).',
  valuesConfig: {
    BALANCE: { description: 'Read the card’s purse balance; moves no money.' },
    LOAD: { description: 'Load value onto the card (圈存): at the card company’s counter, or writing a PAID top-up (补登).' },
    PURCHASE: { description: 'Take value off the card (消费): a merchant’s purchase or Payment, or a BillPayment.' },
  },
});

export enum CardSessionStateEnum {
  OPEN = 'OPEN',
  AUTHENTICATED = 'AUTHENTICATED',
  AWAITING_TAC = 'AWAITING_TAC',
  AWAITING_PROOF = 'AWAITING_PROOF',
  AWAITING_PURSE = 'AWAITING_PURSE',
  AWAITING_WRITE = 'AWAITING_WRITE',
  COMPLETED = 'COMPLETED',
  FAILED = 'FAILED',
}
registerEnumType(CardSessionStateEnum, {
  name: 'CardSessionState',
  description: 'Where a card session stands. It ends COMPLETED or FAILED; every other state waits for the next reader message.',
  valuesConfig: {
    OPEN: { description: 'Opened; waits for the reader’s signed hello (seq 0) with its certificates.' },
    AUTHENTICATED: { description: 'The reader’s hello was accepted; waits for the card’s answers to the first commands.' },
    AWAITING_TAC: { description: 'CPU card: the sealed CREDIT FOR LOAD or DEBIT FOR PURCHASE was sent; waits for the card’s answer with the TAC.' },
    AWAITING_PROOF: { description: 'CPU card: the card has an earlier load or purchase whose answer never reached the host; GET TRANSACTION PROVE was sent, and the card’s proof (its TAC) settles it before this session goes on.' },
    AWAITING_PURSE: { description: 'M1 card: the UID was read; waits for the results of the sealed purse-read script.' },
    AWAITING_WRITE: { description: 'M1 card: the sealed write script was sent; waits for its results.' },
    COMPLETED: { description: 'Done: `result` holds what the card said, and the load or purchase is booked. Final.' },
    FAILED: { description: 'Refused: `refusal` names the check; nothing the refused step wrote was kept. Final.' },
  },
});

export enum CardTypeEnum {
  CPU = 'CPU',
  M1 = 'M1',
}
registerEnumType(CardTypeEnum, {
  name: 'CardType',
  description: 'CPU: a PBOC e-purse card (APDUs, MACs, TAC). M1: a MIFARE Classic card, driven by sealed scripts.',
  valuesConfig: {
    CPU: { description: 'A PBOC / CJ/T 166 e-purse CPU card: driven by APDUs, secured by MACs and a TAC.' },
    M1: { description: 'A MIFARE Classic card: driven by sealed scripts; identified by its 8-hex-digit UID.' },
  },
});

@ObjectType('CardSession', { implements: Node, description: 'One card-present operation through one certified reader (docs/readers.md).' })
export class CardSessionType extends Node {
  @Field(() => CardOperationEnum, { description: 'What the session does.' })
  operation!: CardOperationEnum;

  @Field(() => CardSessionStateEnum, { description: 'Where the session stands.' })
  state!: CardSessionStateEnum;

  @Field({ description: 'Hex; the reader signs it in its first message.' })
  challenge!: string;

  @Field(() => Int, { description: 'The sequence number the next reader message must carry.' })
  nextSeq!: number;

  @Field(() => DateTimeScalar, { description: 'When the session expires: 120 s after opening; no message extends it.' })
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
  @Field({ description: 'Base64: the one-time AES-256 key, wrapped with RSA-OAEP (SHA-256) to the reader’s device key.' }) wrappedKey!: string;
  @Field({ description: 'Base64: the 12-byte AES-GCM IV.' }) iv!: string;
  @Field({ description: 'Base64: the encrypted command.' }) ciphertext!: string;
  @Field({ description: 'Base64: the 16-byte AES-GCM authentication tag.' }) tag!: string;
}

export enum ApplicationSelectionKindEnum {
  AID = 'AID',
  PSE = 'PSE',
  PATH = 'PATH',
}
registerEnumType(ApplicationSelectionKindEnum, {
  name: 'ApplicationSelectionKind',
  description: 'One way to reach a CPU card’s e-purse application (CARD-PROTOCOL.md §1).',
  valuesConfig: {
    AID: { description: 'SELECT by DF name: `value` is the AID, hex (5 to 16 bytes), e.g. A000000632010105 (T-Union / 交通联合).' },
    PSE: { description: 'SELECT the payment system environment by name (`value`, e.g. 1PAY.SYS.DDF01), then the applications its directory lists, in order.' },
    PATH: { description: 'SELECT by file id, one after the other: `value` is the path, e.g. 3F00/1001.' },
  },
});

@ObjectType('ApplicationSelection', { description: 'One way to select the e-purse application, as a card profile lists them and a reader tries them.' })
export class ApplicationSelectionType {
  @Field(() => ApplicationSelectionKindEnum, { description: 'By AID, through the PSE, or by path.' })
  kind!: ApplicationSelectionKindEnum;

  @Field(() => String, { description: 'The AID (hex), the PSE name, or the path (file ids joined by /).' })
  value!: string;
}

@ObjectType('ReaderCommand', { description: 'One command for the reader to send to the card: a plain APDU (hex) or a sealed one.' })
export class ReaderCommandType {
  @Field(() => String, { nullable: true, description: 'A plain APDU (hex), to send to the card as is.' })
  apdu!: string | null;

  @Field(() => SealedCommandType, { nullable: true, description: 'An APDU the reader opens with its device key before sending it to the card (it carries a MAC).' })
  sealed!: SealedCommandType | null;

  @Field(() => Boolean, { nullable: true, description: 'M1 cards: the reader answers with the card UID (hex).' })
  readUid!: boolean | null;

  @Field(() => SealedCommandType, { nullable: true, description: 'M1 cards: a sealed JSON script (authenticate, read, increment/decrement, transfer, write); the reader answers with the JSON list of step results.' })
  sealedScript!: SealedCommandType | null;

  @Field(() => [ApplicationSelectionType], { nullable: true, description: 'CPU cards: the ways to select the application, in the card profile’s order; the reader tries each until the card accepts one and answers with that SELECT’s answer. `apdu` holds the first one’s SELECT, for readers that predate profiles.' })
  select!: ApplicationSelectionType[] | null;
}

@InputType({ description: 'A card session to open: the reader, the operation and, for LOAD and PURCHASE, the amount or what it pays.' })
export class OpenCardSessionInput {
  @Field(() => ID, { description: 'Global id of the Reader the card is at.' })
  reader!: string;

  @Field(() => CardOperationEnum, { description: 'What the session will do; decides who may open it.' })
  operation!: CardOperationEnum;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'For LOAD and PURCHASE: the amount, in minor units.' })
  amount?: bigint | null;

  @Field(() => CardTypeEnum, { nullable: true, description: 'The kind of card at the reader (default CPU).' })
  cardType?: CardTypeEnum | null;

  @Field(() => ID, { nullable: true, description: 'For LOAD: global id of a PAID TopUp to write onto its card (补登); the amount is the top-up’s.' })
  topUp?: string | null;

  @Field(() => [ID], { nullable: true, description: 'For LOAD: the card’s pending loads the holder confirmed (global ids of PAID TopUps, as `Card.pendingLoads` lists them), written onto the card together in this one session (补登); the amount is their sum.' })
  pendingLoads?: string[] | null;

  @Field(() => ID, { nullable: true, description: 'For PURCHASE: global id of a merchant’s Payment the card pays; the amount is the payment’s.' })
  payment?: string | null;

  @Field(() => ID, { nullable: true, description: 'For PURCHASE: global id of a BillPayment (from payBill) the card pays; the amount is the bill payment’s.' })
  billPayment?: string | null;
}

@InputType({ description: 'One signed reader message, relayed by the client that opened the session.' })
export class CardSessionMessageInput {
  @Field(() => ID, { description: 'Global id of the CardSession (the `id` openCardSession returned).' })
  session!: string;

  @Field(() => Int, { description: '0 for the hello, then 1, 2, ... in order.' })
  seq!: number;

  @Field({ description: 'The message as the reader signed it (JSON).' })
  body!: string;

  @Field({ description: 'Base64 RSA-SHA256 signature by the device key over `onecard-card-session-v1\\n<session id>\\n<seq>\\n<body>`, the session id being its global id.' })
  signature!: string;
}

@ObjectType({ description: 'What the host sends the reader, signed: the reader verifies it before it touches the card, and acts on `payload` only.' })
export class HostMessageType {
  @Field({ description: 'JSON: `protocol` (onecard-host-v1), `session` (global id), `reader` (its serial), `seq` (of the reader message this answers), `state`, `commands`, `result`, `expiresAt` (the session’s expiry, ISO 8601: the reader runs no command after it).' })
  payload!: string;

  @Field({ description: 'Base64 ECDSA P-256 / SHA-256 (DER) signature over the payload’s UTF-8 bytes, by the host key.' })
  signature!: string;

  @Field(() => [String], { description: 'PEM: the host certificate (server profile, issued by the reader’s city working CA), then that CA’s certificate.' })
  certificateChain!: string[];
}

@ObjectType({ description: 'The session after the step, and the commands for the card; or why the step was refused.' })
export class CardSessionPayload {
  @Field(() => CardSessionType, { nullable: true, description: 'The session after this step (FAILED with `refusal` when a step was refused); null when it could not be opened or found.' })
  session!: CardSessionType | null;

  @Field(() => [ReaderCommandType], { description: 'What the reader sends to the card next; empty when the session is over.' })
  commands!: ReaderCommandType[];

  @Field(() => HostMessageType, { nullable: true, description: 'The step’s outcome and commands as the host signed them for the reader (null when no step was accepted).' })
  hostMessage?: HostMessageType | null;

  @Field(() => [UserError], { description: 'Why the session was not opened, or why the step was refused (CARD_SESSION_REFUSED); empty on success.' })
  userErrors!: UserError[];
}

import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum OfflineOutcomeEnum {
  ACCEPTED = 'ACCEPTED',
  DUPLICATE = 'DUPLICATE',
  GAP = 'GAP',
  BAD_TAC = 'BAD_TAC',
  UNKNOWN_CARD_ISSUER = 'UNKNOWN_CARD_ISSUER',
  REFUSED_INSUFFICIENT_SHADOW = 'REFUSED_INSUFFICIENT_SHADOW',
}
registerEnumType(OfflineOutcomeEnum, {
  name: 'OfflineOutcome',
  description: 'What became of one offline record. ACCEPTED and GAP (accepted, but counters before it are missing) were posted; the others were recorded, not posted.',
  valuesConfig: {
    ACCEPTED: { description: 'The TAC verifies with the card’s key: posted from the card purse to the terminal owner’s account (card activity TRANSIT).' },
    DUPLICATE: { description: 'This card and counter was accepted before (in this or another batch); not posted again.' },
    GAP: { description: 'Accepted and posted, but the card’s counter jumped: purchases in between have not arrived (the reason names them).' },
    BAD_TAC: { description: 'The TAC does not prove this purchase; not posted.' },
    UNKNOWN_CARD_ISSUER: { description: 'No card company for the card’s city code; not posted.' },
    REFUSED_INSUFFICIENT_SHADOW: { description: 'The card’s ledger purse does not cover it (value that never went through the ledger); not posted.' },
  },
});

@InputType({ description: 'A terminal’s signed batch of offline purchases, as the terminal made it.' })
export class UploadOfflineBatchInput {
  @Field(() => ID, { description: 'The terminal: a certified reader owned by a card company or a merchant.' })
  terminal!: string;

  @Field({ description: 'The terminal’s own id for the batch; the same batch sent again answers what was stored.' })
  batchId!: string;

  @Field({ description: 'JSON `{ records: [{ asn, cardCity, offlineCounter, amount, terminalSerial, date, time, tac, keyVersion? }] }`, exactly as signed.' })
  body!: string;

  @Field({ description: 'Base64 RSA-SHA256 by the terminal’s device key over `onecard-offline-batch-v1\\n<terminal id>\\n<batchId>\\n<body>`.' })
  signature!: string;

  @Field({ description: 'The terminal’s city certificate (PEM).' })
  certificate!: string;
}

@ObjectType({ description: 'The answer to one record of an offline batch.' })
export class OfflineRecordResultType {
  @Field(() => Int, { description: 'The record’s place in the body, from 0.' })
  index!: number;

  @Field({ description: 'The card’s application serial number, as the record gives it.' })
  asn!: string;

  @Field(() => Int, { description: 'The card’s offline counter before the purchase, as the record gives it.' })
  offlineCounter!: number;

  @Field(() => MinorUnitsScalar, { description: 'The purchase amount in minor units, as the record gives it.' })
  amount!: bigint;

  @Field(() => OfflineOutcomeEnum, { description: 'What became of the record.' })
  outcome!: OfflineOutcomeEnum;

  @Field({ description: 'Whether the record was posted (ACCEPTED or GAP).' })
  accepted!: boolean;

  @Field({ description: 'Why this outcome, in a sentence for the developer (e.g. the missing counters of a GAP).' })
  reason!: string;

  @Field(() => ID, { nullable: true, description: 'The ledger entry of a posted record.' })
  journalEntry!: string | null;
}

@ObjectType({ description: 'An offline batch as stored, with the answer to each of its records.' })
export class OfflineBatchType {
  @Field(() => ID, { description: 'Global id of the stored batch (there is no query for stored batches yet).' })
  id!: string;

  @Field(() => ID, { description: 'Global id of the terminal (a Reader) that made the batch.' })
  terminal!: string;

  @Field({ description: 'The terminal’s own id for the batch, as uploaded.' })
  batchId!: string;

  @Field(() => DateTimeScalar, { description: 'When the batch was first received.' })
  receivedAt!: Date;

  @Field(() => [OfflineRecordResultType], { description: 'One answer per record, in the body’s order.' })
  records!: OfflineRecordResultType[];
}

@ObjectType({ description: 'The batch as stored with an answer per record, or why it was refused whole.' })
export class UploadOfflineBatchPayload {
  @Field(() => OfflineBatchType, { nullable: true, description: 'The batch and its record answers; null when refused whole.' })
  batch!: OfflineBatchType | null;

  @Field({ description: 'True when this batch was taken before and its stored answer is returned (nothing was posted again).' })
  replayed!: boolean;

  @Field(() => [UserError], { description: 'Why the batch was refused whole (NOT_FOUND, OFFLINE_BATCH_REFUSED, OFFLINE_BATCH_ID_REUSED); nothing was recorded then. Empty on success.' })
  userErrors!: UserError[];
}

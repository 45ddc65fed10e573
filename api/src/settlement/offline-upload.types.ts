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
});

@InputType()
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

@ObjectType()
export class OfflineRecordResultType {
  @Field(() => Int, { description: 'The record’s place in the body, from 0.' })
  index!: number;

  @Field()
  asn!: string;

  @Field(() => Int)
  offlineCounter!: number;

  @Field(() => MinorUnitsScalar)
  amount!: bigint;

  @Field(() => OfflineOutcomeEnum)
  outcome!: OfflineOutcomeEnum;

  @Field({ description: 'Whether the record was posted (ACCEPTED or GAP).' })
  accepted!: boolean;

  @Field()
  reason!: string;

  @Field(() => ID, { nullable: true, description: 'The ledger entry of a posted record.' })
  journalEntry!: string | null;
}

@ObjectType()
export class OfflineBatchType {
  @Field(() => ID)
  id!: string;

  @Field(() => ID)
  terminal!: string;

  @Field()
  batchId!: string;

  @Field(() => DateTimeScalar)
  receivedAt!: Date;

  @Field(() => [OfflineRecordResultType], { description: 'One answer per record, in the body’s order.' })
  records!: OfflineRecordResultType[];
}

@ObjectType()
export class UploadOfflineBatchPayload {
  @Field(() => OfflineBatchType, { nullable: true })
  batch!: OfflineBatchType | null;

  @Field({ description: 'True when this batch was taken before and its stored answer is returned (nothing was posted again).' })
  replayed!: boolean;

  @Field(() => [UserError])
  userErrors!: UserError[];
}

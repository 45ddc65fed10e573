import { LocalDateResolver } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError, UserErrorCode } from '../graphql/user-error.js';

export enum BillStatusEnum {
  OPEN = 'OPEN',
  PAID = 'PAID',
  WITHDRAWN = 'WITHDRAWN',
}
registerEnumType(BillStatusEnum, {
  name: 'BillStatus',
  description: 'Where a bill stands (docs/billers.md has the state diagram).',
  valuesConfig: {
    OPEN: { description: 'To be paid (possibly partly paid already); the biller may amend it, or withdraw it while nothing is paid.' },
    PAID: { description: 'Paid in full.' },
    WITHDRAWN: { description: 'Withdrawn by the biller (or no longer in its live answer); it cannot be paid.' },
  },
});

export enum BillSourceEnum {
  PUBLISHED = 'PUBLISHED',
  FETCHED = 'FETCHED',
}
registerEnumType(BillSourceEnum, {
  name: 'BillSource',
  description: 'How a bill reached OneCard.',
  valuesConfig: {
    PUBLISHED: { description: 'Published by the biller: publishBill, publishBills or importBillsCsv.' },
    FETCHED: { description: 'From the biller’s answer to a live look-up.' },
  },
});

export enum LateFeeKindEnum {
  NONE = 'NONE',
  FIXED = 'FIXED',
  DAILY_BASIS_POINTS = 'DAILY_BASIS_POINTS',
}
registerEnumType(LateFeeKindEnum, {
  name: 'LateFeeKind',
  description: 'How a bill’s late fee (滞纳金) is counted after its due date, in the biller’s city time zone.',
  valuesConfig: {
    NONE: { description: 'No late fee.' },
    FIXED: { description: '`amount` once, from the day after the due date.' },
    DAILY_BASIS_POINTS: { description: '`basisPoints` of the amount due for each day after the due date (5 is 0.05 % a day), rounded half up over the whole period, at most `cap`.' },
  },
});

export enum BillLookUpEnum {
  NOT_USED = 'NOT_USED',
  ANSWERED = 'ANSWERED',
  FAILED = 'FAILED',
}
registerEnumType(BillLookUpEnum, {
  name: 'BillLookUp',
  description: 'Whether the biller was asked live for the account’s bills.',
  valuesConfig: {
    NOT_USED: { description: 'Not asked: the biller has no live look-up turned on, or the caller is not a cardholder app.' },
    ANSWERED: { description: 'Asked; its answer is stored and the bills are current.' },
    FAILED: { description: 'Asked, and it did not answer usefully (userErrors: BILLER_UNAVAILABLE); the bills are what was stored before.' },
  },
});

export enum BillImportStatusEnum {
  IMPORTED = 'IMPORTED',
  REFUSED = 'REFUSED',
}
registerEnumType(BillImportStatusEnum, {
  name: 'BillImportStatus',
  description: 'An import takes every row of its file or none.',
  valuesConfig: { IMPORTED: { description: 'Every row became a bill.' }, REFUSED: { description: 'Nothing was imported: see the refusals.' } },
});

@ObjectType('LateFeeRule', { description: 'A late fee rule: the fields its kind uses are set, the others null.' })
export class LateFeeRuleType {
  @Field(() => LateFeeKindEnum, { description: 'How the late fee is counted; decides which other fields are set.' })
  kind!: LateFeeKindEnum;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'FIXED: the fee.' })
  amount!: bigint | null;

  @Field(() => Int, { nullable: true, description: 'DAILY_BASIS_POINTS: basis points (1/10000) of the amount due per day late.' })
  basisPoints!: number | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'DAILY_BASIS_POINTS: the most the fee grows to.' })
  cap!: bigint | null;
}

@InputType({ description: 'A late fee rule. NONE takes no other field; FIXED takes amount; DAILY_BASIS_POINTS takes basisPoints and cap.' })
export class LateFeeRuleInput {
  @Field(() => LateFeeKindEnum, { description: 'How the late fee is counted; decides which other fields to give.' })
  kind!: LateFeeKindEnum;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'FIXED: the fee, 1 to 100000000 minor units.' })
  amount?: bigint | null;

  @Field(() => Int, { nullable: true, description: 'DAILY_BASIS_POINTS: 1 to 10000 basis points of the amount due per day late.' })
  basisPoints?: number | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'DAILY_BASIS_POINTS: the most the fee grows to, 1 to 100000000 minor units.' })
  cap?: bigint | null;
}

@ObjectType('Bill', { implements: Node, description: 'A biller’s bill for one customer account and period, paid from a card wallet.' })
export class BillType extends Node {
  uuid!: string;
  /** Seen by a holder's app whose holder has not bound the account: what a payer needs only (not in the schema). */
  payerView!: boolean;

  @Field(() => ID, { description: 'Global id of the Biller.' })
  biller!: string;

  @Field({ description: 'The biller’s name, for the holder’s app to show.' })
  billerName!: string;

  @Field({ description: 'The customer account at the biller (户号).' })
  accountNumber!: string;

  @Field({ description: 'What the bill is for, as the biller names it (e.g. 2026-10).' })
  period!: string;

  @Field(() => Money, { description: 'The amount of the bill, without late fee.' })
  amountDue!: Money;

  @Field(() => LocalDateResolver, { description: 'The last day to pay without a late fee (the biller’s city day).' })
  dueDate!: string;

  @Field(() => LateFeeRuleType, { description: 'How the late fee is counted.' })
  lateFee!: LateFeeRuleType;

  @Field(() => Money, { description: 'The late fee as of today in the biller’s city (OPEN bills; for a PAID one what was paid above the amount due).' })
  lateFeeAmount!: Money;

  @Field(() => Money, { description: 'Amount due plus late fee as of today (OPEN bills); what was paid (PAID); zero (WITHDRAWN).' })
  amountOwed!: Money;

  @Field(() => Money, { description: 'What payments have paid so far. FORBIDDEN to a holder’s app unless the account is bound to its holder.' })
  amountPaid!: Money;

  @Field(() => Money, { description: 'What is left to pay today: amountOwed − amountPaid (zero unless OPEN).' })
  remaining!: Money;

  @Field({ description: 'Whether the holder may pay part of it (the biller’s rule); never more than remaining.' })
  allowPartial!: boolean;

  @Field({ description: 'The biller’s own reference, unique among its bills (printed on the bill: the proof that binds an account). FORBIDDEN to a holder’s app unless the account is bound to its holder.' })
  billerReference!: string;

  @Field(() => BillStatusEnum, { description: 'Where the bill stands: OPEN, PAID or WITHDRAWN.' })
  status!: BillStatusEnum;

  @Field(() => Int, { description: 'Goes up with each change; pass it as expectedVersion to change only what you saw.' })
  version!: number;

  @Field(() => BillSourceEnum, { description: 'How the bill reached OneCard: published by the biller or fetched by a live look-up.' })
  source!: BillSourceEnum;

  @Field(() => DateTimeScalar, { description: 'When the bill was published or first fetched.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When the bill last changed (amended, paid, withdrawn, or a payment recorded).' })
  updatedAt!: Date;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was paid in full; null unless PAID.' })
  paidAt!: Date | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'When it was withdrawn; null unless WITHDRAWN.' })
  withdrawnAt!: Date | null;
}

export const BillConnection = connectionType(BillType, 'Bill');

@ObjectType({ description: 'The OPEN bills of one account of a biller.' })
export class AccountBillsType {
  @Field(() => ID, { description: 'Global id of the Biller.' })
  biller!: string;

  @Field({ description: 'The biller’s name.' })
  billerName!: string;

  @Field({ description: 'The customer account at the biller (户号), as asked for.' })
  accountNumber!: string;

  @Field(() => [BillType], { description: 'The OPEN bills, the earliest due first.' })
  bills!: BillType[];

  @Field(() => BillLookUpEnum, { description: 'Whether the biller was asked live (cardholder apps, billers with live look-up).' })
  lookUp!: BillLookUpEnum;

  @Field(() => [UserError], { description: 'BILLER_UNAVAILABLE when the live look-up failed (the bills are then those stored before); INVALID_INPUT for a malformed account number.' })
  userErrors!: UserError[];
}

@InputType({ description: 'A bill to publish.' })
export class BillInput {
  @Field({ description: 'The customer account (1 to 64 characters, no control characters, no space at either end).' })
  accountNumber!: string;

  @Field({ description: 'What the bill is for (1 to 32 characters), e.g. 2026-10.' })
  period!: string;

  @Field(() => MinorUnitsScalar, { description: 'The amount in minor units of your city’s currency, 1 to 100000000.' })
  amountDue!: bigint;

  @Field(() => LocalDateResolver, { description: 'The last day to pay without a late fee (your city’s day).' })
  dueDate!: string;

  @Field({ description: 'Your reference (1 to 64 characters), unique among your bills.' })
  billerReference!: string;

  @Field(() => Boolean, { nullable: true, description: 'Whether the holder may pay part of it (default false).' })
  allowPartial?: boolean | null;

  @Field(() => LateFeeRuleInput, { nullable: true, description: 'The late fee rule (default NONE).' })
  lateFee?: LateFeeRuleInput | null;
}

@InputType({ description: 'Bills to publish, all or none.' })
export class PublishBillsInput {
  @Field(() => [BillInput], { description: '1 to 1000 bills; for more, importBillsCsv.' })
  bills!: BillInput[];
}

@InputType({ description: 'A CSV file of bills (docs/billers.md#csv-import).' })
export class ImportBillsCsvInput {
  @Field({ description: 'The file’s name, for your records (1 to 255 characters).' })
  fileName!: string;

  @Field({ description: 'The file’s text (UTF-8): a header and up to 50000 rows, at most 10 MB.' })
  csv!: string;
}

@InputType({ description: 'Changes to an OPEN bill; absent fields stay as they are.' })
export class AmendBillInput {
  @Field(() => ID, { description: 'Global id of the Bill.' })
  bill!: string;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'A new amount due; above what has been paid.' })
  amountDue?: bigint | null;

  @Field(() => LocalDateResolver, { nullable: true, description: 'A new last day to pay without a late fee (your city’s day, YYYY-MM-DD).' })
  dueDate?: string | null;

  @Field(() => LateFeeRuleInput, { nullable: true, description: 'A new late fee rule; replaces the old one whole.' })
  lateFee?: LateFeeRuleInput | null;

  @Field(() => Boolean, { nullable: true, description: 'Whether the holder may now pay part of it.' })
  allowPartial?: boolean | null;

  @Field(() => Int, { nullable: true, description: 'The version you read: refused with BILL_VERSION_CONFLICT when the bill has changed since.' })
  expectedVersion?: number | null;
}

@InputType({ description: 'A bill to withdraw.' })
export class WithdrawBillInput {
  @Field(() => ID, { description: 'Global id of the Bill.' })
  bill!: string;

  @Field(() => Int, { nullable: true, description: 'The version you read (see AmendBillInput).' })
  expectedVersion?: number | null;
}

@InputType({ description: 'Where OneCard asks you live for an account’s bills (docs/billers.md#live-look-up).' })
export class SetBillerFetchUrlInput {
  @Field(() => String, { nullable: true, description: 'https URL (http on a loopback host outside production); omitted: the current one.' })
  url?: string | null;

  @Field({ description: 'Whether cardholder apps’ look-ups ask you live.' })
  enabled!: boolean;

  @Field(() => Boolean, { nullable: true, description: 'A new signing secret (the old one stops signing at once).' })
  rotateSecret?: boolean | null;
}

@InputType({ description: 'Which bills to list.' })
export class BillFilterInput {
  @Field(() => [BillStatusEnum], { nullable: true, description: 'Only bills in these statuses (omitted or empty: all).' })
  status?: BillStatusEnum[] | null;

  @Field(() => String, { nullable: true, description: 'Only bills of this customer account (exact match).' })
  accountNumber?: string | null;

  @Field(() => String, { nullable: true, description: 'Only the bill with this biller reference (exact match).' })
  billerReference?: string | null;

  @Field(() => String, { nullable: true, description: 'Only bills for this period (exact match, e.g. 2026-10).' })
  period?: string | null;

  @Field(() => BillSourceEnum, { nullable: true, description: 'Only published, or only fetched, bills.' })
  source?: BillSourceEnum | null;
}

@ObjectType({ description: 'A refused bill of publishBills, and why.' })
export class BillRefusalType {
  @Field(() => Int, { description: 'Its position in input.bills, from 0.' })
  index!: number;

  @Field(() => String, { nullable: true, description: 'The field at fault (billerReference, lateFee.cap, …).' })
  field!: string | null;

  @Field(() => UserErrorCode, { description: 'Why the bill was refused (e.g. INVALID_INPUT, DUPLICATE_BILLER_REFERENCE).' })
  code!: UserErrorCode;

  @Field({ description: 'A sentence for the developer; not for end users.' })
  message!: string;
}

@ObjectType({ description: 'A refused row (or the file) of a CSV import, and why.' })
export class BillImportRefusalType {
  @Field(() => Int, { description: 'The file’s line the row starts on (the header is row 1); 0 for the file as a whole.' })
  row!: number;

  @Field(() => String, { nullable: true, description: 'The column at fault, or null for the whole row or file.' })
  field!: string | null;

  @Field(() => UserErrorCode, { description: 'Why the row or file was refused (e.g. INVALID_INPUT, DUPLICATE_BILLER_REFERENCE, INVALID_CSV).' })
  code!: UserErrorCode;

  @Field({ description: 'A sentence for the developer; not for end users.' })
  message!: string;
}

@ObjectType('BillImport', { implements: Node, description: 'A CSV import: all of its rows became bills, or none did.' })
export class BillImportType extends Node {
  @Field({ description: 'The file name given with the import, for your records.' })
  fileName!: string;

  @Field(() => BillImportStatusEnum, { description: 'IMPORTED (every row became a bill) or REFUSED (none did).' })
  status!: BillImportStatusEnum;

  @Field(() => Int, { description: 'Data rows in the file (0 when the file could not be read).' })
  rowCount!: number;

  @Field(() => Int, { description: 'Bills imported.' })
  accepted!: number;

  @Field(() => Int, { description: 'Rows refused.' })
  refused!: number;

  @Field(() => [BillImportRefusalType], { description: 'Each refusal, by row (the first 1000).' })
  refusals!: BillImportRefusalType[];

  @Field(() => Int, { description: 'Refusals beyond those listed.' })
  refusalsNotListed!: number;

  @Field(() => DateTimeScalar, { description: 'When the import was made.' })
  createdAt!: Date;
}

@ObjectType({ description: 'The result of publishBill, amendBill and withdrawBill.' })
export class BillPayload {
  @Field(() => BillType, { nullable: true, description: 'The bill after the change; null when refused.' })
  bill!: BillType | null;

  @Field(() => [UserError], { description: 'Why the change was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The result of publishBills: every bill, or none and why.' })
export class PublishBillsPayload {
  @Field(() => [BillType], { nullable: true, description: 'The bills published, in input order; null when any was refused.' })
  bills!: BillType[] | null;

  @Field(() => [BillRefusalType], { description: 'Each refusal, by index; empty on success.' })
  refusals!: BillRefusalType[];

  @Field(() => [UserError], { description: 'The same refusals, with field paths (["input","bills","3","amountDue"]).' })
  userErrors!: UserError[];
}

@ObjectType({ description: 'The result of importBillsCsv: the import as recorded, imported or refused.' })
export class ImportBillsCsvPayload {
  @Field(() => BillImportType, { nullable: true, description: 'The import, recorded either way; null only when the call itself was refused.' })
  import!: BillImportType | null;

  @Field(() => [UserError], { description: 'Why nothing was imported: INVALID_CSV, CSV_TOO_LARGE, or BILL_IMPORT_REFUSED (the import lists each row).' })
  userErrors!: UserError[];
}

@ObjectType('BillerLiveLookUp', { description: 'Your live look-up settings.' })
export class BillerLiveLookUpType {
  @Field(() => String, { nullable: true, description: 'The URL OneCard POSTs an account number to; null when none was set.' })
  url!: string | null;

  @Field({ description: 'Whether cardholder apps’ look-ups ask you live.' })
  enabled!: boolean;
}

@ObjectType({ description: 'The result of setBillerFetchUrl.' })
export class SetBillerFetchUrlPayload {
  @Field(() => BillerLiveLookUpType, { nullable: true, description: 'Your live look-up settings as saved; null when refused.' })
  liveLookUp!: BillerLiveLookUpType | null;

  @Field(() => String, { nullable: true, description: 'The signing secret (bls_…), when one was made now: the first time, or on rotateSecret. Shown this once; store it.' })
  secret!: string | null;

  @Field(() => [UserError], { description: 'Why the settings were refused (INVALID_FETCH_URL, INVALID_INPUT); empty on success.' })
  userErrors!: UserError[];
}

@InputType({ description: 'An account to bind to your cardholder, and the proof that it is theirs.' })
export class BindBillAccountInput {
  @Field(() => ID, { description: 'Global id of the Biller (one that allows binding).' })
  biller!: string;

  @Field({ description: 'The customer account at the biller (户号).' })
  accountNumber!: string;

  @Field({ description: 'The biller’s reference printed on one of the account’s bills (paid or not).' })
  billerReference!: string;
}

@ObjectType({ description: 'A customer account bound to the cardholder: its bills are shown in full, and looking it up is never throttled.' })
export class BillAccountBindingType {
  @Field(() => ID, { description: 'Global id of the Biller.' })
  biller!: string;

  @Field({ description: 'The customer account at the biller (户号).' })
  accountNumber!: string;

  @Field(() => DateTimeScalar, { description: 'When it was bound.' })
  boundAt!: Date;
}

@ObjectType({ description: 'The result of bindBillAccount.' })
export class BindBillAccountPayload {
  @Field(() => BillAccountBindingType, { nullable: true, description: 'The binding; null when refused.' })
  binding!: BillAccountBindingType | null;

  @Field(() => [UserError], { description: 'FORBIDDEN_OPERATION when the biller does not allow binding; NOT_FOUND when no bill of the account has that reference (or no such biller); INVALID_INPUT for a malformed account number.' })
  userErrors!: UserError[];
}

@InputType({ description: 'Whether holders may bind your customers’ accounts.' })
export class SetBillerAccountBindingInput {
  @Field({ description: 'true: a holder’s app may bind an account with the reference printed on one of its bills, and then sees that account’s bills in full.' })
  allowed!: boolean;
}

@ObjectType({ description: 'The result of setBillerAccountBinding.' })
export class SetBillerAccountBindingPayload {
  @Field({ description: 'The setting as saved.' })
  allowed!: boolean;

  @Field(() => [UserError], { description: 'Why it was refused; empty on success.' })
  userErrors!: UserError[];
}

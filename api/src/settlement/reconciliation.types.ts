import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ConnectionArgs, connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';

export enum ReconciliationDifferenceKindEnum {
  OURS_ONLY = 'OURS_ONLY',
  THEIRS_ONLY = 'THEIRS_ONLY',
  AMOUNT_DIFFERS = 'AMOUNT_DIFFERS',
}
registerEnumType(ReconciliationDifferenceKindEnum, {
  name: 'ReconciliationDifferenceKind',
  description: 'How our books and the gateway’s balance transactions disagree on one gateway object (docs/settlement.md#reconciliation).',
  valuesConfig: {
    OURS_ONLY: { description: 'We booked it; the gateway has no transaction for it in this window (or we have not learnt its gateway id yet).' },
    THEIRS_ONLY: { description: 'The gateway has transactions for it; nothing of ours in this window names it.' },
    AMOUNT_DIFFERS: { description: 'Both sides name it, with different amounts (or the gateway in another currency).' },
  },
});

export enum ReconciliationDifferenceStatusEnum {
  OPEN = 'OPEN',
  RESOLVED = 'RESOLVED',
  MATCHED_LATER = 'MATCHED_LATER',
}
registerEnumType(ReconciliationDifferenceStatusEnum, {
  name: 'ReconciliationDifferenceStatus',
  description: 'Where a reconciliation difference stands.',
  valuesConfig: {
    OPEN: { description: 'Waiting for an operator (or for a later run to find it matched).' },
    RESOLVED: { description: 'An operator resolved it with a note; later runs never reopen it.' },
    MATCHED_LATER: { description: 'A later run found both sides agreeing (a late webhook, a late gateway transaction); it opens again if they part.' },
  },
});

@ObjectType('ReconciliationDifference', { implements: Node, description: 'One gateway object on which our books and the gateway’s disagree in a settlement window.' })
export class ReconciliationDifferenceType extends Node {
  uuid!: string;

  @Field(() => ID, { description: 'Global id of the SettlementWindow.' })
  window!: string;

  @Field(() => ReconciliationDifferenceKindEnum, { description: 'How the two sides disagree.' })
  kind!: ReconciliationDifferenceKindEnum;

  @Field(() => ReconciliationDifferenceStatusEnum, { description: 'Where it stands.' })
  status!: ReconciliationDifferenceStatusEnum;

  @Field(() => String, { nullable: true, description: 'The gateway’s id of the object (a charge ch_…, refund re_…, payout po_…); null for an item of ours the gateway has not named yet.' })
  gatewayReference!: string | null;

  @Field(() => String, { nullable: true, description: 'What the gateway calls the object (charge, refund, payout), when it has transactions for it.' })
  gatewayType!: string | null;

  @Field(() => String, { nullable: true, description: 'Our records behind it: `top-up:<id>` (a top-up, its refund or the refund’s failure) or `payout:<id>` (a settlement payout); space-separated when several.' })
  ourReference!: string | null;

  @Field(() => Money, { nullable: true, description: 'What we booked, signed as it moves the gateway balance (charges +, refunds and payouts −); null when we have nothing.' })
  ourAmount!: Money | null;

  @Field(() => Money, { nullable: true, description: 'The sum of the gateway’s balance transactions for it (before fees); null when it has none.' })
  gatewayAmount!: Money | null;

  @Field(() => String, { nullable: true, description: 'RESOLVED: what the operator found and did.' })
  note!: string | null;

  @Field(() => String, { nullable: true, description: 'RESOLVED: the operator client that resolved it.' })
  resolvedBy!: string | null;

  @Field(() => DateTimeScalar, { nullable: true, description: 'RESOLVED: when.' })
  resolvedAt!: Date | null;

  @Field(() => DateTimeScalar, { description: 'When a run first found it.' })
  createdAt!: Date;

  @Field(() => DateTimeScalar, { description: 'When a run or an operator last changed it.' })
  updatedAt!: Date;
}

export const ReconciliationDifferenceConnection = connectionType(ReconciliationDifferenceType, 'ReconciliationDifference');

@ObjectType('ReconciliationRun', { description: 'What one reconciliation of a window found.' })
export class ReconciliationRunType {
  @Field(() => ID, { description: 'Global id of the run.' })
  id!: string;

  @Field(() => ID, { description: 'Global id of the SettlementWindow.' })
  window!: string;

  @Field(() => DateTimeScalar, { description: 'When it ran.' })
  ranAt!: Date;

  @Field(() => Int, { description: 'Balance transactions this run imported for the first time.' })
  imported!: number;

  @Field(() => Int, { description: 'The gateway’s balance transactions of the window.' })
  gatewayTransactions!: number;

  @Field(() => Int, { description: 'Our records compared: the window’s top-up clearing items and its batch’s payouts sent to the gateway.' })
  ourRecords!: number;

  @Field(() => Int, { description: 'Gateway objects on which both sides agree.' })
  matched!: number;

  @Field(() => Int, { description: 'Gateway objects on which they disagree now, resolved or not.' })
  differences!: number;

  @Field(() => Int, { description: 'Differences of the window still OPEN.' })
  openDifferences!: number;

  @Field(() => Money, { description: 'The gateway’s fees on the window’s transactions, booked to the operator’s gateway-fee expense when imported.' })
  gatewayFees!: Money;
}

@InputType({ description: 'Reconcile a closed settlement window with the gateway’s balance transactions.' })
export class ReconcileSettlementWindowInput {
  @Field(() => ID, { description: 'Global id of the SettlementWindow (not OPEN).' })
  window!: string;
}

@ObjectType({ description: 'What the reconciliation found.' })
export class ReconcileSettlementWindowPayload {
  @Field(() => ReconciliationRunType, { nullable: true, description: 'The run, with its counts; the differences are in `reconciliationDifferences`.' })
  run!: ReconciliationRunType | null;

  @Field(() => [UserError], { description: 'Why it was refused (WINDOW_OPEN, NOT_FOUND, GATEWAY_UNAVAILABLE).' })
  userErrors!: UserError[];
}

@InputType({ description: 'Resolve an OPEN reconciliation difference with a note.' })
export class ResolveReconciliationDifferenceInput {
  @Field(() => ID, { description: 'Global id of the ReconciliationDifference.' })
  difference!: string;

  @Field({ description: 'What was found and done, 1 to 1000 characters.' })
  note!: string;
}

@ObjectType({ description: 'The difference, resolved.' })
export class ResolveReconciliationDifferencePayload {
  @Field(() => ReconciliationDifferenceType, { nullable: true, description: 'The difference.' })
  difference!: ReconciliationDifferenceType | null;

  @Field(() => [UserError], { description: 'Why it was refused (DIFFERENCE_NOT_OPEN, NOT_FOUND, INVALID_INPUT).' })
  userErrors!: UserError[];
}

@ArgsType()
export class ReconciliationDifferencesArgs extends ConnectionArgs {
  @Field(() => ID, { description: 'Global id of the SettlementWindow.' })
  window!: string;

  @Field(() => ReconciliationDifferenceStatusEnum, { nullable: true, description: 'Only differences in this status (e.g. OPEN for what waits for an operator).' })
  status?: ReconciliationDifferenceStatusEnum | null;
}

import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

registerEnumType(AccountType, { name: 'AccountType', description: 'Double-entry account type; assets and expenses grow with debits, the rest with credits.' });
registerEnumType(AccountOwnerKind, { name: 'AccountOwnerKind', description: 'Whom a ledger account belongs to, or what it stands for.' });

export enum PostingSide {
  DEBIT = 'DEBIT',
  CREDIT = 'CREDIT',
}
registerEnumType(PostingSide, { name: 'PostingSide' });

@ObjectType('LedgerAccount', { implements: Node, description: 'A ledger account. Its balance changes only through journal entries.' })
export class LedgerAccountType extends Node {
  /** Internal id, for the resolvers. */
  uuid!: string;

  @Field({ description: 'Stable, unique, human-readable name, e.g. `operator.fee-revenue.CNY`.' })
  code!: string;

  @Field(() => AccountType)
  type!: AccountType;

  @Field(() => AccountOwnerKind)
  ownerKind!: AccountOwnerKind;

  @Field(() => String, { nullable: true, description: 'Id of the owner (a card, merchant, biller or card company) in its own context; null for platform accounts.' })
  ownerId!: string | null;

  @Field({ description: 'True when the ledger refuses any entry that would take the balance below zero.' })
  nonNegative!: boolean;

  @Field(() => Money, { description: 'Balance now, on the account’s normal side.' })
  balance!: Money;

  @Field(() => DateTimeScalar)
  createdAt!: Date;
}

@ObjectType('Posting', { description: 'One line of a journal entry.' })
export class PostingType {
  /** Internal account id, for the resolvers. */
  accountUuid!: string;

  @Field(() => PostingSide)
  side!: PostingSide;

  @Field(() => Money, { description: 'The amount of the line (always positive; `side` says debit or credit).' })
  amount!: Money;

  @Field(() => Money, { description: 'The account’s balance right after this line.' })
  balanceAfter!: Money;
}

@ObjectType('JournalEntry', { implements: Node, description: 'A balanced movement of money: two or more postings summing to zero. Never changed once posted.' })
export class JournalEntryType extends Node {
  uuid!: string;
  reversesUuid!: string | null;

  @Field({ description: 'The idempotency key the entry was posted under.' })
  key!: string;

  @Field()
  description!: string;

  @Field(() => DateTimeScalar)
  postedAt!: Date;

  @Field(() => [PostingType])
  postings!: PostingType[];
}

export const LedgerAccountConnection = connectionType(LedgerAccountType, 'LedgerAccount');

@InputType({ description: 'One line of a manual journal entry: exactly one of `debit` and `credit`.' })
export class JournalLineInput {
  @Field(() => ID, { description: 'Global id of a LedgerAccount.' })
  account!: string;

  @Field(() => MinorUnitsScalar, { nullable: true })
  debit?: bigint | null;

  @Field(() => MinorUnitsScalar, { nullable: true })
  credit?: bigint | null;
}

@InputType()
export class PostJournalEntryInput {
  @Field({ description: 'Your key for this entry (1 to 200 printable ASCII): the same key and request returns the first answer and moves nothing; the entry key is `manual:<idempotencyKey>` (docs/api-conventions.md#idempotency).' })
  idempotencyKey!: string;

  @Field()
  description!: string;

  @Field(() => [JournalLineInput])
  lines!: JournalLineInput[];
}

@InputType()
export class ReverseJournalEntryInput {
  @Field(() => ID, { description: 'Global id of the JournalEntry to reverse.' })
  entry!: string;

  @Field({ description: 'Your key for this reversal (1 to 200 printable ASCII): the same key and request returns the first answer and moves nothing; the reversal’s entry key is `manual:<idempotencyKey>` (docs/api-conventions.md#idempotency).' })
  idempotencyKey!: string;

  @Field({ description: 'Why the entry is reversed; becomes the reversal’s description.' })
  reason!: string;
}

@ObjectType({ description: 'The entry written (or found under the same key), or why not.' })
export class JournalEntryPayload {
  @Field(() => JournalEntryType, { nullable: true })
  entry!: JournalEntryType | null;

  @Field(() => [UserError])
  userErrors!: UserError[];
}

@ObjectType('LedgerProblem', { description: 'A broken ledger invariant.' })
export class LedgerProblemType {
  @Field({ description: 'ENTRY_UNBALANCED, ENTRY_TOO_FEW_POSTINGS, BALANCE_DIFFERS_FROM_POSTINGS or NON_NEGATIVE_ACCOUNT_BELOW_ZERO.' })
  rule!: string;

  @Field({ description: 'The entry or account id concerned.' })
  subject!: string;

  @Field()
  detail!: string;
}

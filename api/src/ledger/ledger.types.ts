import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { connectionType } from '../graphql/connection.js';
import { Money } from '../graphql/money.js';
import { Node } from '../graphql/node.js';
import { DateTimeScalar, MinorUnitsScalar } from '../graphql/scalars.js';
import { UserError } from '../graphql/user-error.js';
import { AccountOwnerKind, AccountType } from './ledger-account.entity.js';

registerEnumType(AccountType, {
  name: 'AccountType',
  description: 'Double-entry account type; assets and expenses grow with debits, the rest with credits.',
  valuesConfig: {
    ASSET: { description: 'What the platform holds or is owed (e.g. money at the gateway). Normal side: debit.' },
    LIABILITY: { description: 'What the platform owes (card purses, merchant and biller payables). Normal side: credit.' },
    REVENUE: { description: 'Income, e.g. the operator’s service fees. Normal side: credit.' },
    EXPENSE: { description: 'Costs. Normal side: debit.' },
    EQUITY: { description: 'Owners’ equity. Normal side: credit.' },
  },
});
registerEnumType(AccountOwnerKind, {
  name: 'AccountOwnerKind',
  description: 'Whom a ledger account belongs to, or what it stands for.',
  valuesConfig: {
    CARD_PURSE: { description: 'The host’s shadow of a card’s on-card purse (电子钱包); `ownerId` is the card’s ASN.' },
    PENDING_LOAD: { description: 'Paid top-ups waiting to be written onto a card (补登); `ownerId` is the card company.' },
    MERCHANT_PAYABLE: { description: 'What the platform owes a merchant; `ownerId` is the merchant.' },
    BILLER_PAYABLE: { description: 'What the platform owes a biller; `ownerId` is the biller.' },
    ISSUER: { description: 'A card company’s position; `ownerId` is the card company.' },
    GATEWAY_CLEARING: { description: 'Money at the payment gateway.' },
    OPERATOR_FEE_REVENUE: { description: 'The operator’s service fees.' },
    SETTLEMENT_IN_TRANSIT: { description: 'Money between settlement and payout.' },
    INTERCHANGE: { description: 'Cross-city (互联互通) positions between card companies.' },
    TRANSIT_WALLET: { description: 'A registered holder’s transit wallet (交通钱包): value held online, spent by QR-code rides; `ownerId` is the wallet.' },
    WALLET_DEBT: { description: 'What a holder owes for rides their transit wallet did not cover, cleared by the next top-up; `ownerId` is the wallet.' },
    OTHER: { description: 'Accounts made by tests, benchmarks and manual adjustments.' },
  },
});

export enum PostingSide {
  DEBIT = 'DEBIT',
  CREDIT = 'CREDIT',
}
registerEnumType(PostingSide, {
  name: 'PostingSide',
  description: 'Which side of its account a posting is on.',
  valuesConfig: {
    DEBIT: { description: 'A debit: increases an ASSET or EXPENSE account, decreases the others.' },
    CREDIT: { description: 'A credit: increases a LIABILITY, REVENUE or EQUITY account, decreases the others.' },
  },
});

@ObjectType('LedgerAccount', { implements: Node, description: 'A ledger account. Its balance changes only through journal entries.' })
export class LedgerAccountType extends Node {
  /** Internal id, for the resolvers. */
  uuid!: string;

  @Field({ description: 'Stable, unique, human-readable name, e.g. `operator.fee-revenue.CNY`.' })
  code!: string;

  @Field(() => AccountType, { description: 'The account type; it decides the normal side the balance is kept on.' })
  type!: AccountType;

  @Field(() => AccountOwnerKind, { description: 'Whom the account belongs to, or what it stands for.' })
  ownerKind!: AccountOwnerKind;

  @Field(() => String, { nullable: true, description: 'Id of the owner (a card, merchant, biller or card company) in its own context; null for platform accounts.' })
  ownerId!: string | null;

  @Field({ description: 'True when the ledger refuses any entry that would take the balance below zero.' })
  nonNegative!: boolean;

  @Field(() => Money, { description: 'Balance now, on the account’s normal side.' })
  balance!: Money;

  @Field(() => DateTimeScalar, { description: 'When the account was opened.' })
  createdAt!: Date;
}

@ObjectType('Posting', { description: 'One line of a journal entry.' })
export class PostingType {
  /** Internal account id, for the resolvers. */
  accountUuid!: string;

  @Field(() => PostingSide, { description: 'Debit or credit.' })
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

  @Field({ description: 'What the entry is for, as given when it was posted (for a reversal: the reason).' })
  description!: string;

  @Field(() => DateTimeScalar, { description: 'When the entry was posted.' })
  postedAt!: Date;

  @Field(() => [PostingType], { description: 'The lines of the entry, in the order they were posted; debits and credits sum to the same amount.' })
  postings!: PostingType[];
}

export const LedgerAccountConnection = connectionType(LedgerAccountType, 'LedgerAccount');

@InputType({ description: 'One line of a manual journal entry: exactly one of `debit` and `credit`.' })
export class JournalLineInput {
  @Field(() => ID, { description: 'Global id of a LedgerAccount.' })
  account!: string;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'Amount to debit, a positive integer in minor units (fen for CNY); leave out when `credit` is given.' })
  debit?: bigint | null;

  @Field(() => MinorUnitsScalar, { nullable: true, description: 'Amount to credit, a positive integer in minor units (fen for CNY); leave out when `debit` is given.' })
  credit?: bigint | null;
}

@InputType({ description: 'A manual journal entry: two or more lines in one currency whose debits equal their credits.' })
export class PostJournalEntryInput {
  @Field({ description: 'Your key for this entry (1 to 200 printable ASCII): the same key and request returns the first answer and moves nothing; the entry key is `manual:<idempotencyKey>` (docs/api-conventions.md#idempotency).' })
  idempotencyKey!: string;

  @Field({ description: 'What the entry is for; kept on the entry for good.' })
  description!: string;

  @Field(() => [JournalLineInput], { description: 'The lines, at least two, all in one currency; debits must equal credits.' })
  lines!: JournalLineInput[];
}

@InputType({ description: 'Which journal entry to reverse, and why.' })
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
  @Field(() => JournalEntryType, { nullable: true, description: 'The entry posted (or the one already posted under the same key); null when refused.' })
  entry!: JournalEntryType | null;

  @Field(() => [UserError], { description: 'Why the entry was refused; empty on success.' })
  userErrors!: UserError[];
}

@ObjectType('LedgerProblem', { description: 'A broken ledger invariant.' })
export class LedgerProblemType {
  @Field({ description: 'ENTRY_UNBALANCED, ENTRY_TOO_FEW_POSTINGS, BALANCE_DIFFERS_FROM_POSTINGS or NON_NEGATIVE_ACCOUNT_BELOW_ZERO.' })
  rule!: string;

  @Field({ description: 'The entry or account id concerned.' })
  subject!: string;

  @Field({ description: 'What is wrong, in a sentence for the operator.' })
  detail!: string;
}

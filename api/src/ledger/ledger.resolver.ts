import { GraphQLError } from 'graphql';
import { Arg, Args, ID, Authorized, Ctx, FieldResolver, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Idempotent } from '../graphql/idempotency.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { DateTimeScalar } from '../graphql/scalars.js';
import { type UserError, userError, UserErrorCode } from '../graphql/user-error.js';
import { checkLedger } from './ledger-check.js';
import { LedgerError, LedgerErrorCode } from './ledger.errors.js';
import { balanceAt, findAccount, findEntry, listAccounts, post, type PostedEntry, type PostingLine, reverse } from './ledger.service.js';
import { AccountOwnerKind, type LedgerAccount } from './ledger-account.entity.js';
import {
  JournalEntryPayload,
  JournalEntryType,
  LedgerAccountConnection,
  LedgerAccountType,
  LedgerProblemType,
  PostingSide,
  PostingType,
  PostJournalEntryInput,
  ReverseJournalEntryInput,
} from './ledger.types.js';

// Ledger data is the operator's; tenants see their own money through their own contexts. Reading
// it needs ledger:read; posting or reversing by hand moves money and needs ledger:write.
const OPERATOR = 'OPERATOR';
const READ = 'ledger:read';
const WRITE = 'ledger:write';
const mayRead = (ctx: GraphQLContext) => ctx.principal?.kind === OPERATOR && ctx.principal.scopes.includes(READ);

export function accountView(account: LedgerAccount): LedgerAccountType {
  return Object.assign(new LedgerAccountType(), {
    id: toGlobalId('LedgerAccount', account.id),
    uuid: account.id,
    code: account.code,
    type: account.type,
    ownerKind: account.ownerKind,
    ownerId: account.ownerId ?? null,
    nonNegative: account.nonNegative,
    balance: Money.of(account.balance, account.currency),
    createdAt: account.createdAt,
  });
}

export function entryView(entry: PostedEntry): JournalEntryType {
  return Object.assign(new JournalEntryType(), {
    id: toGlobalId('JournalEntry', entry.id),
    uuid: entry.id,
    reversesUuid: entry.reversesId,
    key: entry.key,
    description: entry.description,
    postedAt: entry.postedAt,
    postings: entry.lines.map((l) =>
      Object.assign(new PostingType(), {
        accountUuid: l.account,
        side: l.amount > 0n ? PostingSide.DEBIT : PostingSide.CREDIT,
        amount: Money.of(l.amount > 0n ? l.amount : -l.amount, l.currency),
        balanceAfter: Money.of(l.balanceAfter, l.currency),
      }),
    ),
  });
}

/*
 * The manual mutations' `idempotencyKey` is the API's idempotency key (per client, 48 h, the
 * GraphQL layer: graphql/idempotency.ts). The ledger's entry key is derived from it
 * (`manual:<idempotencyKey>`) and is a second line of defence, not the same thing: the ledger keeps
 * it forever and across clients, so even a key replayed after its idempotency record expired, or by
 * another operator client, never posts the entry twice (same lines: the first entry; other lines:
 * ENTRY_KEY_REUSED).
 */

/** Runs a ledger write; a refusal becomes a userError pointing at the input line concerned. */
function asPayload(work: () => Promise<PostedEntry>, lineOf: (accountId: string) => number = () => -1): Promise<JournalEntryPayload> {
  return withUserErrors<JournalEntryPayload>(async () => ({ entry: entryView(await work()), userErrors: [] }), { entry: null }, (err) => {
    const line = err instanceof LedgerError && err.accountId ? lineOf(err.accountId) : -1;
    return line >= 0 ? ['input', 'lines', String(line)] : ['input'];
  });
}

nodeLoaders.set('LedgerAccount', async (ctx, id) => {
  if (!mayRead(ctx)) return null;
  const account = await findAccount(ctx.em, id);
  return account && accountView(account);
});
nodeLoaders.set('JournalEntry', async (ctx, id) => {
  if (!mayRead(ctx)) return null;
  const entry = await findEntry(ctx.em, id);
  return entry ? entryView(entry) : null;
});

@Resolver(() => LedgerAccountType)
export class LedgerAccountResolver {
  @Authorized(OPERATOR, READ)
  @Query(() => LedgerAccountConnection, { description: 'Ledger accounts in code order. Operator only, scope ledger:read.' })
  async ledgerAccounts(@Args() args: ConnectionArgs, @Arg('ownerKind', () => AccountOwnerKind, { nullable: true, description: 'Only accounts of this owner kind; all when left out.' }) ownerKind: AccountOwnerKind | null, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listAccounts(ctx.em, { ownerKind: ownerKind ?? undefined, afterCode: page.after?.sortKey, limit: page.fetch });
    return toConnection(rows, page, (a) => ({ sortKey: a.code, id: a.id }), accountView);
  }

  @Authorized(OPERATOR, READ)
  @Query(() => LedgerAccountType, { nullable: true, description: 'One ledger account by global id. Operator only, scope ledger:read.' })
  async ledgerAccount(@Arg('id', () => ID, { description: 'Global id of the LedgerAccount.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<LedgerAccountType | null> {
    const account = await findAccount(ctx.em, fromGlobalId(id, 'LedgerAccount').id);
    return account && accountView(account);
  }

  @FieldResolver(() => Money, { description: 'Balance as it stood at an instant: every entry posted at or before it.' })
  async balanceAt(@Root() account: LedgerAccountType, @Arg('at', () => DateTimeScalar, { description: 'The instant (RFC 3339 date-time with an offset).' }) at: Date, @Ctx() ctx: GraphQLContext): Promise<Money> {
    try {
      return Money.of(await balanceAt(ctx.em, account.uuid, at), account.balance.currency);
    } catch (err) {
      // An instant whose postings were archived is a question the ledger cannot answer any more, not a fault.
      if (err instanceof LedgerError && err.code === LedgerErrorCode.MONTH_ARCHIVED) throw new GraphQLError(err.message, { extensions: { code: 'BAD_USER_INPUT' } });
      throw err;
    }
  }
}

@Resolver(() => PostingType)
export class PostingResolver {
  @FieldResolver(() => LedgerAccountType, { description: 'The account the line is posted to.' })
  async account(@Root() posting: PostingType, @Ctx() ctx: GraphQLContext): Promise<LedgerAccountType> {
    return accountView((await findAccount(ctx.em, posting.accountUuid))!);
  }
}

@Resolver(() => JournalEntryType)
export class JournalEntryResolver {
  @Authorized(OPERATOR, READ)
  @Query(() => JournalEntryType, { nullable: true, description: 'One journal entry by global id. Operator only, scope ledger:read.' })
  async journalEntry(@Arg('id', () => ID, { description: 'Global id of the JournalEntry.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<JournalEntryType | null> {
    const entry = await findEntry(ctx.em, fromGlobalId(id, 'JournalEntry').id);
    return entry ? entryView(entry) : null;
  }

  @FieldResolver(() => JournalEntryType, { nullable: true, description: 'The entry this one reverses, if it is a reversal.' })
  async reverses(@Root() entry: JournalEntryType, @Ctx() ctx: GraphQLContext): Promise<JournalEntryType | null> {
    const original = entry.reversesUuid ? await findEntry(ctx.em, entry.reversesUuid) : undefined;
    return original ? entryView(original) : null;
  }

  @Authorized(OPERATOR, READ)
  @Query(() => [LedgerProblemType], { description: 'Checks every ledger invariant now; empty when all hold. Operator only, scope ledger:read.' })
  async ledgerProblems(@Ctx() ctx: GraphQLContext): Promise<LedgerProblemType[]> {
    return checkLedger(ctx.em);
  }

  @Authorized(OPERATOR, WRITE)
  @Mutation(() => JournalEntryPayload, {
    description: 'A manual adjustment entry by the operator (operator only, scope ledger:write). Idempotent by idempotencyKey (docs/api-conventions.md#idempotency); the entry is posted under the entry key `manual:<idempotencyKey>`.',
  })
  @Idempotent()
  async postJournalEntry(@Arg('input', () => PostJournalEntryInput, { description: 'The entry to post.' }) input: PostJournalEntryInput, @Ctx() ctx: GraphQLContext): Promise<JournalEntryPayload> {
    const errors: UserError[] = [];
    const lines: PostingLine[] = input.lines.map((line, i) => {
      const oneSide = (line.debit == null) !== (line.credit == null);
      const positive = (line.debit ?? line.credit ?? 1n) > 0n;
      if (!oneSide) errors.push(userError(UserErrorCode.INVALID_INPUT, 'give exactly one of debit and credit', ['input', 'lines', i]));
      else if (!positive) errors.push(userError(UserErrorCode.INVALID_INPUT, 'a debit or credit is a positive amount', ['input', 'lines', i]));
      return { account: fromGlobalId(line.account, 'LedgerAccount').id, amount: line.debit ?? -(line.credit ?? 0n) };
    });
    if (errors.length) return { entry: null, userErrors: errors };
    return asPayload(
      () => post(ctx.em, { key: `manual:${input.idempotencyKey}`, description: input.description, lines, metadata: { by: ctx.principal?.clientId } }),
      (accountId) => lines.findIndex((l) => l.account === accountId),
    );
  }

  @Authorized(OPERATOR, WRITE)
  @Mutation(() => JournalEntryPayload, {
    description: 'Posts the mirror image of an entry. An entry is reversed at most once. Operator only, scope ledger:write. Idempotent by idempotencyKey (docs/api-conventions.md#idempotency); the reversal is posted under the entry key `manual:<idempotencyKey>`.',
  })
  @Idempotent()
  async reverseJournalEntry(@Arg('input', () => ReverseJournalEntryInput, { description: 'The entry to reverse, and why.' }) input: ReverseJournalEntryInput, @Ctx() ctx: GraphQLContext): Promise<JournalEntryPayload> {
    const { id } = fromGlobalId(input.entry, 'JournalEntry');
    return asPayload(() => reverse(ctx.em, id, { key: `manual:${input.idempotencyKey}`, description: input.reason, metadata: { by: ctx.principal?.clientId } }));
  }
}

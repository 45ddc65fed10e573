import { GraphQLError } from 'graphql';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { userError, UserErrorCode } from '../graphql/user-error.js';
import { loadKeyEncryptionKey } from '../secrets/kek.js';
import { bindAccount, isBound, LookUpThrottled, setAccountBinding } from './account-lookups.js';
import type { BillFields } from './bill-input.js';
import { BillError, BillsRefused } from './bills.errors.js';
import { FETCH_TIMEOUT_MS } from './bills.fetch.js';
import { type BillImportRow, billImportGlobalId, findBillImportFor, importBillsCsv } from './bills.import.js';
import { amendBill, billAmounts, billGlobalId, callingBiller, type BillRow, billsForAccount, type BillSource, type BillStatus, findBillFor, lateFeeRuleOf, listBillsFor, publishBill, publishBills, setFetchUrl, withdrawBill } from './bills.service.js';
import {
  AccountBillsType,
  AmendBillInput,
  BillConnection,
  BillFilterInput,
  BillImportRefusalType,
  type BillImportStatusEnum,
  BillImportType,
  BillInput,
  BillAccountBindingType,
  BillerLiveLookUpType,
  BindBillAccountInput,
  BindBillAccountPayload,
  SetBillerAccountBindingInput,
  SetBillerAccountBindingPayload,
  type BillLookUpEnum,
  BillPayload,
  BillRefusalType,
  type BillSourceEnum,
  type BillStatusEnum,
  BillType,
  ImportBillsCsvInput,
  ImportBillsCsvPayload,
  type LateFeeKindEnum,
  LateFeeRuleType,
  PublishBillsInput,
  PublishBillsPayload,
  SetBillerFetchUrlInput,
  SetBillerFetchUrlPayload,
  WithdrawBillInput,
} from './bills.types.js';

/** A field of the bills context (`lateFee.cap`) as a userError path under `prefix`. */
const pathOf = (prefix: (string | number)[], field: string | null | undefined) => [...prefix, ...(field ? field.split('.') : [])];

/** `payerView`: a holder's app whose holder has not bound the account sees what a payer needs only. */
export function billView(row: BillRow, payerView = false): BillType {
  const amounts = billAmounts(row);
  const rule = lateFeeRuleOf(row);
  const money = (amount: bigint) => Money.of(amount, row.currency);
  return Object.assign(new BillType(), {
    id: billGlobalId(row.id),
    uuid: row.id,
    payerView,
    biller: toGlobalId('Biller', row.biller_id),
    billerName: row.biller_name,
    accountNumber: row.account_number,
    period: row.period,
    amountDue: money(amounts.amountDue),
    dueDate: row.due_date,
    lateFee: Object.assign(new LateFeeRuleType(), {
      kind: rule.kind as LateFeeKindEnum,
      amount: rule.kind === 'FIXED' ? rule.amount : null,
      basisPoints: rule.kind === 'DAILY_BASIS_POINTS' ? rule.basisPoints : null,
      cap: rule.kind === 'DAILY_BASIS_POINTS' ? rule.cap : null,
    }),
    lateFeeAmount: money(amounts.lateFee),
    amountOwed: money(amounts.owed),
    amountPaid: money(amounts.paid),
    remaining: money(amounts.remaining),
    allowPartial: row.allow_partial,
    billerReference: row.biller_reference,
    status: row.status as BillStatusEnum,
    version: row.version,
    source: row.source as BillSourceEnum,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    paidAt: row.paid_at,
    withdrawnAt: row.withdrawn_at,
  });
}

export function billImportView(row: BillImportRow): BillImportType {
  return Object.assign(new BillImportType(), {
    id: billImportGlobalId(row.id),
    fileName: row.file_name,
    status: row.status as BillImportStatusEnum,
    rowCount: row.row_count,
    accepted: row.accepted,
    refused: row.refused,
    refusals: row.report.refusals.map((r) => Object.assign(new BillImportRefusalType(), { row: r.row, field: r.field, code: UserErrorCode[r.code], message: r.message })),
    refusalsNotListed: row.report.truncated,
    createdAt: row.created_at,
  });
}

/** A bill's fields as the service checks them. */
const fieldsOf = (b: BillInput): BillFields => ({ ...b, lateFee: b.lateFee ?? null });

/** A holder's app sees a bill in full only when its account is bound to the holder. */
async function payerViewOf(ctx: GraphQLContext, row: BillRow): Promise<boolean> {
  const p = ctx.principal;
  return p?.kind === 'CARDHOLDER_APP' && !(p.holderId && (await isBound(ctx.em, p.holderId, row.biller_id, row.account_number)));
}

/** A bill field beyond what a payer needs: refused to a holder's app that has not bound the account. */
function requireFullView(bill: BillType, field: string): void {
  if (bill.payerView) throw new GraphQLError(`Bill.${field} is shown to a holder’s app only for an account bound to its holder (bindBillAccount)`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
}

const throttled = (err: LookUpThrottled) =>
  new GraphQLError(err.message, { extensions: { code: 'THROTTLED', retryAfter: err.retryAfterSeconds, http: { status: 429, headers: new Map([['retry-after', String(err.retryAfterSeconds)]]) } } });

nodeLoaders.set('Bill', async (ctx, id) => {
  const row = ctx.principal && (await findBillFor(ctx.em, ctx.principal, id));
  return row ? billView(row, await payerViewOf(ctx, row)) : null;
});
nodeLoaders.set('BillImport', async (ctx, id) => {
  const row = ctx.principal && (await findBillImportFor(ctx.em, ctx.principal, id));
  return row ? billImportView(row) : null;
});

@ArgsType()
class BillsArgs extends ConnectionArgs {
  @Field(() => BillFilterInput, { nullable: true, description: 'Which bills.' })
  filter?: BillFilterInput | null;
}

@Resolver(() => BillType)
export class BillResolver {
  @Authorized()
  @Query(() => BillType, { nullable: true, description: 'A bill: your own (biller, bills:read or bills:write), any (operator, bills:read), or any bill of an active biller (cardholder app, card:read or card:topup).' })
  async bill(@Arg('id', () => ID, { description: 'Global id of the Bill.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<BillType | null> {
    const row = await findBillFor(ctx.em, ctx.principal!, fromGlobalId(id, 'Bill').id);
    return row ? billView(row, await payerViewOf(ctx, row)) : null;
  }

  // Property-level rules (docs/billers.md#look-ups-by-account-number): a payer's view leaves these out.

  @FieldResolver(() => String, { description: 'The biller’s own reference.' })
  billerReference(@Root() bill: BillType): string {
    requireFullView(bill, 'billerReference');
    return bill.billerReference;
  }

  @FieldResolver(() => Money, { description: 'What payments have paid so far.' })
  amountPaid(@Root() bill: BillType): Money {
    requireFullView(bill, 'amountPaid');
    return bill.amountPaid;
  }

  @Authorized('BILLER', 'OPERATOR')
  @Query(() => BillConnection, { description: 'Your bills, newest first (biller: bills:read or bills:write; operator: all, bills:read).' })
  async bills(@Args() args: BillsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const f = args.filter ?? {};
    const rows = await listBillsFor(
      ctx.em,
      ctx.principal!,
      {
        statuses: (f.status ?? undefined) as BillStatus[] | undefined,
        accountNumber: f.accountNumber ?? undefined,
        billerReference: f.billerReference ?? undefined,
        period: f.period ?? undefined,
        source: (f.source ?? undefined) as BillSource | undefined,
      },
      { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch },
    );
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), billView);
  }

  @Authorized('CARDHOLDER_APP', 'BILLER', 'OPERATOR')
  @Query(() => AccountBillsType, {
    nullable: true,
    description:
      'The OPEN bills of a customer account, with what each owes today: for a cardholder app (card:read or card:topup; active billers), the biller itself (bills:read or bills:write), the operator (bills:read). A biller with live look-up is asked first when a cardholder app asks. Null when the biller is not one you may see.',
  })
  async billsForAccount(
    @Arg('biller', () => ID, { description: 'Global id of the Biller.' }) biller: string,
    @Arg('accountNumber', { description: 'The customer account at the biller.' }) accountNumber: string,
    @Ctx() ctx: GraphQLContext,
  ): Promise<AccountBillsType | null> {
    const principal = ctx.principal!;
    const needed = principal.kind === 'CARDHOLDER_APP' ? ['card:read', 'card:topup'] : principal.kind === 'BILLER' ? ['bills:read', 'bills:write'] : ['bills:read'];
    if (!needed.some((s) => principal.scopes.includes(s))) throw new GraphQLError(`Missing scope: ${needed.join(' or ')}`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    const billerId = fromGlobalId(biller, 'Biller').id;
    const kek = await loadKeyEncryptionKey(ctx.config);
    const view = (found: Awaited<ReturnType<typeof billsForAccount>> & object, userErrors: ReturnType<typeof userError>[]) =>
      Object.assign(new AccountBillsType(), {
        biller: toGlobalId('Biller', found.biller.id),
        billerName: found.biller.name,
        accountNumber: found.accountNumber,
        bills: found.bills.map((row) => billView(row, found.payerView)),
        lookUp: found.lookUp as BillLookUpEnum,
        userErrors,
      });
    try {
      const found = await billsForAccount(ctx.em, { kek, env: ctx.config.env, internalUrls: ctx.config.internalUrls, timeoutMs: FETCH_TIMEOUT_MS, log: ctx.log }, principal, billerId, accountNumber);
      if (!found) return null;
      const failed = found.lookUp === 'FAILED' ? [userError(UserErrorCode.BILLER_UNAVAILABLE, 'the biller did not answer the look-up of this account; the bills shown are those it published or answered before', ['accountNumber'])] : [];
      return view(found, failed);
    } catch (err) {
      if (err instanceof LookUpThrottled) throw throttled(err);
      if (!(err instanceof BillError)) throw err;
      // A query's argument, not a mutation's input: the refusal points at the argument.
      return Object.assign(new AccountBillsType(), { biller, billerName: '', accountNumber, bills: [], lookUp: 'NOT_USED' as BillLookUpEnum, userErrors: [err.toUserError(err.field ? [] : ['accountNumber'])] });
    }
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => BillPayload, { description: 'Publishes one bill (scope bills:write).' })
  publishBill(@Arg('input', () => BillInput, { description: 'The bill to publish.' }) input: BillInput, @Ctx() ctx: GraphQLContext): Promise<BillPayload> {
    return withUserErrors<BillPayload>(
      async () => {
        try {
          return { bill: billView(await publishBill(ctx.em, ctx.principal!, fieldsOf(input))), userErrors: [] };
        } catch (err) {
          if (!(err instanceof BillsRefused)) throw err;
          return { bill: null, userErrors: err.refusals.map((r) => userError(UserErrorCode[r.code], r.message, pathOf(['input'], r.field))) };
        }
      },
      { bill: null },
    );
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => PublishBillsPayload, { description: 'Publishes up to 1000 bills, all or none: when any is refused, nothing is written and each refusal is listed (scope bills:write).' })
  publishBills(@Arg('input', () => PublishBillsInput, { description: 'The bills to publish, all or none.' }) input: PublishBillsInput, @Ctx() ctx: GraphQLContext): Promise<PublishBillsPayload> {
    return withUserErrors<PublishBillsPayload>(
      async () => {
        try {
          return { bills: (await publishBills(ctx.em, ctx.principal!, input.bills.map(fieldsOf))).map((row) => billView(row)), refusals: [], userErrors: [] };
        } catch (err) {
          if (!(err instanceof BillsRefused)) throw err;
          return {
            bills: null,
            refusals: err.refusals.map((r) => Object.assign(new BillRefusalType(), { index: r.index, field: r.field, code: UserErrorCode[r.code], message: r.message })),
            userErrors: err.refusals.map((r) => userError(UserErrorCode[r.code], r.message, pathOf(['input', 'bills', r.index], r.field))),
          };
        }
      },
      { bills: null, refusals: [] },
    );
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => ImportBillsCsvPayload, { description: 'Imports bills from a CSV file (docs/billers.md#csv-import), all rows or none; the import and its report are recorded either way (scope bills:write).' })
  importBillsCsv(@Arg('input', () => ImportBillsCsvInput, { description: 'The CSV file’s name and text.' }) input: ImportBillsCsvInput, @Ctx() ctx: GraphQLContext): Promise<ImportBillsCsvPayload> {
    return withUserErrors<ImportBillsCsvPayload>(
      async () => {
        const outcome = await importBillsCsv(ctx.em, ctx.principal!, input);
        return { import: billImportView(outcome.import), userErrors: outcome.problem ? [userError(UserErrorCode[outcome.problem.code], outcome.problem.message, ['input', 'csv'])] : [] };
      },
      { import: null },
    );
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => BillPayload, { description: 'Changes your OPEN bill; its version goes up (scope bills:write).' })
  amendBill(@Arg('input', () => AmendBillInput, { description: 'The bill and what changes.' }) input: AmendBillInput, @Ctx() ctx: GraphQLContext): Promise<BillPayload> {
    return withUserErrors<BillPayload>(
      async () => ({ bill: billView(await amendBill(ctx.em, ctx.principal!, fromGlobalId(input.bill, 'Bill').id, input)), userErrors: [] }),
      { bill: null },
    );
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => BillPayload, { description: 'Withdraws your OPEN bill that nothing has been paid on (scope bills:write).' })
  withdrawBill(@Arg('input', () => WithdrawBillInput, { description: 'The bill to withdraw.' }) input: WithdrawBillInput, @Ctx() ctx: GraphQLContext): Promise<BillPayload> {
    return withUserErrors<BillPayload>(
      async () => ({ bill: billView(await withdrawBill(ctx.em, ctx.principal!, fromGlobalId(input.bill, 'Bill').id, input.expectedVersion)), userErrors: [] }),
      { bill: null },
    );
  }

  @Authorized('CARDHOLDER_APP', 'card:manage')
  @Mutation(() => BindBillAccountPayload, {
    description:
      'Binds a customer account to your cardholder, where the biller allows it, with the reference printed on one of its bills: you then see its bills in full and looking it up is never throttled. Each attempt counts as a look-up of the account (audited, throttled). Cardholder app, scope card:manage.',
  })
  async bindBillAccount(@Arg('input', () => BindBillAccountInput, { description: 'The account and the proof.' }) input: BindBillAccountInput, @Ctx() ctx: GraphQLContext): Promise<BindBillAccountPayload> {
    try {
      return await withUserErrors<BindBillAccountPayload>(
        async () => {
          const bound = await bindAccount(ctx.em, ctx.principal!, { billerId: fromGlobalId(input.biller, 'Biller').id, accountNumber: input.accountNumber, billerReference: input.billerReference });
          return { binding: Object.assign(new BillAccountBindingType(), { biller: toGlobalId('Biller', bound.billerId), accountNumber: bound.accountNumber, boundAt: bound.boundAt }), userErrors: [] };
        },
        { binding: null },
      );
    } catch (err) {
      if (err instanceof LookUpThrottled) throw throttled(err);
      throw err;
    }
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => SetBillerAccountBindingPayload, { description: 'Whether holders may bind your customers’ accounts (bindBillAccount, with the reference printed on a bill). Off by default. Scope bills:write.' })
  async setBillerAccountBinding(@Arg('input', () => SetBillerAccountBindingInput, { description: 'The setting.' }) input: SetBillerAccountBindingInput, @Ctx() ctx: GraphQLContext): Promise<SetBillerAccountBindingPayload> {
    return withUserErrors<SetBillerAccountBindingPayload>(
      async () => ({ allowed: await setAccountBinding(ctx.em, (await callingBiller(ctx.em, ctx.principal!, { active: false })).id, input.allowed), userErrors: [] }),
      { allowed: false },
    );
  }

  @Authorized('BILLER', 'bills:write')
  @Mutation(() => SetBillerFetchUrlPayload, { description: 'Sets the URL OneCard asks live for an account’s bills, and turns it on or off; the signing secret is returned once (scope bills:write).' })
  async setBillerFetchUrl(@Arg('input', () => SetBillerFetchUrlInput, { description: 'Your live look-up URL and whether it is on.' }) input: SetBillerFetchUrlInput, @Ctx() ctx: GraphQLContext): Promise<SetBillerFetchUrlPayload> {
    const kek = await loadKeyEncryptionKey(ctx.config);
    return withUserErrors<SetBillerFetchUrlPayload>(
      async () => {
        const set = await setFetchUrl(ctx.em, { kek, internalUrls: ctx.config.internalUrls }, ctx.principal!, input);
        return { liveLookUp: Object.assign(new BillerLiveLookUpType(), { url: set.url, enabled: set.enabled }), secret: set.secret, userErrors: [] };
      },
      { liveLookUp: null, secret: null },
    );
  }
}

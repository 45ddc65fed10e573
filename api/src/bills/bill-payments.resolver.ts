import { GraphQLError } from 'graphql';
import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Idempotent } from '../graphql/idempotency.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { BillPaymentError } from './bill-payments.errors.js';
import { billerReconciliation, billPaymentById, type BillPaymentRow, findBillPaymentFor, listPaymentsOfBill, payBill, reconciliationCsv } from './bill-payments.service.js';
import { BillType } from './bills.types.js';
import { BillerReconciliationType, BillPaymentConnection, BillPaymentPayload, type BillPaymentStatusEnum, BillPaymentType, PayBillInput } from './bill-payments.types.js';

export function billPaymentView(row: BillPaymentRow): BillPaymentType {
  return Object.assign(new BillPaymentType(), {
    id: toGlobalId('BillPayment', row.id),
    uuid: row.id,
    bill: toGlobalId('Bill', row.bill_id),
    biller: toGlobalId('Biller', row.biller_id),
    billerName: row.biller_name,
    accountNumber: row.account_number,
    period: row.period,
    amount: Money.of(BigInt(row.amount), row.currency),
    status: row.status as BillPaymentStatusEnum,
    receiptNumber: row.receipt_number,
    paidAt: row.paid_at,
    businessDay: row.business_day,
    cardNumber: row.card_number ? `**** **** **** ${row.card_number.slice(-4)}` : null,
    failureCode: (row as BillPaymentRow & { failure_code?: string | null }).failure_code ?? null,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  });
}

nodeLoaders.set('BillPayment', async (ctx, id) => {
  const row = ctx.principal && (await findBillPaymentFor(ctx.em, ctx.principal, id));
  return row ? billPaymentView(row) : null;
});

@Resolver(() => BillPaymentType)
export class BillPaymentResolver {
  @Authorized()
  @Query(() => BillPaymentType, { nullable: true, description: 'A bill payment and its receipt: the holder’s app that made it, the biller it pays (bills:read), the operator.' })
  async billPayment(@Arg('id', () => ID, { description: 'Global id of the BillPayment.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<BillPaymentType | null> {
    const row = await findBillPaymentFor(ctx.em, ctx.principal!, fromGlobalId(id, 'BillPayment').id);
    return row ? billPaymentView(row) : null;
  }

  @Authorized('CARDHOLDER_APP', 'card:topup')
  @Mutation(() => BillPaymentPayload, { description: 'Pays (part of) a bill from the card purse: returns a bill payment that the card pays at a certified reader (openCardSession(operation: PURCHASE, billPayment)). With fromTopUp: pays it at once with one of your PAID top-ups instead. Cardholder app, scope card:topup.' })
  @Idempotent()
  async payBill(@Arg('input', () => PayBillInput, { description: 'The bill, how much, and your idempotency key.' }) input: PayBillInput, @Ctx() ctx: GraphQLContext): Promise<BillPaymentPayload> {
    return withUserErrors<BillPaymentPayload>(async () => {
      const row = await payBill(ctx.em, ctx.principal!, { billId: fromGlobalId(input.bill, 'Bill').id, amount: input.amount, fromTopUpId: input.fromTopUp ? fromGlobalId(input.fromTopUp, 'TopUp').id : null });
      return { billPayment: billPaymentView(row), userErrors: [] };
    }, { billPayment: null });
  }

  @Authorized('BILLER', 'bills:read')
  @Query(() => BillerReconciliationType, { description: 'Your bill payments of one business day (your city’s date), with totals that equal the ledger’s. Biller, scope bills:read.' })
  async billerReconciliation(@Arg('businessDay', { description: 'YYYY-MM-DD in your city.' }) businessDay: string, @Ctx() ctx: GraphQLContext): Promise<BillerReconciliationType> {
    let day;
    try {
      day = await billerReconciliation(ctx.em, ctx.principal!, businessDay);
    } catch (err) {
      if (err instanceof BillPaymentError) throw new GraphQLError(err.message, { extensions: { code: 'BAD_USER_INPUT' } });
      throw err;
    }
    const currency = day!.lines[0]?.currency ?? 'CNY';
    const payments = await Promise.all(day!.lines.map(async (l) => billPaymentView((await billPaymentById(ctx.em, l.id))!)));
    return Object.assign(new BillerReconciliationType(), {
      businessDay: day!.businessDay,
      count: day!.count,
      total: Money.of(day!.total, currency),
      ledgerTotal: Money.of(day!.ledgerTotal, currency),
      payments,
      csv: reconciliationCsv(day!.lines),
    });
  }
}

/** A bill's payments, for the biller's clerk who looks at one bill (issue 26) and the operator. */
@Resolver(() => BillType)
export class BillPaymentsOfBillResolver {
  @Authorized('BILLER', 'OPERATOR')
  @FieldResolver(() => BillPaymentConnection, { description: 'The bill’s payments, newest first, whatever their status (waiting for the card, paid, canceled, failed): its biller (bills:read or bills:write) and the operator (bills:read). FORBIDDEN to a holder’s app, which reads the payments it made by id (billPayment).' })
  async payments(@Root() bill: BillType, @Args() args: ConnectionArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const rows = await listPaymentsOfBill(ctx.em, ctx.principal!, bill.uuid, { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch });
    if (!rows) throw new GraphQLError('Missing scope: bills:read', { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), billPaymentView);
  }
}

import { GraphQLError } from 'graphql';
import { JSONObjectResolver } from 'graphql-scalars';
import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ConnectionArgs, pageRequest, toConnection } from '../graphql/connection.js';
import type { GraphQLContext } from '../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../graphql/global-id.js';
import { Money } from '../graphql/money.js';
import { nodeLoaders } from '../graphql/node.js';
import { Idempotent } from '../graphql/idempotency.js';
import { withUserErrors } from '../graphql/domain-error.js';
import { UserErrorCode } from '../graphql/user-error.js';
import { cancelPayment, createPayment, findPaymentFor, ledgerEntriesOf, listPaymentsFor, type PaymentRow, type PaymentStatus, refundPayment, refundsOf, type RefundRow } from './payments.service.js';
import {
  CancelPaymentInput,
  CreatePaymentInput,
  PaymentConnection,
  PaymentFilterInput,
  PaymentLedgerEntryType,
  PaymentPayload,
  PaymentRefundType,
  type PaymentCancelReasonEnum,
  type PaymentStatusEnum,
  PaymentType,
  RefundPaymentInput,
  RefundPaymentPayload,
} from './payments.types.js';

export function paymentView(row: PaymentRow): PaymentType {
  return Object.assign(new PaymentType(), {
    id: toGlobalId('Payment', row.id),
    uuid: row.id,
    payerHolderId: row.payer_holder_id ?? null,
    merchant: toGlobalId('Merchant', row.merchant_id),
    merchantName: row.merchant_name,
    amount: Money.of(BigInt(row.amount), row.currency),
    orderReference: row.order_reference,
    description: row.description,
    metadata: row.metadata,
    status: row.status as PaymentStatusEnum,
    expiresAt: row.expires_at,
    failureCode: row.failure_code,
    cancelReason: row.cancel_reason as PaymentCancelReasonEnum | null,
    refundedAmount: Money.of(BigInt(row.refunded_amount), row.currency),
    card: row.card_id ? toGlobalId('Card', row.card_id) : null,
    createdAt: row.created_at,
    succeededAt: row.succeeded_at,
    canceledAt: row.canceled_at,
  });
}

const refundView = (r: RefundRow, currency: string) =>
  Object.assign(new PaymentRefundType(), { id: toGlobalId('PaymentRefund', r.id), amount: Money.of(BigInt(r.amount), currency), reason: r.reason, pendingLoad: toGlobalId('TopUp', r.top_up_id), createdAt: r.created_at });

/**
 * A field for the payment's parties: its merchant and the operator (no other tenant sees the payment
 * at all) and the holder whose card paid it. Another holder's app, asked to pay it, is refused.
 */
function requireParty(ctx: GraphQLContext, payment: PaymentType, field: string): void {
  const p = ctx.principal;
  if (p?.kind !== 'CARDHOLDER_APP' || (payment.payerHolderId !== null && payment.payerHolderId === p.holderId)) return;
  throw new GraphQLError(`Payment.${field} is shown to the payment's merchant and to the holder whose card paid it`, { extensions: { code: 'FORBIDDEN', http: { status: 403 } } });
}

nodeLoaders.set('Payment', async (ctx, id) => {
  const row = ctx.principal && (await findPaymentFor(ctx.em, ctx.principal, id));
  return row ? paymentView(row) : null;
});

@ArgsType()
class PaymentsArgs extends ConnectionArgs {
  @Field(() => PaymentFilterInput, { nullable: true, description: 'Which payments.' })
  filter?: PaymentFilterInput | null;
}

@Resolver(() => PaymentType)
export class PaymentResolver {
  @Authorized()
  @Query(() => PaymentType, { nullable: true, description: 'A payment: your own (merchant), any (operator, payments:read), or one a holder is asked to pay (cardholder app, card:topup).' })
  async payment(@Arg('id', () => ID, { description: 'Global id of the Payment.' }) id: string, @Ctx() ctx: GraphQLContext): Promise<PaymentType | null> {
    const row = await findPaymentFor(ctx.em, ctx.principal!, fromGlobalId(id, 'Payment').id);
    return row ? paymentView(row) : null;
  }

  @Authorized()
  @Query(() => PaymentConnection, { description: 'Your payments, newest first (merchant: payments:read or payments:write; operator: all, payments:read).' })
  async payments(@Args() args: PaymentsArgs, @Ctx() ctx: GraphQLContext) {
    const page = pageRequest(args);
    const f = args.filter ?? {};
    const rows = await listPaymentsFor(
      ctx.em,
      ctx.principal!,
      { statuses: (f.status ?? undefined) as PaymentStatus[] | undefined, orderReference: f.orderReference ?? undefined, createdFrom: f.createdFrom ?? undefined, createdTo: f.createdTo ?? undefined },
      { after: page.after ? { createdAt: page.after.sortKey, id: page.after.id } : undefined, limit: page.fetch },
    );
    return toConnection(rows, page, (r) => ({ sortKey: new Date(r.created_at).toISOString(), id: r.id }), paymentView);
  }

  // Property-level rules (docs/security.md#authorization-scopes-and-properties): a holder's app asked
  // to pay sees what docs/payments.md promises; the fields below are the merchant's, or its payer's.

  @FieldResolver(() => [PaymentRefundType], { description: 'The refunds, oldest first. The merchant, the operator, and the holder whose card paid (FORBIDDEN to another holder’s app).' })
  async refunds(@Root() payment: PaymentType, @Ctx() ctx: GraphQLContext): Promise<PaymentRefundType[]> {
    requireParty(ctx, payment, 'refunds');
    return (await refundsOf(ctx.em, payment.uuid)).map((r) => refundView(r, payment.amount.currency));
  }

  @FieldResolver(() => String, { description: 'The merchant’s order reference; one live payment per order. The merchant, the operator, and the holder whose card paid.' })
  orderReference(@Root() payment: PaymentType, @Ctx() ctx: GraphQLContext): string {
    requireParty(ctx, payment, 'orderReference');
    return payment.orderReference;
  }

  @FieldResolver(() => ID, { nullable: true, description: 'Global id of the Card that paid. The merchant, the operator, and the holder whose card paid.' })
  card(@Root() payment: PaymentType, @Ctx() ctx: GraphQLContext): string | null {
    requireParty(ctx, payment, 'card');
    return payment.card;
  }

  @FieldResolver(() => String, {
    nullable: true,
    description: 'FAILED: the last refusal of the holder’s card (e.g. INSUFFICIENT_BALANCE); CANCELED after a lost card answer: CARD_ANSWER_LOST. The merchant, the operator, and the holder whose card paid.',
  })
  failureCode(@Root() payment: PaymentType, @Ctx() ctx: GraphQLContext): string | null {
    requireParty(ctx, payment, 'failureCode');
    return payment.failureCode;
  }

  @Authorized('MERCHANT', 'OPERATOR')
  @FieldResolver(() => JSONObjectResolver, { description: 'The merchant’s own key-value data (string values). The merchant and the operator only.' })
  metadata(@Root() payment: PaymentType): Record<string, string> {
    return payment.metadata;
  }

  @Authorized('MERCHANT', 'OPERATOR')
  @FieldResolver(() => [PaymentLedgerEntryType], { description: 'The ledger entries of the payment and its refunds, oldest first. The merchant and the operator only (FORBIDDEN to a cardholder app).' })
  async ledgerEntries(@Root() payment: PaymentType, @Ctx() ctx: GraphQLContext): Promise<PaymentLedgerEntryType[]> {
    const rows = await ledgerEntriesOf(ctx.em, payment.uuid);
    return rows.map((e) => Object.assign(new PaymentLedgerEntryType(), { key: e.entry_key, description: e.description, kind: e.kind, amount: Money.of(BigInt(e.amount), e.currency.trim()), postedAt: e.posted_at }));
  }

  @Authorized('MERCHANT', 'payments:write')
  @Mutation(() => PaymentPayload, { description: 'Creates a payment that waits for the holder’s card (REQUIRES_CARD). The holder pays by presenting the card: openCardSession(operation: PURCHASE, payment). Merchant, scope payments:write.' })
  @Idempotent()
  createPayment(@Arg('input', () => CreatePaymentInput, { description: 'The amount, your order reference and your idempotency key.' }) input: CreatePaymentInput, @Ctx() ctx: GraphQLContext): Promise<PaymentPayload> {
    return withUserErrors<PaymentPayload>(async () => ({ payment: paymentView(await createPayment(ctx.em, ctx.principal!, input)), userErrors: [] }), { payment: null });
  }

  @Authorized('MERCHANT', 'payments:write')
  @Mutation(() => PaymentPayload, { description: 'Cancels your payment before it is paid (REQUIRES_CARD → CANCELED). Merchant, scope payments:write.' })
  // A payment being paid right now is worth asking about again: that answer is not stored.
  @Idempotent<PaymentPayload>({ isFinal: (p) => !p.userErrors.some((e) => e.code === UserErrorCode.PAYMENT_IN_PROGRESS) })
  cancelPayment(@Arg('input', () => CancelPaymentInput, { description: 'The payment to cancel and your idempotency key.' }) input: CancelPaymentInput, @Ctx() ctx: GraphQLContext): Promise<PaymentPayload> {
    return withUserErrors<PaymentPayload>(async () => ({ payment: paymentView(await cancelPayment(ctx.em, ctx.principal!, fromGlobalId(input.payment, 'Payment').id)), userErrors: [] }), { payment: null });
  }

  @Authorized('MERCHANT', 'refunds:write')
  @Mutation(() => RefundPaymentPayload, { description: 'Refunds part or all of your succeeded payment, back to the card that paid (as a pending load). Merchant, scope refunds:write.' })
  @Idempotent()
  refundPayment(@Arg('input', () => RefundPaymentInput, { description: 'The payment, how much to refund, and your idempotency key.' }) input: RefundPaymentInput, @Ctx() ctx: GraphQLContext): Promise<RefundPaymentPayload> {
    return withUserErrors<RefundPaymentPayload>(
      async () => {
        const { payment, refund } = await refundPayment(ctx.em, ctx.principal!, fromGlobalId(input.payment, 'Payment').id, { amount: input.amount, reason: input.reason, idempotencyKey: input.idempotencyKey });
        return { payment: paymentView(payment), refund: refundView(refund, payment.currency), userErrors: [] };
      },
      { payment: null, refund: null },
    );
  }
}

import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import type { GraphQLContext } from '../../graphql/context.js';
import { fromGlobalId, toGlobalId } from '../../graphql/global-id.js';
import { userError, UserErrorCode } from '../../graphql/user-error.js';
import { loadKeyEncryptionKey } from '../../secrets/kek.js';
import { TenantStatus } from '../../tenancy/merchant.entity.js';
import { findCardCompany, findMerchant } from '../../tenancy/tenancy.service.js';
import { SoftwareKeyStore } from '../key-store.js';
import { findReaderFor, type ReaderRow } from '../readers.service.js';
import { BILL_PAYMENT } from '../../bills/bill-payment-session.js';
import { findBillPaymentFor } from '../../bills/bill-payments.service.js';
import { PAYMENT } from '../../payments/payment-session.js';
import { findPaymentFor } from '../../payments/payments.service.js';
import { PENDING_LOAD } from '../../topups/pending-load.js';
import { findTopUpFor } from '../../topups/topups.service.js';
import { COUNTER_LOAD } from './counter-load.js';
import { DIRECT_PURCHASE } from './direct-purchase.js';
import { handleMessage, openSession, type ReaderCommand, type SessionRow } from './card-session.service.js';
import { CardOperationEnum, CardSessionMessageInput, CardSessionPayload, type CardSessionStateEnum, CardSessionType, OpenCardSessionInput, ReaderCommandType, SealedCommandType } from './card-session.types.js';

/** The largest load a card company may put on a card at its counter in one session (1,000.00 CNY). */
const MAX_COUNTER_LOAD = 100_000n;
/** The largest purchase a merchant may take from a card in one session (1,000.00 CNY), as for loads. */
const MAX_DIRECT_PURCHASE = 100_000n;

export function sessionView(row: SessionRow): CardSessionType {
  return Object.assign(new CardSessionType(), {
    id: toGlobalId('CardSession', row.id),
    operation: row.operation as CardOperationEnum,
    state: row.state as CardSessionStateEnum,
    challenge: row.challenge,
    nextSeq: row.next_seq,
    expiresAt: row.expires_at,
    reader: toGlobalId('Reader', row.reader_id),
    amount: row.amount === null ? null : BigInt(row.amount),
    result: row.result,
    refusal: row.refusal,
  });
}

const sealedView = (s: ReaderCommand['sealed']) => (s ? Object.assign(new SealedCommandType(), s) : null);
const commandView = (c: ReaderCommand) =>
  Object.assign(new ReaderCommandType(), { apdu: c.apdu ?? null, sealed: sealedView(c.sealed), readUid: c.readUid ?? null, sealedScript: sealedView(c.sealedScript) });

type OpenRefusal = { code: UserErrorCode; message: string; field: string };
type OpenOutcome = SessionRow | OpenRefusal;
const refusal = (code: UserErrorCode, message: string, field: string): OpenRefusal => ({ code, message, field });

/** A balance read: any client that sees the reader. */
async function openBalanceRead(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  if (input.amount != null) return refusal(UserErrorCode.INVALID_INPUT, 'a balance read takes no amount', 'amount');
  return openSession(ctx.em, { reader, operation: 'BALANCE', cardType: input.cardType ?? 'CPU', clientId: ctx.principal!.clientId });
}

/**
 * Writing a paid top-up onto its card (补登): the holder's app on its own reader (scope card:topup),
 * or the card company on one of its readers (scope topups:write). The amount is the top-up's.
 */
async function openPendingLoad(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const principal = ctx.principal!;
  const writeScope = principal.kind === 'CARDHOLDER_APP' ? 'card:topup' : 'topups:write';
  const topUp = principal.scopes.includes(writeScope) ? await findTopUpFor(ctx.em, principal, fromGlobalId(input.topUp!, 'TopUp').id) : null;
  if (!topUp) return refusal(UserErrorCode.NOT_FOUND, `no top-up ${input.topUp} you may load`, 'topUp');
  if (input.amount != null) return refusal(UserErrorCode.INVALID_INPUT, 'a top-up load takes its amount from the top-up', 'amount');
  if ((input.cardType ?? 'CPU') !== 'CPU') return refusal(UserErrorCode.INVALID_INPUT, 'online top-ups are written to CPU cards', 'cardType');
  if (topUp.status !== 'PAID') return refusal(UserErrorCode.INVALID_INPUT, `the top-up is ${topUp.status}, not a pending load`, 'topUp');
  return openSession(ctx.em, { reader, operation: 'LOAD', cardType: 'CPU', amount: BigInt(topUp.amount), clientId: principal.clientId, purpose: PENDING_LOAD, purposeData: { topUpId: topUp.id } });
}

/** A load at the card company's counter: the cash it took in becomes value on the card. */
async function openCounterLoad(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const principal = ctx.principal!;
  if (input.topUp) return openPendingLoad(ctx, reader, input);
  const company = principal.kind === 'ISSUER' && principal.tenantId ? await findCardCompany(ctx.em, principal.tenantId) : null;
  if (!company || company.city.id !== reader.city_id || !principal.scopes.includes('topups:write')) {
    return refusal(UserErrorCode.FORBIDDEN_OPERATION, 'a load is opened by the card company of the reader’s city (scope topups:write)', 'operation');
  }
  if (input.amount == null || input.amount <= 0n || input.amount > MAX_COUNTER_LOAD) return refusal(UserErrorCode.INVALID_INPUT, `a load is 1 to ${MAX_COUNTER_LOAD} minor units`, 'amount');
  return openSession(ctx.em, { reader, operation: 'LOAD', cardType: input.cardType ?? 'CPU', amount: input.amount, clientId: principal.clientId, purpose: COUNTER_LOAD, purposeData: { cardCompanyId: company.id } });
}

/**
 * Paying a merchant's payment with the card: the holder's app on its own reader (scope
 * card:topup), or the merchant on a reader it owns (scope payments:write). The amount is the payment's.
 */
async function openPaymentSession(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const principal = ctx.principal!;
  const payment = await findPaymentFor(ctx.em, principal, fromGlobalId(input.payment!, 'Payment').id);
  const mayPay =
    (principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup')) ||
    (principal.kind === 'MERCHANT' && principal.scopes.includes('payments:write') && reader.owner_kind === 'MERCHANT' && reader.owner_id === principal.tenantId);
  if (!payment || !mayPay) return refusal(UserErrorCode.NOT_FOUND, `no payment ${input.payment} you may pay on this reader`, 'payment');
  if (input.amount != null) return refusal(UserErrorCode.INVALID_INPUT, 'a payment’s session takes its amount from the payment', 'amount');
  if (payment.status !== 'REQUIRES_CARD' && payment.status !== 'PROCESSING') return refusal(UserErrorCode.INVALID_INPUT, `the payment is ${payment.status}`, 'payment');
  if (payment.status === 'REQUIRES_CARD' && new Date(payment.expires_at) <= new Date()) return refusal(UserErrorCode.INVALID_INPUT, 'the payment has expired', 'payment');
  return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: BigInt(payment.amount), clientId: principal.clientId, purpose: PAYMENT, purposeData: { paymentId: payment.id } });
}

/** Paying a bill payment (payBill) with the card: the holder's app that made it, on the holder's own reader. */
async function openBillPaymentSession(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const principal = ctx.principal!;
  const payment = principal.kind === 'CARDHOLDER_APP' && principal.scopes.includes('card:topup') ? await findBillPaymentFor(ctx.em, principal, fromGlobalId(input.billPayment!, 'BillPayment').id) : null;
  if (!payment) return refusal(UserErrorCode.NOT_FOUND, `no bill payment ${input.billPayment} you may pay`, 'billPayment');
  if (input.amount != null) return refusal(UserErrorCode.INVALID_INPUT, 'a bill payment’s session takes its amount from the bill payment', 'amount');
  if (payment.status !== 'REQUIRES_CARD' && payment.status !== 'PROCESSING') return refusal(UserErrorCode.INVALID_INPUT, `the bill payment is ${payment.status}`, 'billPayment');
  if (new Date(payment.expires_at) <= new Date()) return refusal(UserErrorCode.INVALID_INPUT, 'the bill payment has expired', 'billPayment');
  return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: BigInt(payment.amount), clientId: principal.clientId, purpose: BILL_PAYMENT, purposeData: { billPaymentId: payment.id } });
}

/** A purchase by the merchant that owns the reader: the card pays, the merchant's payable grows. */
async function openDirectPurchase(ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput): Promise<OpenOutcome> {
  const principal = ctx.principal!;
  if (input.payment) return openPaymentSession(ctx, reader, input);
  if (input.billPayment) return openBillPaymentSession(ctx, reader, input);
  const ownsReader = principal.kind === 'MERCHANT' && principal.tenantId !== null && reader.owner_kind === 'MERCHANT' && reader.owner_id === principal.tenantId;
  if (!ownsReader || !principal.scopes.includes('payments:write')) {
    return refusal(UserErrorCode.FORBIDDEN_OPERATION, 'a purchase is opened by the merchant that owns the reader (scope payments:write)', 'operation');
  }
  const merchant = await findMerchant(ctx.em, principal.tenantId!);
  if (!merchant || merchant.status !== TenantStatus.ACTIVE) return refusal(UserErrorCode.FORBIDDEN_OPERATION, 'the merchant does not take payments now', 'operation');
  if (input.amount == null || input.amount <= 0n || input.amount > MAX_DIRECT_PURCHASE) return refusal(UserErrorCode.INVALID_INPUT, `a purchase is 1 to ${MAX_DIRECT_PURCHASE} minor units`, 'amount');
  return openSession(ctx.em, { reader, operation: 'PURCHASE', cardType: input.cardType ?? 'CPU', amount: input.amount, clientId: principal.clientId, purpose: DIRECT_PURCHASE, purposeData: { merchantId: merchant.id } });
}

const OPENERS: Record<CardOperationEnum, (ctx: GraphQLContext, reader: ReaderRow, input: OpenCardSessionInput) => Promise<OpenOutcome>> = {
  [CardOperationEnum.BALANCE]: openBalanceRead,
  [CardOperationEnum.LOAD]: openCounterLoad,
  [CardOperationEnum.PURCHASE]: openDirectPurchase,
};

@Resolver()
export class CardSessionResolver {
  @Authorized()
  @Mutation(() => CardSessionPayload, {
    description:
      'Opens a card session on a reader you may use. BALANCE: any client that sees the reader. LOAD with topUp: writes a PAID top-up onto its card (the holder’s app on its reader, scope card:topup; or the card company, scope topups:write). LOAD without: the card company at its counter (scope topups:write), on a reader of its city. PURCHASE with payment: pays a merchant’s Payment (the holder’s app on its reader, scope card:topup; or the merchant on its reader, scope payments:write). PURCHASE with billPayment: pays a bill (the holder’s app that made the bill payment, scope card:topup). PURCHASE: the merchant that owns the reader (scope payments:write).',
  })
  async openCardSession(@Arg('input', () => OpenCardSessionInput, { description: 'The session to open.' }) input: OpenCardSessionInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const reader = await findReaderFor(ctx.em, ctx.principal!, fromGlobalId(input.reader, 'Reader').id);
    const outcome: OpenOutcome = !reader
      ? refusal(UserErrorCode.NOT_FOUND, `no reader ${input.reader}`, 'reader')
      : reader.status !== 'ACTIVE'
        ? refusal(UserErrorCode.INVALID_INPUT, `the reader is ${reader.status}`, 'reader')
        : await OPENERS[input.operation](ctx, reader, input);
    if ('code' in outcome) return { session: null, commands: [], userErrors: [userError(outcome.code, outcome.message, ['input', outcome.field])] };
    return { session: sessionView(outcome), commands: [], userErrors: [] };
  }

  @Authorized()
  @Mutation(() => CardSessionPayload, { description: 'Relays one signed reader message; returns the commands for the card, or why the session was refused (and ended). Only the client that opened the session.' })
  async cardSessionMessage(@Arg('input', () => CardSessionMessageInput, { description: 'The reader’s signed message.' }) input: CardSessionMessageInput, @Ctx() ctx: GraphQLContext): Promise<CardSessionPayload> {
    const keyStore = new SoftwareKeyStore(ctx.em.fork(), await loadKeyEncryptionKey(ctx.config));
    const outcome = await handleMessage(ctx.em, { keyStore }, { sessionId: fromGlobalId(input.session, 'CardSession').id, seq: input.seq, body: input.body, signature: input.signature, clientId: ctx.principal!.clientId });
    if (outcome.ok) return { session: sessionView(outcome.session), commands: outcome.commands.map(commandView), userErrors: [] };
    if (!outcome.session) return { session: null, commands: [], userErrors: [userError(UserErrorCode.NOT_FOUND, 'no such card session', ['input', 'session'])] };
    return { session: sessionView(outcome.session), commands: [], userErrors: [userError(UserErrorCode.CARD_SESSION_REFUSED, `${outcome.refusal}: ${outcome.message}`, ['input'])] };
  }
}

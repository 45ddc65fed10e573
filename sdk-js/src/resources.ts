/**
 * Resource-style helpers over the typed operations: `onecard.payments.create(input)`,
 * `onecard.bills.pay(input)`, `onecard.topUps.get(id)`, … Each is one generated document run through
 * the client, so nothing is lost: results are typed by the document, a mutation answers a
 * {@link MutationResult} (`ok` narrows it), money mutations get an idempotency key when the input has
 * none (or `options.idempotencyKey`) and are retried safely with it, lists walk every page.
 *
 * For any other operation, `client.execute` / `client.mutate` take the generated document itself
 * (`IssueCardDocument`, …): the SDK has one for every query and mutation of the schema.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import type { OneCardClient, RequestOptions } from './client.js';
import type { OperationVariables } from './documents.js';
import {
  AmendBillDocument,
  BillDocument,
  BillsDocument,
  BillsForAccountDocument,
  BlockCardDocument,
  CancelPaymentDocument,
  CardDocument,
  CardHistoryDocument,
  CardsDocument,
  CreateMerchantDocument,
  CreatePaymentDocument,
  CreateTopUpDocument,
  CreateWebhookEndpointDocument,
  EventsDocument,
  ImportBillsCsvDocument,
  IssueCardDocument,
  MerchantDocument,
  MerchantsDocument,
  PayBillDocument,
  PaymentDocument,
  PaymentsDocument,
  PublishBillDocument,
  PublishBillsDocument,
  ReaderDocument,
  ReadersDocument,
  RefundPaymentDocument,
  RefundTopUpDocument,
  RegisterReaderDocument,
  ReplaceCardDocument,
  ReportCardLostDocument,
  ResolvePendingLoadDocument,
  TopUpDocument,
  UnblockCardDocument,
  UpdateMerchantDocument,
  WebhookEndpointsDocument,
  WithdrawBillDocument,
} from './generated/graphql.js';
import type { Connection, MutationResult } from './results.js';

/** The `input` a caller passes to a mutation whose variables are `V` (its `idempotencyKey` optional). */
export type InputOf<V> = OperationVariables<V> extends { input: infer I } ? I : never;

/** A mutation `(input) => result`: `document` with `{ input }`. */
function mutation<TData, V extends { input: unknown }>(client: OneCardClient, document: TypedDocumentNode<TData, V>) {
  return (input: InputOf<V>, options?: RequestOptions): Promise<MutationResult<TData>> =>
    (client.mutate as (d: TypedDocumentNode<TData, V>, v: unknown, o?: RequestOptions) => Promise<MutationResult<TData>>)(document, { input }, options);
}

/** A look-up by id: the root field's value, null when there is none or it is not yours. */
function byId<TData, K extends keyof TData>(client: OneCardClient, document: TypedDocumentNode<TData, { id: string | number }>, field: K) {
  return async (id: string, options?: RequestOptions): Promise<TData[K]> => (await client.execute(document, { id }, options))[field];
}

/** A list: every node of the connection, page by page (`first` is the page size). */
function list<TData, V extends { after?: string | null }, TNode>(client: OneCardClient, document: TypedDocumentNode<TData, V>, pick: (data: TData) => Connection<TNode> | null | undefined) {
  return (variables?: Omit<OperationVariables<V>, 'after'>, options?: RequestOptions): AsyncGenerator<TNode, void, undefined> =>
    client.paginate(document, (variables ?? {}) as OperationVariables<V>, pick, options);
}

/** Merchant payments and refunds (docs/payments.md). */
function paymentsOf(client: OneCardClient) {
  return {
    /** Creates a payment for an order (money mutation: idempotent with its key). */
    create: mutation(client, CreatePaymentDocument),
    /** One payment, with its refunds and ledger entries. */
    get: byId(client, PaymentDocument, 'payment'),
    /** Your payments, newest first; `filter` narrows them (status, order reference, …). */
    list: list(client, PaymentsDocument, (d) => d.payments),
    /** Cancels a payment no card has paid yet. */
    cancel: mutation(client, CancelPaymentDocument),
    /** Refunds a succeeded payment, in full or in part (money mutation). */
    refund: mutation(client, RefundPaymentDocument),
  };
}

/** Online top-ups of a card (docs/topups.md). */
function topUpsOf(client: OneCardClient) {
  return {
    /** Starts a top-up of a card through the payment gateway (money mutation). */
    create: mutation(client, CreateTopUpDocument),
    /** One top-up, with its history. */
    get: byId(client, TopUpDocument, 'topUp'),
    /** Refunds a paid top-up not yet loaded onto the card (money mutation). */
    refund: mutation(client, RefundTopUpDocument),
    /** Settles a pending load whose write the card cannot settle (card company; money mutation). */
    resolvePendingLoad: mutation(client, ResolvePendingLoadDocument),
  };
}

/** Billers' bills and paying them (docs/billers.md). */
function billsOf(client: OneCardClient) {
  return {
    /** Publishes one bill (biller). */
    publish: mutation(client, PublishBillDocument),
    /** Publishes many bills at once; refusals are listed per bill (biller). */
    publishMany: mutation(client, PublishBillsDocument),
    /** Imports bills from CSV text (biller). */
    importCsv: mutation(client, ImportBillsCsvDocument),
    /** Changes a bill's amount or due date (biller). */
    amend: mutation(client, AmendBillDocument),
    /** Withdraws an unpaid bill (biller). */
    withdraw: mutation(client, WithdrawBillDocument),
    /** One bill. */
    get: byId(client, BillDocument, 'bill'),
    /** Bills, newest first; `filter` narrows them. */
    list: list(client, BillsDocument, (d) => d.bills),
    /** The open bills of a customer account at a biller (a holder's app). */
    async forAccount(biller: string, accountNumber: string, options?: RequestOptions) {
      return (await client.execute(BillsForAccountDocument, { biller, accountNumber }, options)).billsForAccount;
    },
    /** Starts paying a bill from a card (money mutation); the card pays it in a card session. */
    pay: mutation(client, PayBillDocument),
  };
}

/** Cards (docs/cards.md). */
function cardsOf(client: OneCardClient) {
  return {
    /** Issues a card (card company). */
    issue: mutation(client, IssueCardDocument),
    /** One card, with its purse balance and pending load. */
    get: byId(client, CardDocument, 'card'),
    /** The cards you may see. */
    list: list(client, CardsDocument, (d) => d.cards),
    /** A card's transactions, newest first (`from`/`to` bound them). */
    history(card: string, variables: { first?: number; from?: string; to?: string } = {}, options?: RequestOptions) {
      return client.paginate(CardHistoryDocument, { card, ...variables }, (d) => d.card?.history, options);
    },
    /** Reports a card lost (挂失): blocked at once. */
    reportLost: mutation(client, ReportCardLostDocument),
    /** Replaces a card (补卡), moving its balance to the new one. */
    replace: mutation(client, ReplaceCardDocument),
    block: mutation(client, BlockCardDocument),
    unblock: mutation(client, UnblockCardDocument),
  };
}

/** Merchants (docs/tenancy.md). */
function merchantsOf(client: OneCardClient) {
  return {
    create: mutation(client, CreateMerchantDocument),
    update: mutation(client, UpdateMerchantDocument),
    get: byId(client, MerchantDocument, 'merchant'),
    list: list(client, MerchantsDocument, (d) => d.merchants),
  };
}

/** Certified readers (docs/readers.md). */
function readersOf(client: OneCardClient) {
  return {
    /** Registers a reader from its CSRs; the payload carries its certificate chains. */
    register: mutation(client, RegisterReaderDocument),
    get: byId(client, ReaderDocument, 'reader'),
    list: list(client, ReadersDocument, (d) => d.readers),
  };
}

/** Webhook endpoints and the events sent to them (docs/webhooks.md). */
function webhooksOf(client: OneCardClient) {
  return {
    /** Registers an endpoint; the payload has its signing secret, shown this once. */
    createEndpoint: mutation(client, CreateWebhookEndpointDocument),
    endpoints: list(client, WebhookEndpointsDocument, (d) => d.webhookEndpoints),
    /** Your events, newest first (`types` filters them). */
    events: list(client, EventsDocument, (d) => d.events),
  };
}

export type PaymentsResource = ReturnType<typeof paymentsOf>;
export type TopUpsResource = ReturnType<typeof topUpsOf>;
export type BillsResource = ReturnType<typeof billsOf>;
export type CardsResource = ReturnType<typeof cardsOf>;
export type MerchantsResource = ReturnType<typeof merchantsOf>;
export type ReadersResource = ReturnType<typeof readersOf>;
export type WebhooksResource = ReturnType<typeof webhooksOf>;

/** The resources of a client (OneCardClient's `payments`, `topUps`, … are these). */
export function resourcesOf(client: OneCardClient) {
  return {
    payments: paymentsOf(client),
    topUps: topUpsOf(client),
    bills: billsOf(client),
    cards: cardsOf(client),
    merchants: merchantsOf(client),
    readers: readersOf(client),
    webhooks: webhooksOf(client),
  };
}

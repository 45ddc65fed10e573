import { Field, ObjectType, registerEnumType } from 'type-graphql';
import { boundedMessage } from './errors.js';

/** Every business-rule refusal of every mutation. One enum for the whole API, grown by each context. */
export enum UserErrorCode {
  INVALID_INPUT = 'INVALID_INPUT',
  /** The caller may not do this particular operation (a business rule, not a missing scope). */
  FORBIDDEN_OPERATION = 'FORBIDDEN_OPERATION',
  /** A card session step was refused; the message names the check, and the session is over. */
  CARD_SESSION_REFUSED = 'CARD_SESSION_REFUSED',
  NOT_FOUND = 'NOT_FOUND',
  // ledger
  UNBALANCED_ENTRY = 'UNBALANCED_ENTRY',
  MIXED_CURRENCIES = 'MIXED_CURRENCIES',
  INSUFFICIENT_FUNDS = 'INSUFFICIENT_FUNDS',
  ENTRY_KEY_REUSED = 'ENTRY_KEY_REUSED',
  ALREADY_REVERSED = 'ALREADY_REVERSED',
  // tenancy
  /** A city code already taken. */
  DUPLICATE_CODE = 'DUPLICATE_CODE',
  /** A fee plan name, or a merchant's or biller's name within its city, already taken. */
  DUPLICATE_NAME = 'DUPLICATE_NAME',
  INVALID_TIME_ZONE = 'INVALID_TIME_ZONE',
  /** A fee plan in another currency than the city of the merchant or biller it is given to. */
  CURRENCY_MISMATCH = 'CURRENCY_MISMATCH',
  // cards
  /** A card number that is not 16 to 19 digits or fails its Luhn check digit. */
  INVALID_CARD_NUMBER = 'INVALID_CARD_NUMBER',
  DUPLICATE_CARD_NUMBER = 'DUPLICATE_CARD_NUMBER',
  /** A card with the same application serial number (or M1 UID) is already issued. */
  DUPLICATE_ASN = 'DUPLICATE_ASN',
  /** A card status change the card's transitions do not allow (e.g. REPLACED → ACTIVE). */
  INVALID_CARD_TRANSITION = 'INVALID_CARD_TRANSITION',
  /** A cardholder app asked to manage an anonymous card (not registered to any cardholder). */
  CARD_NOT_REGISTERED = 'CARD_NOT_REGISTERED',
  // card profiles
  /** A card profile names an algorithm id with no known meaning (known: 00, 01 = 3DES; 04 = SM4). */
  UNKNOWN_ALGORITHM_ID = 'UNKNOWN_ALGORITHM_ID',
  /** A card profile names an AID that is not 5 to 16 bytes of hex. */
  MALFORMED_AID = 'MALFORMED_AID',
  /** A card profile names a short file identifier outside 1–30, or the same file twice. */
  INVALID_SFI = 'INVALID_SFI',
  // top-ups
  /** The card is not ACTIVE, or cannot take this operation (an M1 card and online top-ups). */
  CARD_NOT_USABLE = 'CARD_NOT_USABLE',
  /** A top-up below the minimum or above the maximum single top-up. */
  TOP_UP_AMOUNT_OUT_OF_RANGE = 'TOP_UP_AMOUNT_OUT_OF_RANGE',
  /** The card’s top-ups today (in its city) would pass the daily limit. */
  DAILY_LIMIT_EXCEEDED = 'DAILY_LIMIT_EXCEEDED',
  /** The card’s purse with what is paid or on its way would pass the purse maximum. */
  PURSE_LIMIT_EXCEEDED = 'PURSE_LIMIT_EXCEEDED',
  /** The idempotency key was used before by this client for a different request. */
  IDEMPOTENCY_KEY_REUSED = 'IDEMPOTENCY_KEY_REUSED',
  /** The payment gateway did not answer (or refused the request); what was recorded is kept and retried. */
  GATEWAY_UNAVAILABLE = 'GATEWAY_UNAVAILABLE',
  /** The gateway declined the payment method. */
  PAYMENT_DECLINED = 'PAYMENT_DECLINED',
  /** The top-up cannot be refunded now (not PAID, a load in progress, or the card can still take it). */
  NOT_REFUNDABLE = 'NOT_REFUNDABLE',
  // payments
  /** An order reference that already has a live (not canceled or failed) payment. */
  DUPLICATE_ORDER = 'DUPLICATE_ORDER',
  /** The payment is not in a state that allows this (e.g. canceling a paid one, refunding an unpaid one). */
  INVALID_PAYMENT_STATE = 'INVALID_PAYMENT_STATE',
  /** A card session is paying the payment right now (or its answer was lost and the card's next tap settles it). */
  PAYMENT_IN_PROGRESS = 'PAYMENT_IN_PROGRESS',
  /** The refund is more than is left to refund of the payment. */
  REFUND_EXCEEDS_PAYMENT = 'REFUND_EXCEEDS_PAYMENT',
  // webhooks
  /** A webhook URL that is not https (http only on a loopback host outside production), or carries credentials. */
  INVALID_WEBHOOK_URL = 'INVALID_WEBHOOK_URL',
  /** An event type that is not in the list of docs/webhooks.md (nor "*"). */
  UNKNOWN_EVENT_TYPE = 'UNKNOWN_EVENT_TYPE',
  /** The owner already has the most webhook endpoints allowed (16). */
  WEBHOOK_ENDPOINT_LIMIT_REACHED = 'WEBHOOK_ENDPOINT_LIMIT_REACHED',
  /** The webhook endpoint is disabled; enable it first. */
  WEBHOOK_ENDPOINT_DISABLED = 'WEBHOOK_ENDPOINT_DISABLED',
  // bills
  /** The biller already has a bill with this reference, or the same list or file names it twice. */
  DUPLICATE_BILLER_REFERENCE = 'DUPLICATE_BILLER_REFERENCE',
  /** The bill is not OPEN (paid or withdrawn), or partly paid where that rules the change out. */
  INVALID_BILL_STATE = 'INVALID_BILL_STATE',
  /** `expectedVersion` is not the bill's version: someone changed it since you read it. */
  BILL_VERSION_CONFLICT = 'BILL_VERSION_CONFLICT',
  /** An amount due at or below what has already been paid on the bill. */
  AMOUNT_DUE_BELOW_PAID = 'AMOUNT_DUE_BELOW_PAID',
  /** A CSV file that cannot be read: quoting, header, no rows. */
  INVALID_CSV = 'INVALID_CSV',
  /** A CSV file over the limits (10 MB, 50,000 rows). */
  CSV_TOO_LARGE = 'CSV_TOO_LARGE',
  /** Rows of a CSV import were refused (the import's report lists each); nothing was imported. */
  BILL_IMPORT_REFUSED = 'BILL_IMPORT_REFUSED',
  /** A bill look-up URL that is not https (http only on a loopback host outside production), or carries credentials. */
  INVALID_FETCH_URL = 'INVALID_FETCH_URL',
  /** The biller did not answer the live bill look-up (down, too slow, or an answer we cannot use). */
  BILLER_UNAVAILABLE = 'BILLER_UNAVAILABLE',
  // bill payments
  /** The bill is not OPEN (paid or withdrawn), or nothing remains to pay on it. */
  BILL_NOT_PAYABLE = 'BILL_NOT_PAYABLE',
  /** A part of a bill whose biller takes it only in full. */
  PARTIAL_PAYMENT_NOT_ALLOWED = 'PARTIAL_PAYMENT_NOT_ALLOWED',
  /** More than remains to pay on the bill: a bill is never overpaid. */
  OVERPAYMENT = 'OVERPAYMENT',
  /** Another payment of this bill is waiting for a card or being paid. */
  BILL_PAYMENT_IN_PROGRESS = 'BILL_PAYMENT_IN_PROGRESS',
  // settlement
  /** A terminal's offline batch was refused whole (certificate, terminal, signature or body); the message names the check. Nothing was recorded. */
  OFFLINE_BATCH_REFUSED = 'OFFLINE_BATCH_REFUSED',
  /** The terminal already uploaded a different batch under this batch id. */
  OFFLINE_BATCH_ID_REUSED = 'OFFLINE_BATCH_ID_REUSED',
  /** A QR ride batch from a terminal its card company has not registered as a QR scanner (setQrScanner). Nothing was recorded. */
  QR_SCANNER_NOT_REGISTERED = 'QR_SCANNER_NOT_REGISTERED',
  /** A settlement window for a business day that has not begun in its city. */
  WINDOW_NOT_STARTED = 'WINDOW_NOT_STARTED',
  /** The settlement window is still open: close it before clearing or reconciling it. */
  WINDOW_OPEN = 'WINDOW_OPEN',
  /** The reconciliation difference was resolved before (or matched since). */
  DIFFERENCE_NOT_OPEN = 'DIFFERENCE_NOT_OPEN',
  // readers
  /** Another reader of the city is registered with this terminal number (a number is unique per city). */
  DUPLICATE_TERMINAL_NUMBER = 'DUPLICATE_TERMINAL_NUMBER',
  // card master keys
  /** The wrapped key does not unwrap under the key-transport key (or is not a 16-byte key). Nothing was imported. */
  KEY_NOT_UNWRAPPED = 'KEY_NOT_UNWRAPPED',
  /** The key unwrapped has another key check value than the one sent: a wrong key or a wrong KCV. Nothing was imported. */
  KEY_CHECK_VALUE_MISMATCH = 'KEY_CHECK_VALUE_MISMATCH',
  /** This purpose and key version exist already: a new key takes a new version. */
  KEY_VERSION_TAKEN = 'KEY_VERSION_TAKEN',
  /** Only a PENDING key is activated, only an ACTIVE one retired. */
  INVALID_KEY_TRANSITION = 'INVALID_KEY_TRANSITION',
}
registerEnumType(UserErrorCode, {
  name: 'UserErrorCode',
  description: 'Why a mutation refused its input (a business rule; docs/errors.md#usererror-codes lists who raises each).',
  valuesConfig: {
    KEY_NOT_UNWRAPPED: { description: '`importCardMasterKey`: the wrapped key does not unwrap under the key-transport key (`cardKeyTransportKey`), or is not 16 bytes. Nothing was imported.' },
    KEY_CHECK_VALUE_MISMATCH: { description: '`importCardMasterKey`: the key unwrapped has another key check value than the one sent. Nothing was imported.' },
    KEY_VERSION_TAKEN: { description: '`importCardMasterKey`: the purpose and key version exist already; a new key takes a new version.' },
    INVALID_KEY_TRANSITION: { description: '`activateCardMasterKey`, `retireCardMasterKey`: only a PENDING key is activated, only an ACTIVE one retired.' },
    DUPLICATE_TERMINAL_NUMBER: { description: '`registerReader`: another reader of the city is registered with this terminal number; a terminal number is unique per city. Nothing was registered.' },
    INVALID_INPUT: { description: 'A field breaks a rule the message names; `field` points at it. Raised by most mutations.' },
    FORBIDDEN_OPERATION: { description: 'The caller may not do this particular operation: a business rule, not a missing scope (e.g. a counter top-up with a holder’s saved payment method, a merchant that does not take payments).' },
    CARD_SESSION_REFUSED: { description: 'A card session step was refused (`cardSessionMessage`); the message starts with the refusal (docs/errors.md#card-session-refusals), and the session is over.' },
    NOT_FOUND: { description: 'No such object that you may see: another tenant’s object answers exactly like a missing id.' },
    UNBALANCED_ENTRY: { description: '`postJournalEntry`: the lines do not sum to zero, or there are fewer than two.' },
    MIXED_CURRENCIES: { description: '`postJournalEntry`: lines in more than one currency.' },
    INSUFFICIENT_FUNDS: { description: '`postJournalEntry`, `reverseJournalEntry`: a non-negative account (a card purse) would go below zero.' },
    ENTRY_KEY_REUSED: { description: '`postJournalEntry`: the entry key was posted before with other lines.' },
    ALREADY_REVERSED: { description: '`reverseJournalEntry`: the entry has a reversal already.' },
    DUPLICATE_CODE: { description: '`createCity`: the city code is already taken.' },
    DUPLICATE_NAME: { description: 'A fee plan name, or a merchant’s or biller’s name within its city, is already taken.' },
    INVALID_TIME_ZONE: { description: '`createCity`: not an IANA time zone name (e.g. `Asia/Shanghai`).' },
    CURRENCY_MISMATCH: { description: 'Another currency than the city’s (a fee plan given to a merchant or biller) or the merchant’s (`createPayment`).' },
    INVALID_CARD_NUMBER: { description: '`issueCard`, `replaceCard`: a card number that is not 16 to 19 digits or fails its Luhn check digit.' },
    DUPLICATE_CARD_NUMBER: { description: '`issueCard`, `replaceCard`: the card number is issued already.' },
    DUPLICATE_ASN: { description: '`issueCard`, `replaceCard`: a card with the same application serial number (or M1 UID) is issued already.' },
    INVALID_CARD_TRANSITION: { description: 'A card status change the card’s transitions do not allow (e.g. REPLACED → ACTIVE); docs/cards.md.' },
    CARD_NOT_REGISTERED: { description: 'A cardholder app asked to manage an anonymous card (not registered to any cardholder).' },
    UNKNOWN_ALGORITHM_ID: { description: '`setCardProfile`: an algorithm id with no known meaning (known: 0 and 1 = 3DES, 4 = SM4), or none.' },
    MALFORMED_AID: { description: '`setCardProfile`: an AID that is not 5 to 16 bytes of hex.' },
    INVALID_SFI: { description: '`setCardProfile`: a short file identifier outside 1–30, or the same file for the public data and the transaction log.' },
    CARD_NOT_USABLE: { description: '`createTopUp`: the card is not ACTIVE, or cannot take this operation (an M1 card and online top-ups).' },
    TOP_UP_AMOUNT_OUT_OF_RANGE: { description: '`createTopUp`, `setAutoTopUp`: a top-up below the minimum or above the maximum single top-up.' },
    DAILY_LIMIT_EXCEEDED: { description: '`createTopUp`: the card’s top-ups today (its city’s day) would pass the daily limit.' },
    PURSE_LIMIT_EXCEEDED: { description: '`createTopUp`: the card’s purse with what is paid or on its way, plus this top-up, would pass the purse maximum.' },
    IDEMPOTENCY_KEY_REUSED: { description: '`createTopUp`: the idempotency key was used before by this client for a different request (the GraphQL error of the same name usually answers first).' },
    GATEWAY_UNAVAILABLE: { description: '`createTopUp`, `refundTopUp`: the payment gateway did not answer (or refused the request); what was recorded is kept, returned in the payload and retried.' },
    PAYMENT_DECLINED: { description: '`createTopUp`: the gateway declined the payment method; the top-up is FAILED with a `failureCode`.' },
    NOT_REFUNDABLE: { description: '`refundTopUp`: not PAID, a load was started on the card, the card can still take it (cardholder app), or not a gateway payment.' },
    DUPLICATE_ORDER: { description: '`createPayment`: the order reference already has a live (not canceled or failed) payment.' },
    INVALID_PAYMENT_STATE: { description: '`cancelPayment`, `refundPayment`: the payment’s state does not allow it (e.g. canceling a paid payment, refunding an unpaid or fully refunded one).' },
    PAYMENT_IN_PROGRESS: { description: '`cancelPayment`: a card session is paying the payment right now, or its answer was lost (the card’s next tap or the expiry settles it).' },
    REFUND_EXCEEDS_PAYMENT: { description: '`refundPayment`: the refund is more than is left to refund of the payment.' },
    INVALID_WEBHOOK_URL: { description: 'A webhook URL that is not https (http only on a loopback host outside production), carries credentials, or is a private address in production.' },
    UNKNOWN_EVENT_TYPE: { description: 'An event type that is not in the list of docs/webhooks.md (nor `*`), or one your kind of client never receives.' },
    WEBHOOK_ENDPOINT_LIMIT_REACHED: { description: '`createWebhookEndpoint`: the owner already has the most webhook endpoints allowed (16).' },
    WEBHOOK_ENDPOINT_DISABLED: { description: '`replayWebhookEvent`: the webhook endpoint is disabled; enable it first.' },
    DUPLICATE_BILLER_REFERENCE: { description: '`publishBill`, `publishBills`, `importBillsCsv`: the biller already has a bill with this reference, or the same list or file names it twice.' },
    INVALID_BILL_STATE: { description: '`amendBill`, `withdrawBill`: the bill is not OPEN (paid or withdrawn), or partly paid where that rules the change out.' },
    BILL_VERSION_CONFLICT: { description: '`amendBill`, `withdrawBill`: `expectedVersion` is not the bill’s version: someone changed it since you read it.' },
    AMOUNT_DUE_BELOW_PAID: { description: '`amendBill`: an amount due at or below what has already been paid on the bill.' },
    INVALID_CSV: { description: '`importBillsCsv`: the file cannot be read (quoting, header, no rows).' },
    CSV_TOO_LARGE: { description: '`importBillsCsv`: the file is over the limits (10 MB, 50,000 rows).' },
    BILL_IMPORT_REFUSED: { description: '`publishBills`, `importBillsCsv`: some items or rows were refused (the report lists each); nothing was imported.' },
    INVALID_FETCH_URL: { description: '`setBillerFetchUrl`: a bill look-up URL that is not https (http only on a loopback host outside production), carries credentials, or is internal in production.' },
    BILLER_UNAVAILABLE: { description: '`billsForAccount`: the biller’s live look-up did not answer (down, too slow, or an answer we cannot use); the bills stored before are returned.' },
    BILL_NOT_PAYABLE: { description: '`payBill`: the bill is not OPEN (paid or withdrawn), or nothing remains to pay on it.' },
    PARTIAL_PAYMENT_NOT_ALLOWED: { description: '`payBill`: a part of a bill whose biller takes it only in full.' },
    OVERPAYMENT: { description: '`payBill`: more than remains to pay on the bill; a bill is never overpaid.' },
    BILL_PAYMENT_IN_PROGRESS: { description: '`payBill`: another payment of this bill is waiting for a card or being paid.' },
    OFFLINE_BATCH_REFUSED: { description: '`uploadOfflineBatch`: the batch was refused whole (terminal, certificate, signature or body); the message names the check. Nothing was recorded.' },
    OFFLINE_BATCH_ID_REUSED: { description: '`uploadOfflineBatch`: the terminal already uploaded a different batch under this batch id.' },
    QR_SCANNER_NOT_REGISTERED: { description: '`uploadQrRideBatch`: the terminal is not registered as a QR scanner by the card company of its city (`setQrScanner`); the batch was refused whole and nothing was recorded.' },
    WINDOW_NOT_STARTED: { description: '`closeSettlementWindow`: the business day has not begun in its city; a window closes today’s business at the earliest.' },
    WINDOW_OPEN: { description: '`clearSettlementWindow`, `reconcileSettlementWindow`: the settlement window is still open; close it first (or wait for the cut-off).' },
    DIFFERENCE_NOT_OPEN: { description: '`resolveReconciliationDifference`: the reconciliation difference was resolved before, or the two sides match since.' },
  },
});

@ObjectType({ description: 'A business rule a mutation refused, with the input field it is about.' })
export class UserError {
  @Field(() => UserErrorCode, { description: 'The rule that refused the input; stable, so branch on it.' })
  code!: UserErrorCode;

  @Field(() => [String], { nullable: true, description: 'Path of the input field at fault, e.g. ["input", "lines", "1", "amount"].' })
  field?: string[] | null;

  @Field({ description: 'A sentence for the developer; not for end users.' })
  message!: string;
}

/** A refusal; its message is cut to MAX_ERROR_MESSAGE characters, as it may quote the input. */
export function userError(code: UserErrorCode, message: string, field?: (string | number)[]): UserError {
  return Object.assign(new UserError(), { code, message: boundedMessage(message), field: field?.map(String) ?? null });
}

import { randomBytes } from 'node:crypto';
import type { DecodedForm } from './form-encoding.js';
import type { BalanceTransaction, GatewayErrorBody, GatewayEvent, PaymentIntent, Payout, Refund } from './gateway-client.js';

/*
 * The sandbox gateway's books: payment intents, refunds, payouts, balance transactions and events,
 * with the rules of a Stripe-like gateway. No I/O: the server (sandbox-gateway.ts) answers HTTP,
 * persists snapshots, delivers the events in `outbox` and runs the settlements `dueSettlements()`
 * names. Every operation runs synchronously, so two requests never interleave inside one.
 */

/** A refusal as the gateway words it: an HTTP status and a Stripe-like error body. */
export class SandboxApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: GatewayErrorBody,
  ) {
    super(body.error.message);
    this.name = 'SandboxApiError';
  }
}

export function invalidRequest(code: string, message: string, param?: string, status = 400): SandboxApiError {
  return new SandboxApiError(status, { error: { type: 'invalid_request_error', code, message, ...(param ? { param } : {}) } });
}

/** Test payment methods that decline, and how (Stripe's test card names). */
const DECLINES: Record<string, { decline_code: string; message: string }> = {
  pm_card_chargeDeclined: { decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_insufficientFunds: { decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
};
/** A test payment method whose payments succeed and whose refunds succeed, then fail (as Stripe's does). */
const REFUND_FAILS = 'pm_card_refundFail';
const PAYMENT_METHOD = /^pm_[A-Za-z0-9_]+$/;
/** A payout with this metadata key fails with its value as failure_code (a sandbox-only switch). */
export const SANDBOX_PAYOUT_FAILURE_KEY = 'sandbox_failure_code';

/** Each state and the states it may go to; nothing sets a status except through move(). */
type Transitions<S extends string> = Record<S, readonly S[]>;
const INTENT_MOVES: Transitions<PaymentIntent['status']> = {
  requires_payment_method: ['requires_payment_method', 'requires_confirmation', 'succeeded', 'canceled'],
  requires_confirmation: ['requires_payment_method', 'succeeded', 'canceled'],
  processing: ['requires_payment_method', 'succeeded', 'canceled'],
  succeeded: [],
  canceled: [],
};
const REFUND_MOVES: Transitions<Refund['status']> = {
  pending: ['succeeded', 'failed', 'canceled'],
  succeeded: ['failed'],
  failed: [],
  canceled: [],
};
const PAYOUT_MOVES: Transitions<Payout['status']> = {
  pending: ['in_transit', 'paid', 'failed', 'canceled'],
  in_transit: ['paid', 'failed', 'canceled'],
  paid: [],
  failed: [],
  canceled: [],
};

function move<S extends string, T extends { id: string; object: string; status: S }>(table: Transitions<S>, obj: T, to: S): void {
  if (!table[obj.status].includes(to)) {
    throw invalidRequest(`${obj.object}_unexpected_state`, `This ${obj.object} (${obj.id}) is ${obj.status}; it cannot become ${to}.`);
  }
  obj.status = to;
}

/** Stripe-looking ids: a type prefix and 24 random lower-case hex digits. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}

/** A stored answer to a POST with an Idempotency-Key, and what it was an answer to. */
export interface IdempotentResponse {
  fingerprint: string;
  status: number;
  body: string;
}

/** The whole state as written to statePath. */
export interface SandboxSnapshot {
  version: 1;
  paymentIntents: PaymentIntent[];
  refunds: Refund[];
  payouts: Payout[];
  balanceTransactions: BalanceTransaction[];
  events: GatewayEvent[];
  idempotency: [string, IdempotentResponse][];
}

export interface SandboxRules {
  /** The gateway's fee on a charge, in hundredths of a percent. */
  feeBasisPoints: number;
  /** How long a payout (or the failure of a refund to a failing card) takes. */
  settleDelayMs: number;
  now?: () => Date;
}

/** A change that happens later, on its own: a payout arriving, a refund to a failing card failing. */
export type Settlement = { kind: 'payout' | 'refund'; id: string };

function amountParam(form: DecodedForm, name: string, required: boolean): number | undefined {
  const raw = form.get(name);
  if (raw === undefined || raw === '') {
    if (required) throw invalidRequest('parameter_missing', `Missing required param: ${name}.`, name);
    return undefined;
  }
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(value)) throw invalidRequest('parameter_invalid_integer', `Invalid integer: ${raw}`, name);
  if (value < 1) throw invalidRequest('amount_too_small', 'Amount must be at least 1 minor unit.', name);
  return value;
}

function currencyParam(form: DecodedForm): string {
  const raw = form.get('currency');
  if (!raw) throw invalidRequest('parameter_missing', 'Missing required param: currency.', 'currency');
  if (!/^[a-z]{3}$/.test(raw)) throw invalidRequest('parameter_invalid_string', `Invalid currency: ${raw}. Use a lower-case ISO 4217 code.`, 'currency');
  return raw;
}

function integerParam(form: DecodedForm, name: string, read: (f: DecodedForm) => string | undefined = (f) => f.get(name)): number | undefined {
  const raw = read(form);
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?[0-9]{1,15}$/.test(raw)) throw invalidRequest('parameter_invalid_integer', `Invalid integer: ${raw}`, name);
  return Number(raw);
}

function paymentMethodParam(form: DecodedForm): string | undefined {
  const raw = form.get('payment_method');
  if (raw === undefined || raw === '') return undefined;
  if (!PAYMENT_METHOD.test(raw)) throw invalidRequest('resource_missing', `No such PaymentMethod: '${raw}'`, 'payment_method');
  return raw;
}

function bySequence(a: BalanceTransaction, b: BalanceTransaction): number {
  return a.created - b.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class SandboxState {
  readonly paymentIntents = new Map<string, PaymentIntent>();
  readonly refunds = new Map<string, Refund>();
  readonly payouts = new Map<string, Payout>();
  readonly balanceTransactions = new Map<string, BalanceTransaction>();
  readonly events = new Map<string, GatewayEvent>();
  readonly idempotency = new Map<string, IdempotentResponse>();
  /** Events recorded but not yet handed to the server for delivery. */
  outbox: GatewayEvent[] = [];

  constructor(private readonly opts: SandboxRules) {}

  static fromSnapshot(snapshot: SandboxSnapshot, rules: SandboxRules): SandboxState {
    if (snapshot.version !== 1) throw new Error(`sandbox gateway state: unknown version ${String(snapshot.version)}`);
    const state = new SandboxState(rules);
    for (const pi of snapshot.paymentIntents) state.paymentIntents.set(pi.id, pi);
    for (const re of snapshot.refunds) state.refunds.set(re.id, re);
    for (const po of snapshot.payouts) state.payouts.set(po.id, po);
    for (const bt of snapshot.balanceTransactions) state.balanceTransactions.set(bt.id, bt);
    for (const ev of snapshot.events) state.events.set(ev.id, ev);
    for (const [key, response] of snapshot.idempotency) state.idempotency.set(key, response);
    return state;
  }

  snapshot(): SandboxSnapshot {
    return {
      version: 1,
      paymentIntents: [...this.paymentIntents.values()],
      refunds: [...this.refunds.values()],
      payouts: [...this.payouts.values()],
      balanceTransactions: [...this.balanceTransactions.values()],
      events: [...this.events.values()],
      idempotency: [...this.idempotency],
    };
  }

  #seconds(): number {
    return Math.floor((this.opts.now?.() ?? new Date()).getTime() / 1000);
  }

  /** Records an event with a copy of the object as it is now, and queues it for delivery. */
  #emit(type: string, object: PaymentIntent | Refund | Payout): void {
    const event: GatewayEvent = { id: newId('evt'), object: 'event', type, created: this.#seconds(), data: { object: structuredClone(object) } };
    this.events.set(event.id, event);
    this.outbox.push(event);
  }

  #balanceTransaction(p: Pick<BalanceTransaction, 'amount' | 'fee' | 'currency' | 'type' | 'source'>): BalanceTransaction {
    const created = this.#seconds();
    // Funds are available at once: the sandbox has no settlement delay on charges.
    const bt: BalanceTransaction = { id: newId('txn'), object: 'balance_transaction', ...p, net: p.amount - p.fee, created, available_on: created };
    this.balanceTransactions.set(bt.id, bt);
    return bt;
  }

  #find<T>(map: Map<string, T>, id: string, what: string, param?: string): T {
    const found = map.get(id);
    if (!found) throw invalidRequest('resource_missing', `No such ${what}: '${id}'`, param, param ? 400 : 404);
    return found;
  }

  paymentIntent(id: string): PaymentIntent {
    return this.#find(this.paymentIntents, id, 'payment_intent');
  }

  refund(id: string): Refund {
    return this.#find(this.refunds, id, 'refund');
  }

  payout(id: string): Payout {
    return this.#find(this.payouts, id, 'payout');
  }

  event(id: string): GatewayEvent {
    return this.#find(this.events, id, 'event');
  }

  createPaymentIntent(form: DecodedForm): PaymentIntent {
    const amount = amountParam(form, 'amount', true)!;
    const currency = currencyParam(form);
    const paymentMethod = paymentMethodParam(form);
    const confirm = form.get('confirm') === 'true';
    if (confirm && !paymentMethod) throw invalidRequest('parameter_missing', 'confirm=true needs a payment_method.', 'payment_method');
    const id = newId('pi');
    const intent: PaymentIntent = {
      id,
      object: 'payment_intent',
      amount,
      currency,
      status: 'requires_payment_method',
      client_secret: `${id}_secret_${randomBytes(12).toString('hex')}`,
      metadata: form.nested('metadata'),
      payment_method: null,
      last_payment_error: null,
      latest_charge: null,
      created: this.#seconds(),
      description: form.get('description') ?? null,
    };
    this.paymentIntents.set(id, intent);
    if (paymentMethod && confirm) return this.#confirm(intent, paymentMethod);
    if (paymentMethod) {
      move(INTENT_MOVES, intent, 'requires_confirmation');
      intent.payment_method = paymentMethod;
    }
    return intent;
  }

  confirmPaymentIntent(id: string, form: DecodedForm): PaymentIntent {
    const intent = this.paymentIntent(id);
    const paymentMethod = paymentMethodParam(form) ?? intent.payment_method;
    if (!paymentMethod) throw invalidRequest('parameter_missing', 'Missing required param: payment_method.', 'payment_method');
    return this.#confirm(intent, paymentMethod);
  }

  /** Charges the card: succeeded with a charge and its balance transaction, or a 402 carrying the intent. */
  #confirm(intent: PaymentIntent, paymentMethod: string): PaymentIntent {
    if (intent.status !== 'requires_payment_method' && intent.status !== 'requires_confirmation') {
      throw invalidRequest('payment_intent_unexpected_state', `This payment_intent (${intent.id}) is ${intent.status}; it cannot be confirmed.`);
    }
    const decline = DECLINES[paymentMethod];
    if (decline) {
      move(INTENT_MOVES, intent, 'requires_payment_method');
      intent.payment_method = null;
      intent.last_payment_error = { code: 'card_declined', ...decline };
      this.#emit('payment_intent.payment_failed', intent);
      throw new SandboxApiError(402, {
        error: { type: 'card_error', code: 'card_declined', ...decline, payment_intent: structuredClone(intent) },
      });
    }
    move(INTENT_MOVES, intent, 'succeeded');
    const charge = newId('ch');
    intent.payment_method = paymentMethod;
    intent.last_payment_error = null;
    intent.latest_charge = charge;
    const fee = Math.round((intent.amount * this.opts.feeBasisPoints) / 10_000);
    this.#balanceTransaction({ amount: intent.amount, fee, currency: intent.currency, type: 'charge', source: charge });
    this.#emit('payment_intent.succeeded', intent);
    return intent;
  }

  cancelPaymentIntent(id: string): PaymentIntent {
    const intent = this.paymentIntent(id);
    move(INTENT_MOVES, intent, 'canceled');
    this.#emit('payment_intent.canceled', intent);
    return intent;
  }

  /** What has been refunded of an intent and not failed. */
  #refunded(intentId: string): number {
    let total = 0;
    for (const re of this.refunds.values()) if (re.payment_intent === intentId && (re.status === 'succeeded' || re.status === 'pending')) total += re.amount;
    return total;
  }

  createRefund(form: DecodedForm): Refund {
    const intentId = form.get('payment_intent');
    if (!intentId) throw invalidRequest('parameter_missing', 'Missing required param: payment_intent.', 'payment_intent');
    const intent = this.#find(this.paymentIntents, intentId, 'payment_intent', 'payment_intent');
    if (intent.status !== 'succeeded') {
      throw invalidRequest('payment_intent_unexpected_state', `This payment_intent (${intent.id}) is ${intent.status}; only a succeeded one can be refunded.`, 'payment_intent');
    }
    const left = intent.amount - this.#refunded(intent.id);
    if (left <= 0) throw invalidRequest('charge_already_refunded', `This payment_intent (${intent.id}) has already been refunded.`, 'payment_intent');
    const amount = amountParam(form, 'amount', false) ?? left;
    if (amount > left) throw invalidRequest('amount_too_large', `Refund amount (${amount}) is greater than the unrefunded amount (${left}).`, 'amount');
    const refund: Refund = {
      id: newId('re'),
      object: 'refund',
      amount,
      currency: intent.currency,
      payment_intent: intent.id,
      status: 'pending',
      metadata: form.nested('metadata'),
      created: this.#seconds(),
      failure_reason: null,
    };
    this.refunds.set(refund.id, refund);
    move(REFUND_MOVES, refund, 'succeeded');
    this.#balanceTransaction({ amount: -amount, fee: 0, currency: refund.currency, type: 'refund', source: refund.id });
    this.#emit('refund.created', refund);
    this.#emit('charge.refunded', intent);
    return refund;
  }

  /** A refund to pm_card_refundFail fails after it succeeded; the money comes back to the balance. */
  failRefund(id: string): void {
    const refund = this.refund(id);
    if (refund.status !== 'succeeded') return;
    move(REFUND_MOVES, refund, 'failed');
    refund.failure_reason = 'expired_or_canceled_card';
    this.#balanceTransaction({ amount: refund.amount, fee: 0, currency: refund.currency, type: 'refund', source: refund.id });
    this.#emit('refund.updated', refund);
  }

  /** The sum of every balance transaction in a currency: what a payout may take. */
  balance(currency: string): number {
    let total = 0;
    for (const bt of this.balanceTransactions.values()) if (bt.currency === currency) total += bt.net;
    return total;
  }

  createPayout(form: DecodedForm): Payout {
    const amount = amountParam(form, 'amount', true)!;
    const currency = currencyParam(form);
    const available = this.balance(currency);
    if (amount > available) throw invalidRequest('balance_insufficient', `The payout (${amount}) is more than the available balance (${available} ${currency}).`, 'amount');
    const created = this.#seconds();
    const payout: Payout = {
      id: newId('po'),
      object: 'payout',
      amount,
      currency,
      status: 'pending',
      metadata: form.nested('metadata'),
      created,
      arrival_date: created + Math.ceil(this.opts.settleDelayMs / 1000),
      failure_code: null,
    };
    this.payouts.set(payout.id, payout);
    this.#balanceTransaction({ amount: -amount, fee: 0, currency, type: 'payout', source: payout.id });
    return payout;
  }

  /** The bank's answer to a pending payout: paid, or failed with the money back in the balance. */
  settlePayout(id: string): void {
    const payout = this.payout(id);
    if (payout.status !== 'pending' && payout.status !== 'in_transit') return;
    const failure = payout.metadata[SANDBOX_PAYOUT_FAILURE_KEY];
    if (failure) {
      move(PAYOUT_MOVES, payout, 'failed');
      payout.failure_code = failure;
      this.#balanceTransaction({ amount: payout.amount, fee: 0, currency: payout.currency, type: 'payout', source: payout.id });
      this.#emit('payout.failed', payout);
    } else {
      move(PAYOUT_MOVES, payout, 'paid');
      this.#emit('payout.paid', payout);
    }
  }

  /** Everything still waiting to settle: pending payouts, and refunds to a card whose refunds fail. */
  dueSettlements(): Settlement[] {
    const due: Settlement[] = [];
    for (const po of this.payouts.values()) if (po.status === 'pending' || po.status === 'in_transit') due.push({ kind: 'payout', id: po.id });
    for (const re of this.refunds.values()) {
      if (re.status === 'succeeded' && this.paymentIntents.get(re.payment_intent)?.payment_method === REFUND_FAILS) due.push({ kind: 'refund', id: re.id });
    }
    return due;
  }

  settle(s: Settlement): void {
    if (s.kind === 'payout') this.settlePayout(s.id);
    else this.failRefund(s.id);
  }

  /** One page oldest first (created, then id), `created[gte]`, `created[lt]`, `limit` (1–100, 10), `starting_after`. */
  listBalanceTransactions(form: DecodedForm): { object: 'list'; url: string; data: BalanceTransaction[]; has_more: boolean } {
    const gte = integerParam(form, 'created[gte]', (f) => f.nested('created').gte);
    const lt = integerParam(form, 'created[lt]', (f) => f.nested('created').lt);
    const limit = integerParam(form, 'limit') ?? 10;
    if (limit < 1 || limit > 100) throw invalidRequest('parameter_invalid_integer', 'limit must be from 1 to 100.', 'limit');
    let rows = [...this.balanceTransactions.values()].sort(bySequence);
    const after = form.get('starting_after');
    if (after) {
      const cursor = this.#find(this.balanceTransactions, after, 'balance_transaction', 'starting_after');
      rows = rows.filter((bt) => bySequence(bt, cursor) > 0);
    }
    rows = rows.filter((bt) => (gte === undefined || bt.created >= gte) && (lt === undefined || bt.created < lt));
    return { object: 'list', url: '/v1/balance_transactions', data: rows.slice(0, limit), has_more: rows.length > limit };
  }
}

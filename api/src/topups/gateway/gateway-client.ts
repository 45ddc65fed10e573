import { encodeForm, type FormValue } from './form-encoding.js';

/*
 * A client for the payment gateway, a Stripe-like HTTP API: form-encoded requests, Bearer auth,
 * an Idempotency-Key on every POST, JSON answers, and errors as `{ error: { type, code, … } }`.
 * Amounts are integer minor units (fen), currencies lower case on the wire ('cny').
 */

/** The header the gateway signs its webhooks in (webhooks/webhook-signature.ts: the same t=…,v1=… scheme as ours), lower case as node:http gives it. */
export const GATEWAY_SIGNATURE_HEADER = 'gateway-signature';

export interface PaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  currency: string;
  status: 'requires_payment_method' | 'requires_confirmation' | 'processing' | 'succeeded' | 'canceled';
  client_secret: string;
  metadata: Record<string, string>;
  payment_method: string | null;
  last_payment_error: { code: string; decline_code?: string; message: string } | null;
  latest_charge: string | null;
  created: number;
  description?: string | null;
}

export interface Refund {
  id: string;
  object: 'refund';
  amount: number;
  currency: string;
  payment_intent: string;
  status: 'pending' | 'succeeded' | 'failed' | 'canceled';
  metadata: Record<string, string>;
  created: number;
  failure_reason?: string | null;
}

export interface BalanceTransaction {
  id: string;
  object: 'balance_transaction';
  amount: number;
  fee: number;
  net: number;
  currency: string;
  type: 'charge' | 'refund' | 'payout';
  source: string;
  created: number;
  available_on: number;
}

export interface Payout {
  id: string;
  object: 'payout';
  amount: number;
  currency: string;
  status: 'pending' | 'in_transit' | 'paid' | 'failed' | 'canceled';
  metadata: Record<string, string>;
  created: number;
  arrival_date: number;
  failure_code?: string | null;
}

export interface GatewayEvent {
  id: string;
  object: 'event';
  type: string;
  created: number;
  data: { object: PaymentIntent | Refund | Payout };
}

/** The error body the gateway answers with on any non-2xx. */
export interface GatewayErrorBody {
  error: { type: string; code?: string; decline_code?: string; message: string; param?: string; payment_intent?: PaymentIntent };
}

export type GatewayErrorKind = 'CARD_DECLINED' | 'INVALID_REQUEST' | 'AUTHENTICATION' | 'UNAVAILABLE';

export class GatewayError extends Error {
  readonly kind: GatewayErrorKind;
  readonly status?: number;
  readonly code?: string;
  readonly declineCode?: string;
  readonly paymentIntent?: PaymentIntent;
  /** UNAVAILABLE: the request may or may not have taken effect; retry with the same idempotency key. */
  readonly retryable: boolean;

  constructor(
    kind: GatewayErrorKind,
    message: string,
    details: { status?: number; code?: string; declineCode?: string; paymentIntent?: PaymentIntent; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GatewayError';
    this.kind = kind;
    this.status = details.status;
    this.code = details.code;
    this.declineCode = details.declineCode;
    this.paymentIntent = details.paymentIntent;
    this.retryable = kind === 'UNAVAILABLE';
  }
}

export interface GatewayClientOptions {
  url: string;
  secretKey: string;
  /** Per attempt. Default 10 000. */
  timeoutMs?: number;
  /** On network errors, time-outs, 429 and 5xx, with the same Idempotency-Key. Default 2. */
  retries?: number;
  /** Before the first retry; doubled each time. Default 250. */
  retryDelayMs?: number;
}

/** The most a JSON number carries exactly: the gateway's amounts are JSON numbers. */
const MAX_AMOUNT = BigInt(Number.MAX_SAFE_INTEGER);

/** An amount for the wire: a positive whole number of minor units that a JSON number holds exactly. */
function wireAmount(amount: bigint, name = 'amount'): string {
  if (typeof amount !== 'bigint' || amount <= 0n || amount > MAX_AMOUNT) {
    throw new RangeError(`${name}: expected a positive whole number of minor units up to ${MAX_AMOUNT}, got ${String(amount)}`);
  }
  return amount.toString();
}

function wireCurrency(currency: string): string {
  const lower = currency.toLowerCase();
  if (!/^[a-z]{3}$/.test(lower)) throw new RangeError(`currency: expected an ISO 4217 code, got ${JSON.stringify(currency)}`);
  return lower;
}

function requireKey(idempotencyKey: string): string {
  if (!idempotencyKey || idempotencyKey.length > 255) throw new RangeError('idempotencyKey: expected 1 to 255 characters');
  return idempotencyKey;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a status without a usable error body means; the body, when there is one, adds the detail. */
function kindOf(status: number): GatewayErrorKind {
  if (status === 402) return 'CARD_DECLINED';
  if (status === 401 || status === 403) return 'AUTHENTICATION';
  // 409: another request with the same idempotency key is still running; its outcome is unknown yet.
  if (status === 409 || status === 429 || status >= 500) return 'UNAVAILABLE';
  return 'INVALID_REQUEST';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type Request = { method: 'GET' | 'POST'; path: string; params?: Record<string, FormValue>; idempotencyKey?: string; expect: string };

export class GatewayClient {
  readonly #base: string;
  readonly #secretKey: string;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #retryDelayMs: number;

  constructor(opts: GatewayClientOptions) {
    this.#base = opts.url.replace(/\/+$/, '');
    // Private field: the key stays out of JSON.stringify, util.inspect and so out of any log line.
    this.#secretKey = opts.secretKey;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
    this.#retries = opts.retries ?? 2;
    this.#retryDelayMs = opts.retryDelayMs ?? 250;
  }

  async createPaymentIntent(
    p: { amount: bigint; currency: string; metadata: Record<string, string>; description?: string; paymentMethod?: string; confirm?: boolean },
    idempotencyKey: string,
  ): Promise<PaymentIntent> {
    const params = {
      amount: wireAmount(p.amount),
      currency: wireCurrency(p.currency),
      metadata: p.metadata,
      description: p.description,
      payment_method: p.paymentMethod,
      confirm: p.confirm,
    };
    return this.#call({ method: 'POST', path: '/v1/payment_intents', params, idempotencyKey: requireKey(idempotencyKey), expect: 'payment_intent' });
  }

  async retrievePaymentIntent(id: string): Promise<PaymentIntent> {
    return this.#call({ method: 'GET', path: `/v1/payment_intents/${encodeURIComponent(id)}`, expect: 'payment_intent' });
  }

  /** Confirms an intent with a payment method; a decline throws CARD_DECLINED carrying the intent. */
  async confirmPaymentIntent(id: string, p: { paymentMethod: string }, idempotencyKey: string): Promise<PaymentIntent> {
    const path = `/v1/payment_intents/${encodeURIComponent(id)}/confirm`;
    return this.#call({ method: 'POST', path, params: { payment_method: p.paymentMethod }, idempotencyKey: requireKey(idempotencyKey), expect: 'payment_intent' });
  }

  async cancelPaymentIntent(id: string, idempotencyKey: string): Promise<PaymentIntent> {
    const path = `/v1/payment_intents/${encodeURIComponent(id)}/cancel`;
    return this.#call({ method: 'POST', path, params: {}, idempotencyKey: requireKey(idempotencyKey), expect: 'payment_intent' });
  }

  /** Without an amount, refunds what is left of the intent. */
  async createRefund(p: { paymentIntent: string; amount?: bigint; metadata?: Record<string, string> }, idempotencyKey: string): Promise<Refund> {
    const params = { payment_intent: p.paymentIntent, amount: p.amount === undefined ? undefined : wireAmount(p.amount), metadata: p.metadata };
    return this.#call({ method: 'POST', path: '/v1/refunds', params, idempotencyKey: requireKey(idempotencyKey), expect: 'refund' });
  }

  async retrieveRefund(id: string): Promise<Refund> {
    return this.#call({ method: 'GET', path: `/v1/refunds/${encodeURIComponent(id)}`, expect: 'refund' });
  }

  /** One page, oldest first (by created, then id); pass the last id as startingAfter for the next. */
  async listBalanceTransactions(p: { createdGte?: number; createdLt?: number; limit?: number; startingAfter?: string }): Promise<{ data: BalanceTransaction[]; has_more: boolean }> {
    const created: Record<string, number> = {};
    if (p.createdGte !== undefined) created.gte = p.createdGte;
    if (p.createdLt !== undefined) created.lt = p.createdLt;
    const params = { created, limit: p.limit, starting_after: p.startingAfter };
    const list = await this.#call<{ data: BalanceTransaction[]; has_more: boolean }>({ method: 'GET', path: '/v1/balance_transactions', params, expect: 'list' });
    return { data: list.data, has_more: list.has_more };
  }

  async createPayout(p: { amount: bigint; currency: string; metadata?: Record<string, string> }, idempotencyKey: string): Promise<Payout> {
    const params = { amount: wireAmount(p.amount), currency: wireCurrency(p.currency), metadata: p.metadata };
    return this.#call({ method: 'POST', path: '/v1/payouts', params, idempotencyKey: requireKey(idempotencyKey), expect: 'payout' });
  }

  async retrievePayout(id: string): Promise<Payout> {
    return this.#call({ method: 'GET', path: `/v1/payouts/${encodeURIComponent(id)}`, expect: 'payout' });
  }

  /** A stored event, e.g. to re-read one whose webhook we missed. */
  async retrieveEvent(id: string): Promise<GatewayEvent> {
    return this.#call({ method: 'GET', path: `/v1/events/${encodeURIComponent(id)}`, expect: 'event' });
  }

  /** Sends one request, retrying what may be passing (network, time-out, 429, 5xx) with the same key. */
  async #call<T>(req: Request): Promise<T> {
    let failure: GatewayError | undefined;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      if (attempt > 0) await sleep(this.#retryDelayMs * 2 ** (attempt - 1));
      const outcome = await this.#attempt<T>(req);
      if (!(outcome instanceof GatewayError)) return outcome;
      failure = outcome;
      if (!outcome.retryable) break;
    }
    throw failure!;
  }

  /** One try: the parsed body, or the GatewayError it amounts to (returned, not thrown). */
  async #attempt<T>(req: Request): Promise<T | GatewayError> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#secretKey}`, accept: 'application/json' };
    let url = `${this.#base}${req.path}`;
    let body: string | undefined;
    const form = encodeForm(req.params ?? {});
    if (req.method === 'POST') {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      headers['idempotency-key'] = req.idempotencyKey!;
      body = form.toString();
    } else if (form.size > 0) {
      url += `?${form}`;
    }
    const what = `${req.method} ${req.path}`;
    let status: number;
    let text: string;
    try {
      // One signal for the whole exchange: a body that stalls half-way also times out.
      const res = await fetch(url, { method: req.method, headers, body, signal: AbortSignal.timeout(this.#timeoutMs) });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      return new GatewayError('UNAVAILABLE', `${what}: ${timedOut ? `no answer in ${this.#timeoutMs} ms` : 'the gateway could not be reached'}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status >= 200 && status < 300) {
      if (isRecord(parsed) && parsed.object === req.expect) return parsed as T;
      // It answered, so the request may have taken effect: replaying the key gives the stored answer.
      return new GatewayError('UNAVAILABLE', `${what}: HTTP ${status} without the expected ${req.expect} object`, { status });
    }
    const error = isRecord(parsed) && isRecord(parsed.error) ? (parsed.error as GatewayErrorBody['error']) : undefined;
    const kind = kindOf(status);
    const message = error?.message ? `${what}: ${error.message}` : `${what}: HTTP ${status}`;
    return new GatewayError(kind, message, {
      status,
      code: typeof error?.code === 'string' ? error.code : undefined,
      declineCode: typeof error?.decline_code === 'string' ? error.decline_code : undefined,
      paymentIntent: isRecord(error?.payment_intent) ? error.payment_intent : undefined,
    });
  }
}

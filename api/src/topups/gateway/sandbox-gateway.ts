import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { decodeForm, type DecodedForm } from './form-encoding.js';
import { GATEWAY_SIGNATURE_HEADER, type GatewayErrorBody, type GatewayEvent } from './gateway-client.js';
import { CHECKOUT_PAGE_CSP, checkoutNotFoundPage, checkoutPage, type CheckoutOutcome } from './sandbox-checkout-page.js';
import { invalidRequest, SandboxApiError, SandboxState, type Settlement, type SandboxSnapshot } from './sandbox-state.js';
import { signatureHeader } from '../../webhooks/webhook-signature.js';

/*
 * A sandbox payment gateway: a real HTTP server speaking the subset of the gateway API that
 * GatewayClient uses, with test cards, a hosted checkout page, signed webhooks and payouts. The
 * platform starts one when no GATEWAY_URL is configured; tests start their own.
 *
 * Test payment methods: pm_card_chargeDeclined and pm_card_insufficientFunds decline (402);
 * pm_card_refundFail pays, and its refunds fail after settleDelay; any other pm_… pays. A payout
 * with metadata[sandbox_failure_code] fails with that code.
 */

export interface SandboxGatewayOptions {
  secretKey: string;
  webhookSecret: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Persist state as JSON (write to temp + rename) so a restart keeps intents. */
  statePath?: string;
  webhookUrl?: string;
  /** Default 60 (0.6 %). */
  feeBasisPoints?: number;
  /** Default 1000. */
  payoutDelayMs?: number;
  /** Default [1000, 5000, 30000]: the waits before each retry of a webhook that was not answered 2xx. */
  webhookRetryDelaysMs?: number[];
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

export interface SandboxGateway {
  url: string;
  setWebhookUrl(url: string): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const WEBHOOK_TIMEOUT_MS = 10_000;
const SILENT = { info() {}, warn() {} };

/** The API, as a table: method, path, and what it does to the books. */
interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  run(state: SandboxState, form: DecodedForm, id: string): unknown;
}
const ROUTES: Route[] = [
  { method: 'POST', path: /^\/v1\/payment_intents$/, run: (s, form) => s.createPaymentIntent(form) },
  { method: 'GET', path: /^\/v1\/payment_intents\/([^/]+)$/, run: (s, _, id) => s.paymentIntent(id) },
  { method: 'POST', path: /^\/v1\/payment_intents\/([^/]+)\/confirm$/, run: (s, form, id) => s.confirmPaymentIntent(id, form) },
  { method: 'POST', path: /^\/v1\/payment_intents\/([^/]+)\/cancel$/, run: (s, _, id) => s.cancelPaymentIntent(id) },
  { method: 'POST', path: /^\/v1\/refunds$/, run: (s, form) => s.createRefund(form) },
  { method: 'GET', path: /^\/v1\/refunds\/([^/]+)$/, run: (s, _, id) => s.refund(id) },
  { method: 'GET', path: /^\/v1\/balance_transactions$/, run: (s, form) => s.listBalanceTransactions(form) },
  { method: 'POST', path: /^\/v1\/payouts$/, run: (s, form) => s.createPayout(form) },
  { method: 'GET', path: /^\/v1\/payouts\/([^/]+)$/, run: (s, _, id) => s.payout(id) },
  { method: 'GET', path: /^\/v1\/events\/([^/]+)$/, run: (s, _, id) => s.event(id) },
];
const CHECKOUT = /^\/checkout\/([^/]+)$/;

class BodyTooLarge extends Error {}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: http.ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'request-id': `req_${randomBytes(8).toString('hex')}`, ...headers });
  res.end(body);
}

function sendError(res: http.ServerResponse, err: SandboxApiError): void {
  send(res, err.status, JSON.stringify(err.body));
}

function sendHtml(res: http.ServerResponse, status: number, html: string): void {
  send(res, status, html, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': CHECKOUT_PAGE_CSP });
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalidRequest('resource_missing', `Malformed id: '${segment}'`, undefined, 404);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

async function loadState(statePath: string | undefined, rules: ConstructorParameters<typeof SandboxState>[0]): Promise<SandboxState> {
  if (!statePath) return new SandboxState(rules);
  let text: string;
  try {
    text = await fs.readFile(statePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await fs.mkdir(path.dirname(statePath), { recursive: true });
    return new SandboxState(rules);
  }
  return SandboxState.fromSnapshot(JSON.parse(text) as SandboxSnapshot, rules);
}

/** Writes the whole file or nothing: a crash mid-write leaves the previous state. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temp, text, { mode: 0o600 });
  await fs.rename(temp, file);
}

export async function startSandboxGateway(opts: SandboxGatewayOptions): Promise<SandboxGateway> {
  const log = opts.log ?? SILENT;
  const payoutDelayMs = opts.payoutDelayMs ?? 1000;
  const retryDelays = opts.webhookRetryDelaysMs ?? [1000, 5000, 30_000];
  const state = await loadState(opts.statePath, { feeBasisPoints: opts.feeBasisPoints ?? 60, settleDelayMs: payoutDelayMs });
  const expectedKey = sha256(opts.secretKey);
  let webhookUrl = opts.webhookUrl;
  let closed = false;
  const closing = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  const deliveries = new Set<Promise<void>>();
  const scheduled = new Set<string>();
  let writing: Promise<void> = Promise.resolve();

  function later(ms: number, fn: () => void): void {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!closed) fn();
    }, ms);
    timers.add(timer);
  }

  /** Queues a snapshot of the state as it is now; resolves once it (and every earlier one) is on disk. */
  function save(): Promise<void> {
    const statePath = opts.statePath;
    if (!statePath) return Promise.resolve();
    const text = JSON.stringify(state.snapshot());
    writing = writing.then(() => writeAtomically(statePath, text)).catch((err: unknown) => log.warn({ err, statePath }, 'sandbox gateway: state not saved'));
    return writing;
  }

  /** Posts one event, signed afresh on each attempt; a failure is retried after the next delay, then dropped. */
  function deliver(event: GatewayEvent, attempt: number): void {
    const target = webhookUrl;
    if (!target || closed) return;
    const body = JSON.stringify(event);
    const headers = { 'content-type': 'application/json', [GATEWAY_SIGNATURE_HEADER]: signatureHeader([opts.webhookSecret], body, Math.floor(Date.now() / 1000)) };
    const retry = (reason: string) => {
      if (closed) return;
      const delay = retryDelays[attempt];
      if (delay === undefined) {
        log.warn({ event: event.id, type: event.type, attempts: attempt + 1, reason }, 'sandbox gateway: webhook dropped after its last retry');
        return;
      }
      later(delay, () => deliver(event, attempt + 1));
    };
    const delivery = fetch(target, { method: 'POST', headers, body, signal: AbortSignal.any([closing.signal, AbortSignal.timeout(WEBHOOK_TIMEOUT_MS)]) })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) log.info({ event: event.id, type: event.type, attempt }, 'sandbox gateway: webhook delivered');
        else retry(`HTTP ${res.status}`);
      })
      .catch((err: unknown) => retry(err instanceof Error ? err.message : String(err)))
      .finally(() => deliveries.delete(delivery));
    deliveries.add(delivery);
  }

  async function settle(s: Settlement): Promise<void> {
    try {
      state.settle(s);
    } catch (err) {
      log.warn({ err, settlement: s }, 'sandbox gateway: settlement failed');
    }
    await save();
    flush();
  }

  /** After a response (or a settlement): sends the events it recorded and schedules what settles later. */
  function flush(): void {
    const events = state.outbox;
    state.outbox = [];
    for (const event of events) deliver(event, 0);
    for (const s of state.dueSettlements()) {
      const key = `${s.kind}:${s.id}`;
      if (scheduled.has(key)) continue;
      scheduled.add(key);
      later(payoutDelayMs, () => {
        scheduled.delete(key);
        void settle(s);
      });
    }
  }

  function authorized(header: string | undefined): boolean {
    const m = /^Bearer (.+)$/.exec(header ?? '');
    return m !== null && timingSafeEqual(sha256(m[1]!), expectedKey);
  }

  async function api(req: http.IncomingMessage, res: http.ServerResponse, pathname: string, query: string, raw: string): Promise<void> {
    if (!authorized(req.headers.authorization)) {
      const body: GatewayErrorBody = { error: { type: 'invalid_request_error', message: req.headers.authorization ? 'Invalid API Key provided.' : 'You did not provide an API key.' } };
      return send(res, 401, JSON.stringify(body), { 'www-authenticate': 'Bearer realm="sandbox-gateway"' });
    }
    const route = ROUTES.find((r) => r.method === req.method && r.path.test(pathname));
    if (!route) return sendError(res, invalidRequest('resource_missing', `Unrecognized request URL (${req.method}: ${pathname}).`, undefined, 404));
    const id = decodeSegment(route.path.exec(pathname)![1] ?? '');
    if (route.method === 'GET') {
      try {
        return send(res, 200, JSON.stringify(route.run(state, decodeForm(query), id)));
      } catch (err) {
        if (err instanceof SandboxApiError) return sendError(res, err);
        throw err;
      }
    }
    const form = decodeForm(raw);
    const key = req.headers['idempotency-key'];
    const idempotencyKey = typeof key === 'string' && key !== '' ? key : undefined;
    // Same key, same request: the stored answer. Same key, another request: refused (Stripe's rule).
    const fingerprint = `${req.method} ${pathname}\n${form.canonical()}`;
    const stored = idempotencyKey === undefined ? undefined : state.idempotency.get(idempotencyKey);
    if (stored) {
      if (stored.fingerprint === fingerprint) return send(res, stored.status, stored.body, { 'idempotent-replayed': 'true' });
      const reuse: GatewayErrorBody = {
        error: { type: 'idempotency_error', code: 'idempotency_key_reuse', message: `Keys for idempotent requests can only be used with the same parameters they were first used with (${idempotencyKey}).` },
      };
      return send(res, 400, JSON.stringify(reuse));
    }
    let answer: { status: number; body: string };
    try {
      answer = { status: 200, body: JSON.stringify(route.run(state, form, id)) };
    } catch (err) {
      if (!(err instanceof SandboxApiError)) throw err;
      answer = { status: err.status, body: JSON.stringify(err.body) };
    }
    if (idempotencyKey !== undefined) state.idempotency.set(idempotencyKey, { fingerprint, ...answer });
    await save();
    send(res, answer.status, answer.body);
  }

  async function checkout(req: http.IncomingMessage, res: http.ServerResponse, intentId: string, raw: string): Promise<void> {
    const intent = state.paymentIntents.get(intentId);
    if (!intent) return sendHtml(res, 404, checkoutNotFoundPage(intentId));
    if (req.method === 'GET') return sendHtml(res, 200, checkoutPage(intent));
    if (req.method !== 'POST') return sendHtml(res, 405, checkoutPage(intent));
    let outcome: CheckoutOutcome;
    try {
      state.confirmPaymentIntent(intentId, decodeForm(raw));
      outcome = { kind: 'paid' };
    } catch (err) {
      if (!(err instanceof SandboxApiError)) throw err;
      outcome = err.status === 402 ? { kind: 'declined', message: err.message } : { kind: 'refused', message: err.message };
    }
    await save();
    sendHtml(res, 200, checkoutPage(intent, outcome));
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    // Events go out only once the answer has: a webhook never overtakes the response it is about.
    res.once('close', flush);
    const url = new URL(req.url ?? '/', 'http://sandbox.invalid');
    const raw = await readBody(req);
    const checkoutMatch = CHECKOUT.exec(url.pathname);
    if (checkoutMatch) return checkout(req, res, decodeSegment(checkoutMatch[1]!), raw);
    return api(req, res, url.pathname, url.search.slice(1), raw);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof BodyTooLarge) return sendError(res, invalidRequest('request_too_large', `The request body is over ${MAX_BODY_BYTES} bytes.`, undefined, 413));
      if (err instanceof SandboxApiError) return sendError(res, err);
      log.warn({ err, method: req.method, url: req.url }, 'sandbox gateway: request failed');
      send(res, 500, JSON.stringify({ error: { type: 'api_error', message: 'The sandbox gateway failed; see its log.' } }));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as { address: string; port: number };
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  log.info({ url }, 'sandbox gateway: listening');
  // Payouts still pending when the state was saved settle after a restart.
  flush();

  return {
    url,
    setWebhookUrl(next: string) {
      webhookUrl = next;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      closing.abort();
      await Promise.allSettled([...deliveries]);
      await writing;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
    },
  };
}

// The Demo Shop's back end, against a running OneCard (`npm start` first):
//   npm start -w examples/merchant-checkout        then open http://127.0.0.1:4100
// It serves the checkout page, creates a OneCard payment per order (POST /api/checkout), registers
// a webhook endpoint pointing at itself at start, and marks an order paid only when a signed
// `payment.succeeded` webhook says so (POST /webhooks/onecard). The page polls GET /api/orders/:id.
// POST /holder/tap is the SIMULATED holder (holder.mjs): the demo card on lin's home reader.
//
// Environment: ONECARD_DATA_DIR (default .onecard at the repository root: demo.json is read there),
// ONECARD_URL (default demo.json's publicUrl), SHOP_PORT (default 4100; 0 picks a free port),
// SHOP_HOST (default 127.0.0.1), SHOP_URL (how OneCard reaches the shop; default http://127.0.0.1:<port>).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { createServer } from 'node:http';
import path from 'node:path';
import { OneCardClient, verifyWebhook } from '@onecard/sdk';
import { simulatedHolder } from './holder.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR || '.onecard');
const demoFile = path.join(dataDir, 'demo.json');
const demo = JSON.parse(
  await fs.readFile(demoFile, 'utf8').catch(() => {
    console.error(`merchant-checkout: cannot read ${demoFile}: start OneCard first (npm start at the repository root)`);
    process.exit(1);
  }),
);
const baseUrl = (process.env.ONECARD_URL || demo.publicUrl).replace(/\/+$/, '');
const log = (text) => console.log(`${new Date().toISOString()} merchant-checkout: ${text}`);

/** The shop's catalogue: the page sends what it wants, the prices are the shop's own (fen). */
const CATALOGUE = {
  tea: { name: 'Jasmine tea', price: 450 },
  bun: { name: 'Char siu bun', price: 380 },
  tart: { name: 'Egg tart', price: 600 },
};
const WEBHOOK_DESCRIPTION = 'merchant-checkout example';
const WEBHOOK_EVENTS = ['payment.succeeded', 'payment.failed', 'payment.canceled'];

// The merchant's OAuth client from demo.json (kept on the server: the page never sees it).
const onecard = new OneCardClient({
  baseUrl,
  clientId: demo.clients.merchant.client_id,
  clientSecret: demo.clients.merchant.client_secret,
  scope: 'payments:write payments:read webhooks:manage',
});
const holder = await simulatedHolder({ demo, dataDir, baseUrl, log });

/** Orders, in memory (a real shop keeps them in its database). */
const orders = new Map();
const orderOfPayment = new Map();
const seenEvents = new Set();
let webhookSecret;

// ---- HTTP --------------------------------------------------------------------------------------

const STATIC = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/checkout.js': ['checkout.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.httpStatus = status;
  }
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new HttpError(413, 'body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readJson(req) {
  if (!String(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'send application/json');
  try {
    return JSON.parse((await readBody(req)).toString('utf8') || '{}');
  } catch {
    throw new HttpError(400, 'the body is not JSON');
  }
}

function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

const view = (order) => ({
  id: order.id,
  status: order.status,
  items: order.items,
  amount: order.amount,
  currency: order.currency,
  payment: order.paymentId,
  failureCode: order.failureCode ?? null,
  events: order.events,
});

const routes = {
  /** Creates the order and its OneCard payment. `checkout` (the page's id for this checkout) makes a double click harmless. */
  'POST /api/checkout': async (req, res) => {
    const { checkout, items } = await readJson(req);
    if (typeof checkout !== 'string' || !/^[A-Za-z0-9-]{8,64}$/.test(checkout)) throw new HttpError(400, 'checkout: 8 to 64 letters, digits or dashes');
    const id = `order-${checkout}`;
    let order = orders.get(id);
    if (!order) {
      const lines = Object.entries(items ?? {})
        .filter(([sku, qty]) => CATALOGUE[sku] && Number.isInteger(qty) && qty > 0 && qty <= 20)
        .map(([sku, qty]) => ({ sku, name: CATALOGUE[sku].name, quantity: qty, amount: qty * CATALOGUE[sku].price }));
      if (!lines.length) throw new HttpError(400, 'the cart is empty');
      order = { id, items: lines, amount: lines.reduce((sum, l) => sum + l.amount, 0), currency: 'CNY', status: 'CREATING', events: [] };
      orders.set(id, order);
      order.created = (async () => {
        const made = await onecard.request(
          'mutation Create($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code field message } } }',
          {
            input: {
              amount: order.amount,
              currency: order.currency,
              orderReference: id,
              description: lines.map((l) => `${l.quantity} × ${l.name}`).join(', '),
              metadata: { shop: 'merchant-checkout example' },
              // The same key for the same order: a retry after a lost answer makes no second payment.
              idempotencyKey: `${id}:create`,
            },
          },
        );
        const { payment, userErrors } = made.createPayment;
        if (userErrors.length) throw new HttpError(422, userErrors.map((e) => `${e.code}: ${e.message}`).join('; '));
        order.paymentId = payment.id;
        orderOfPayment.set(payment.id, order);
        if (order.status === 'CREATING') order.status = 'AWAITING_CARD';
        log(`${id}: payment ${payment.id} created for ${(order.amount / 100).toFixed(2)} CNY`);
      })();
      order.created.catch(() => orders.delete(id));
    }
    await order.created;
    send(res, 201, view(order));
  },

  /** The order as the shop knows it: PAID only after the signed payment.succeeded webhook. */
  'GET /api/orders/:id': async (_req, res, id) => {
    const order = orders.get(id);
    if (!order) throw new HttpError(404, 'no such order');
    send(res, 200, view(order));
  },

  /** OneCard's signed events: verified, deduplicated by event id, then applied to the order. */
  'POST /webhooks/onecard': async (req, res) => {
    if (!webhookSecret) return send(res, 503, { error: 'not ready' }); // OneCard retries later
    const raw = await readBody(req, 1024 * 1024);
    const checked = verifyWebhook(raw, req.headers['onecard-signature'], webhookSecret);
    if (!checked.ok) {
      log(`webhook refused: ${checked.reason}`);
      return send(res, 400, { error: checked.reason });
    }
    const { id, type, data } = checked.event;
    if (seenEvents.has(id)) return send(res, 204, '');
    seenEvents.add(id);
    const order = orderOfPayment.get(data.payment) ?? orders.get(data.orderReference);
    if (!order || order.paymentId !== data.payment) {
      log(`webhook ${type} for a payment this shop does not know (${data.payment}): ignored`);
      return send(res, 204, '');
    }
    order.events.push(type);
    if (type === 'payment.succeeded' && data.amount === order.amount) order.status = 'PAID';
    else if (type === 'payment.failed') Object.assign(order, { status: 'FAILED', failureCode: data.failureCode });
    else if (type === 'payment.canceled' && order.status !== 'PAID') Object.assign(order, { status: 'CANCELED', failureCode: data.cancelReason });
    log(`${order.id}: webhook ${type} → ${order.status}`);
    send(res, 204, '');
  },

  /** SIMULATED: the holder taps the demo card on her home reader to pay this payment (holder.mjs). */
  'POST /holder/tap': async (req, res) => {
    const { payment } = await readJson(req);
    if (typeof payment !== 'string' || !payment) throw new HttpError(400, 'payment: the payment id the checkout shows');
    send(res, 200, await holder.tap(payment));
  },

  'GET /holder': async (_req, res) => send(res, 200, holder.reader),
};

async function handle(req, res) {
  const url = new URL(req.url, 'http://shop.invalid');
  const file = req.method === 'GET' ? STATIC[url.pathname] : undefined;
  if (file) {
    const body = await fs.readFile(path.join(import.meta.dirname, 'public', file[0]));
    // Only this origin: no CDN, no inline script.
    return send(res, 200, body, { 'content-type': file[1], 'content-security-policy': "default-src 'self'; frame-ancestors 'none'" });
  }
  if (url.pathname === '/favicon.ico') return send(res, 204, '');
  const order = /^\/api\/orders\/([A-Za-z0-9-]{1,80})$/.exec(url.pathname);
  const route = order ? routes[`${req.method} /api/orders/:id`] : routes[`${req.method} ${url.pathname}`];
  if (!route) return send(res, 404, { error: 'not found' });
  return route(req, res, order?.[1]);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    // HttpError: the request's fault; a refusal from OneCard (userErrors) is a 409; anything else a 502.
    const status = err.httpStatus ?? 502;
    if (status === 502) log(`${req.method} ${req.url}: ${err.stack ?? err}`);
    if (!res.headersSent) send(res, status, { error: err.message });
    else res.end();
  });
});

// ---- Start -------------------------------------------------------------------------------------

const port = Number(process.env.SHOP_PORT || 4100);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`merchant-checkout: SHOP_PORT: expected a TCP port number, got "${process.env.SHOP_PORT}"`);
  process.exit(2);
}
const host = process.env.SHOP_HOST || '127.0.0.1';
await new Promise((resolve, reject) => {
  server.once('error', (err) => reject(err.code === 'EADDRINUSE' ? new Error(`port ${port} is in use: set SHOP_PORT`) : err));
  server.listen(port, host, resolve);
}).catch((err) => {
  console.error(`merchant-checkout: ${err.message}`);
  process.exit(1);
});
const shopUrl = (process.env.SHOP_URL || `http://127.0.0.1:${server.address().port}`).replace(/\/+$/, '');

/**
 * One endpoint for this shop, made at each start: its secret is shown only when it is made, and
 * this shop keeps nothing on disk, so the endpoints an earlier run made (same description) go.
 * Outside production OneCard accepts http://127.0.0.1 endpoints; in production it must be https.
 */
async function registerWebhook() {
  const { webhookEndpoints } = await onecard.request('query { webhookEndpoints(first: 100) { edges { node { id url description } } } }');
  for (const { node } of webhookEndpoints.edges) {
    if (node.description === WEBHOOK_DESCRIPTION) await onecard.request('mutation Delete($input: DeleteWebhookEndpointInput!) { deleteWebhookEndpoint(input: $input) { userErrors { code message } } }', { input: { endpoint: node.id } });
  }
  const made = await onecard.request(
    'mutation Register($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id url eventTypes } secret userErrors { code field message } } }',
    { input: { url: `${shopUrl}/webhooks/onecard`, eventTypes: WEBHOOK_EVENTS, description: WEBHOOK_DESCRIPTION } },
  );
  const { endpoint, secret, userErrors } = made.createWebhookEndpoint;
  if (userErrors.length) throw new Error(`the webhook endpoint was refused: ${userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
  webhookSecret = secret;
  log(`webhook endpoint ${endpoint.url} registered for ${endpoint.eventTypes.join(', ')}`);
}

try {
  await registerWebhook();
} catch (err) {
  console.error(`merchant-checkout: cannot set up with OneCard at ${baseUrl}: ${err.message}`);
  server.close();
  process.exit(1);
}
log(`the Demo Shop is open at ${shopUrl}/ (OneCard at ${baseUrl}; simulated holder ${holder.reader.holder}, home reader ${holder.reader.serial})`);

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

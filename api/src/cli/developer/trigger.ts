import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiClient, type DemoFile, demoClient, demoFilePath, readDemoFile } from './api-client.js';
import { cardholderAccessToken } from './holder-sign-in.js';

/** What `onecard trigger` needs of the SDK (loaded at run time, as the benchmarks load it: the api package does not depend on the SDK's build). */
interface VirtualCard {
  toJSON(): unknown;
}
interface Sdk {
  CARD_SESSION_MESSAGE: string;
  VirtualCpuCard: { withKeys(options: unknown): VirtualCard; fromJSON(state: unknown): VirtualCard };
  VirtualCardTransport: new (card: VirtualCard) => { transmit(apdu: Uint8Array): Promise<Uint8Array> };
  ReaderAgent: new (options: Record<string, unknown>) => { run(session: { id: string; challenge: string }): Promise<{ state: string; refusal?: string | null; result?: Record<string, unknown> | null }> };
}
const SDK_MODULE = '@onecard/sdk';
const loadSdk = async () => (await import(SDK_MODULE)) as Sdk;

interface ReaderFile {
  readerId: string;
  deviceKeyPem: string;
  nationalKeyPem: string;
  encryptionKeyPem: string;
  nationalCertificatePem: string;
  cityCertificatePem: string;
  encryptionCertificatePem: string;
  trustedCertificatesPem: string[];
}

/** The sandbox world a trigger acts in: demo.json's clients, readers and card, and the API. */
export interface TriggerWorld {
  demo: DemoFile;
  dataDir: string;
  client(name: string): Promise<ApiClient>;
  /** The demo cardholder's app, signed in as her (authorization code with PKCE). */
  holderApp(): Promise<ApiClient>;
  note(line: string): void;
}

export interface Trigger {
  /** Which demo client receives the event (its `events`, its webhooks, `onecard listen --client`). */
  receivedBy: string;
  description: string;
  run(world: TriggerWorld, opts: { amount: number }): Promise<string>;
}

const CREATE_PAYMENT = `mutation TriggerCreatePayment($input: CreatePaymentInput!) { createPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const CANCEL_PAYMENT = `mutation TriggerCancelPayment($input: CancelPaymentInput!) { cancelPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const REFUND_PAYMENT = `mutation TriggerRefundPayment($input: RefundPaymentInput!) { refundPayment(input: $input) { payment { id status } userErrors { code message } } }`;
const PUBLISH_BILL = `mutation TriggerPublishBill($input: BillInput!) { publishBill(input: $input) { bill { id } userErrors { code message } } }`;
const PAY_BILL = `mutation TriggerPayBill($input: PayBillInput!) { payBill(input: $input) { billPayment { id } userErrors { code message } } }`;
const CREATE_TOP_UP = `mutation TriggerCreateTopUp($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status paymentUrl } userErrors { code message } } }`;
const TOP_UP = `query TriggerTopUp($id: ID!) { topUp(id: $id) { id status failureCode } }`;
const OPEN_SESSION = `mutation TriggerOpenSession($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }`;

type Payload<T> = T & { userErrors: { code: string; message: string }[] };

async function createPayment(world: TriggerWorld, amount: number): Promise<string> {
  const merchant = await world.client('merchant');
  const key = `trigger-${randomUUID()}`;
  const made = await merchant.mutate<Payload<{ payment: { id: string } }>>('createPayment', CREATE_PAYMENT, {
    amount,
    currency: 'CNY',
    orderReference: key,
    description: 'onecard trigger',
    metadata: { triggeredBy: 'onecard trigger' },
    idempotencyKey: key,
  });
  world.note(`created payment ${made.payment.id} (${amount} fen) as merchant`);
  return made.payment.id;
}

/** The demo card's chip: one state file, shared with the reader simulator and the checkout example. */
async function demoCard(world: TriggerWorld, sdk: Sdk): Promise<{ card: VirtualCard; save(): Promise<void> }> {
  const stateFile = path.join(world.dataDir, 'demo-card-state.json');
  const saved = await fs.readFile(stateFile, 'utf8').catch(() => undefined);
  const keysFile = world.demo.cards?.gz?.file;
  if (!saved && !keysFile) throw new Error('demo.json has no cards.gz: run `npm start` or `onecard seed` first');
  const card = saved ? sdk.VirtualCpuCard.fromJSON(JSON.parse(saved)) : sdk.VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(keysFile!, 'utf8')));
  return { card, save: () => fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 }) };
}

/** One card session on a demo reader with the demo card on it, run by the SDK's ReaderAgent. */
async function cardSession(sdk: Sdk, api: ApiClient, readerFile: string, input: Record<string, unknown>, chip: { card: VirtualCard; save(): Promise<void> }) {
  const reader = JSON.parse(await fs.readFile(readerFile, 'utf8')) as ReaderFile;
  const opened = await api.mutate<Payload<{ session: { id: string; challenge: string } }>>('openCardSession', OPEN_SESSION, { reader: reader.readerId, ...input });
  const agent = new sdk.ReaderAgent({
    deviceKey: reader.deviceKeyPem,
    nationalKey: reader.nationalKeyPem,
    encryptionKey: reader.encryptionKeyPem,
    nationalCertificatePem: reader.nationalCertificatePem,
    cityCertificatePem: reader.cityCertificatePem,
    encryptionCertificatePem: reader.encryptionCertificatePem,
    trustedCertificatesPem: reader.trustedCertificatesPem,
    transport: new sdk.VirtualCardTransport(chip.card),
    send: async (message: Record<string, unknown>) => (await api.request<{ cardSessionMessage: unknown }>(sdk.CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage,
  });
  try {
    const done = await agent.run(opened.session);
    if (done.state !== 'COMPLETED') throw new Error(`the card session was refused: ${done.refusal}`);
    return done.result ?? {};
  } finally {
    await chip.save(); // whatever happened, the chip is what it is now
  }
}

/** What the card's e-purse holds (SELECT the city-union application, GET BALANCE). */
async function balanceOnCard(sdk: Sdk, card: VirtualCard): Promise<number> {
  const transport = new sdk.VirtualCardTransport(card);
  await transport.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
  return Buffer.from(await transport.transmit(Buffer.from('805C000204', 'hex'))).readUInt32BE(0);
}

/**
 * The demo card pays a payment or bill payment, as the checkout example's holder does: tapped on the
 * holder's home reader, her app relaying; loaded first at the card company's counter when the chip
 * holds too little.
 */
async function tapDemoCard(world: TriggerWorld, amount: number, purchase: Record<string, unknown>): Promise<void> {
  const { readers } = world.demo;
  if (!readers?.home || !readers.counter) throw new Error('demo.json has no readers.home and readers.counter: restart `npm start` so every demo seed step runs');
  const sdk = await loadSdk();
  const chip = await demoCard(world, sdk);
  const balance = await balanceOnCard(sdk, chip.card);
  if (balance < amount) {
    const load = Math.max(5000, amount - balance);
    await cardSession(sdk, await world.client('issuer'), readers.counter.file, { operation: 'LOAD', amount: load }, chip);
    world.note(`loaded ${load} fen onto demo card ${world.demo.cards?.gz?.asn} at the card company's counter first`);
  }
  const result = await cardSession(sdk, await world.holderApp(), readers.home.file, { operation: 'PURCHASE', ...purchase }, chip);
  world.note(`demo card tapped on ${readers.home.holder ?? 'the holder'}'s home reader: balance ${result.oldBalance} → ${result.newBalance}`);
}

/**
 * A top-up of the demo card at the card company's counter, paid on the sandbox gateway's hosted page
 * with its paying test card (pm_card_visa, as a person would press "Pay"), until the gateway's signed
 * webhook (or OneCard's poll of the gateway) makes it PAID.
 */
async function paidTopUp(world: TriggerWorld, amount: number): Promise<string> {
  const card = world.demo.registeredCards?.gz?.id;
  if (!card) throw new Error('demo.json has no registeredCards.gz: restart `npm start` so every demo seed step runs');
  const issuer = await world.client('issuer');
  const { topUp } = await issuer.mutate<Payload<{ topUp: { id: string; paymentUrl: string | null } }>>('createTopUp', CREATE_TOP_UP, { card, amount, idempotencyKey: `trigger-${randomUUID()}` });
  if (!topUp.paymentUrl) throw new Error(`top-up ${topUp.id} has no paymentUrl to pay it at`);
  const paid = await fetch(topUp.paymentUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payment_method=pm_card_visa' });
  if (!paid.ok) throw new Error(`the gateway's payment page answered ${paid.status} (${topUp.paymentUrl})`);
  world.note(`created top-up ${topUp.id} (${amount} fen) of demo card ${world.demo.cards?.gz?.asn} as issuer, paid on ${topUp.paymentUrl}`);
  for (let i = 0; i < 100; i++) {
    const seen = (await issuer.request<{ topUp: { status: string; failureCode: string | null } }>(TOP_UP, { id: topUp.id })).topUp;
    if (seen.status === 'PAID') return topUp.id;
    if (seen.status !== 'CREATED' && seen.status !== 'AWAITING_PAYMENT') throw new Error(`the top-up is ${seen.status}${seen.failureCode ? ` (${seen.failureCode})` : ''}`);
    await sleep(200);
  }
  throw new Error(`the gateway did not confirm top-up ${topUp.id} within 20 s: is the sandbox gateway running (npm start starts it)?`);
}

/** Every event `onecard trigger` can make happen, each by the real flow that makes it in production. */
export const TRIGGERS: Record<string, Trigger> = {
  'payment.succeeded': {
    receivedBy: 'merchant',
    description: 'the demo merchant creates a payment; the demo cardholder pays it with the demo card on her home reader (a card session)',
    async run(world, { amount }) {
      const payment = await createPayment(world, amount);
      await tapDemoCard(world, amount, { payment });
      return payment;
    },
  },
  'payment.canceled': {
    receivedBy: 'merchant',
    description: 'the demo merchant creates a payment and cancels it',
    async run(world, { amount }) {
      const payment = await createPayment(world, amount);
      await (await world.client('merchant')).mutate('cancelPayment', CANCEL_PAYMENT, { payment, idempotencyKey: `trigger-${randomUUID()}` });
      return payment;
    },
  },
  'payment.refunded': {
    receivedBy: 'merchant',
    description: 'payment.succeeded, then the demo merchant refunds it in full (also emits payment.succeeded)',
    async run(world, { amount }) {
      const payment = await createPayment(world, amount);
      await tapDemoCard(world, amount, { payment });
      await (await world.client('merchant')).mutate('refundPayment', REFUND_PAYMENT, { payment, reason: 'onecard trigger', idempotencyKey: `trigger-${randomUUID()}` });
      world.note('refunded in full: the money waits as a pending load for the card’s next tap');
      return payment;
    },
  },
  'topup.paid': {
    receivedBy: 'issuer',
    description: 'the card company tops up the demo card, paid on the sandbox gateway\'s page with its test card',
    run: (world, { amount }) => paidTopUp(world, amount),
  },
  'topup.loaded': {
    receivedBy: 'issuer',
    description: 'topup.paid, then the top-up is written onto the demo card at the card company\'s counter reader (补登; also emits topup.paid)',
    async run(world, { amount }) {
      const topUp = await paidTopUp(world, amount);
      const counter = world.demo.readers?.counter;
      if (!counter) throw new Error('demo.json has no readers.counter: restart `npm start` so every demo seed step runs');
      const sdk = await loadSdk();
      const result = await cardSession(sdk, await world.client('issuer'), counter.file, { operation: 'LOAD', topUp }, await demoCard(world, sdk));
      world.note(`written onto demo card at the counter: balance ${result.oldBalance} → ${result.newBalance}`);
      return topUp;
    },
  },
  'bill.paid': {
    receivedBy: 'biller',
    description: 'the demo water company publishes a bill; the demo cardholder pays it in full with the demo card on her home reader',
    async run(world, { amount }) {
      const biller = await world.client('biller');
      const reference = `trigger-${randomUUID()}`;
      const due = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
      const { bill } = await biller.mutate<Payload<{ bill: { id: string } }>>('publishBill', PUBLISH_BILL, { accountNumber: reference.slice(0, 32), period: 'trigger', amountDue: amount, dueDate: due, billerReference: reference });
      world.note(`published bill ${bill.id} (${amount} fen) as biller`);
      const { billPayment } = await (await world.holderApp()).mutate<Payload<{ billPayment: { id: string } }>>('payBill', PAY_BILL, { bill: bill.id, idempotencyKey: reference });
      await tapDemoCard(world, amount, { billPayment: billPayment.id });
      return bill.id;
    },
  },
};

/** The help text's list of events. */
export function triggerList(): string {
  return Object.entries(TRIGGERS)
    .map(([event, t]) => `  ${event.padEnd(20)} ${t.description} (received by the ${t.receivedBy} client)`)
    .join('\n');
}

const SERVER_INFO = `query TriggerServerInfo { serverInfo { sandbox } }`;

/**
 * `onecard trigger EVENT`: refuses an unknown event, a production environment here (NODE_ENV), and
 * a server that is not a sandbox (it says so in `serverInfo.sandbox`), then runs the event's flow
 * with the demo clients of demo.json. Returns the subject's global id.
 */
export async function trigger(event: string, opts: { api?: string; demo?: string; amount: number; note(line: string): void }): Promise<{ subject: string; receivedBy: string }> {
  const found = Object.hasOwn(TRIGGERS, event) ? TRIGGERS[event] : undefined;
  if (!found) throw new Error(`cannot trigger "${event}": supported events are ${Object.keys(TRIGGERS).join(', ')}`);
  if (process.env.NODE_ENV === 'production') throw new Error('onecard trigger makes test events happen in a sandbox; it refuses to run with NODE_ENV=production');
  if (!Number.isSafeInteger(opts.amount) || opts.amount < 1 || opts.amount > 100_000) throw new Error('--amount: 1 to 100000 minor units (fen)');
  const file = demoFilePath(opts.demo);
  const demo = await readDemoFile(file);
  if (!demo) throw new Error(`no ${file}: onecard trigger acts with the demo clients, readers and card of demo.json (run \`npm start\` or \`onecard seed\`, or give --demo FILE)`);
  const baseUrl = opts.api ?? process.env.ONECARD_API_URL ?? demo.publicUrl;
  if (!baseUrl) throw new Error(`no API URL: give --api URL or ONECARD_API_URL, or restart \`npm start\` so ${file} gets publicUrl`);
  const clients = new Map<string, ApiClient>();
  const client = async (name: string) => {
    if (!clients.has(name)) {
      const api = ApiClient.forClient(demoClient(demo, file, name, baseUrl));
      api.onThrottled = (seconds) => opts.note(`throttled by OneCard's cost limit: waiting ${seconds} s`);
      clients.set(name, api);
    }
    return clients.get(name)!;
  };
  const merchant = await client('merchant');
  const { serverInfo } = await merchant.request<{ serverInfo: { sandbox: boolean } }>(SERVER_INFO);
  if (!serverInfo.sandbox) throw new Error(`${merchant.baseUrl} is not a sandbox (serverInfo.sandbox is false): onecard trigger makes test events happen only in a sandbox`);
  let holder: ApiClient | undefined;
  const world: TriggerWorld = {
    demo,
    dataDir: path.dirname(file),
    client,
    async holderApp() {
      const app = demo.clients?.cardholderApp;
      const person = demo.cardholders?.find((h) => h.username === (demo.readers?.home?.holder ?? 'lin'));
      if (!app?.redirect_uri || !person?.password) throw new Error(`${file} has no cardholder app or demo cardholder password: restart \`npm start\``);
      holder ??= new ApiClient(`${person.username}'s app`, merchant.baseUrl, async () => ({
        accessToken: await cardholderAccessToken(merchant.baseUrl, { client_id: app.client_id, redirect_uri: app.redirect_uri! }, { username: person.username, password: person.password! }, 'card:read card:topup'),
        expiresIn: 600,
      }));
      return holder;
    },
    note: opts.note,
  };
  return { subject: await found.run(world, { amount: opts.amount }), receivedBy: found.receivedBy };
}

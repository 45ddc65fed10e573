// The holder's side, SIMULATED for the demo: the demo cardholder `lin`, her card company's app
// (signed in as her), her home reader (the demo seed's `readers.home`) and the demo virtual card.
// In real life these run on the holder's phone and the reader plugged into it, never in the shop:
// the shop only hands over the payment's id. They live in the shop's process here because a web
// page cannot hold the reader's device key safely, and so that one command runs the whole demo.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CARD_SESSION_MESSAGE, OneCardClient, ReaderAgent, VirtualCardTransport, VirtualCpuCard } from '@onecard/sdk';

const APP_SCOPES = 'card:read card:topup';
const OPEN_SESSION = 'mutation Open($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }';
const PAYMENT = 'query Payment($id: ID!) { payment(id: $id) { id status merchantName description amount { amount currency } } }';

const b64url = (bytes) => Buffer.from(bytes).toString('base64url');
const errorsText = (errors) => errors.map((e) => `${e.code}: ${e.message}`).join('; ');
/** OneCard refused (userErrors): the shop answers 409 with the message. */
const refused = (errors) => Object.assign(new Error(errorsText(errors)), { httpStatus: 409 });

/**
 * The card company's app signed in as a cardholder: authorization code with PKCE, the holder
 * typing her username and password on OneCard's sign-in page and allowing access (done here by
 * posting those forms, as her browser would). Tokens live 10 minutes and there is no refresh
 * token, so it signs in again when the token is about to expire.
 */
export class HolderApp {
  #token;
  #expiresAt = 0;

  constructor({ baseUrl, client, username, password }) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.client = client;
    this.username = username;
    this.password = password;
  }

  async request(query, variables) {
    const res = await fetch(`${this.baseUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await this.#accessToken()}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await res.json();
    if (body.errors?.length) throw new Error(`holder app: ${body.errors.map((e) => e.message).join('; ')}`);
    return body.data;
  }

  async #accessToken() {
    if (!this.#token || Date.now() > this.#expiresAt - 60_000) {
      const { access_token, expires_in } = await this.#signIn();
      this.#token = access_token;
      this.#expiresAt = Date.now() + expires_in * 1000;
    }
    return this.#token;
  }

  async #signIn() {
    const metadata = await (await fetch(`${this.baseUrl}/oauth/.well-known/openid-configuration`)).json();
    const verifier = b64url(randomBytes(32));
    const state = b64url(randomBytes(16));
    const redirectUri = this.client.redirect_uri;
    const authorize = new URL(metadata.authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: this.client.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: APP_SCOPES,
      state,
      code_challenge: b64url(createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
    }).toString();

    // A minimal browser: cookies kept, redirects followed by hand until one leaves for the app's redirect URI.
    const cookies = new Map();
    const go = async (url, form) => {
      const res = await fetch(url, {
        method: form ? 'POST' : 'GET',
        redirect: 'manual',
        headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body: form ? new URLSearchParams(form).toString() : undefined,
      });
      for (const cookie of res.headers.getSetCookie()) {
        const [pair] = cookie.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      return res;
    };
    let url = authorize.href;
    let res = await go(url);
    for (let steps = 0; steps < 20; steps++) {
      if (res.status >= 300 && res.status < 400) {
        const next = new URL(res.headers.get('location'), url);
        if (next.href.startsWith(redirectUri)) return this.#exchange(metadata, next, state, verifier);
        url = next.href;
        res = await go(url);
        continue;
      }
      const html = await res.text();
      const action = (suffix) => html.match(new RegExp(`action="([^"]+/${suffix})"`))?.[1];
      if (action('login')) {
        res = await go((url = new URL(action('login'), url).href), { username: this.username, password: this.password });
      } else if (action('confirm')) {
        res = await go((url = new URL(action('confirm'), url).href), { decision: 'allow' });
      } else {
        throw new Error(`holder app: the sign-in stopped at HTTP ${res.status} (${url})`);
      }
    }
    throw new Error('holder app: too many steps signing in');
  }

  async #exchange(metadata, callback, state, verifier) {
    const params = callback.searchParams;
    if (params.get('error')) throw new Error(`holder app: sign-in refused: ${params.get('error')}`);
    if (params.get('state') !== state) throw new Error('holder app: the sign-in came back with another state');
    if (params.get('iss') && params.get('iss') !== metadata.issuer) throw new Error('holder app: the sign-in came back from another issuer');
    const res = await fetch(metadata.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code'), redirect_uri: this.client.redirect_uri, client_id: this.client.client_id, code_verifier: verifier }).toString(),
    });
    const token = await res.json();
    if (!res.ok) throw new Error(`holder app: token refused: ${token.error} ${token.error_description ?? ''}`);
    return token;
  }
}

/** What the card itself says its e-purse holds (SELECT the city-union application, GET BALANCE). */
async function balanceOnCard(card) {
  const transport = new VirtualCardTransport(card);
  await transport.transmit(Buffer.from('00A4040009A00000000386980701', 'hex'));
  return Buffer.from(await transport.transmit(Buffer.from('805C000204', 'hex'))).readUInt32BE(0);
}

/**
 * The simulated holder: `tap(paymentId)` is lin holding the demo card on her home reader to pay
 * the payment the checkout handed over. Taps run one at a time (one card, one reader).
 */
export async function simulatedHolder({ demo, dataDir, baseUrl, log = () => {} }) {
  const holder = demo.cardholders.find((h) => h.username === (demo.readers.home?.holder ?? 'lin'));
  if (!demo.readers.home) throw new Error('demo.json has no readers.home: restart `npm start` so the readers-home-demo seed step runs');
  const homeReader = JSON.parse(await fs.readFile(demo.readers.home.file, 'utf8'));
  const counterReader = JSON.parse(await fs.readFile(demo.readers.counter.file, 'utf8'));
  const app = new HolderApp({ baseUrl, client: demo.clients.cardholderApp, username: holder.username, password: holder.password });
  // Only for loading the card when it runs short: the card company's counter (as the reader simulator's `load`).
  const counter = new OneCardClient({ baseUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'topups:write' });
  // The same card as the reader simulator's: one chip, one state file.
  const stateFile = path.join(dataDir, 'demo-card-state.json');

  async function loadCard() {
    const saved = await fs.readFile(stateFile, 'utf8').catch(() => undefined);
    return saved ? VirtualCpuCard.fromJSON(JSON.parse(saved)) : VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));
  }
  const saveCard = (card) => fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });

  async function runSession(client, reader, input, card) {
    const opened = await client.request(OPEN_SESSION, { input: { reader: reader.readerId, ...input } });
    if (opened.openCardSession.userErrors.length) throw refused(opened.openCardSession.userErrors);
    const agent = new ReaderAgent({
      deviceKey: reader.deviceKeyPem,
      nationalCertificatePem: reader.nationalCertificatePem,
      cityCertificatePem: reader.cityCertificatePem,
      trustedCertificatesPem: reader.trustedCertificatesPem,
      nationalKey: reader.nationalKeyPem,
      encryptionKey: reader.encryptionKeyPem,
      encryptionCertificatePem: reader.encryptionCertificatePem,
      transport: new VirtualCardTransport(card),
      send: async (message) => (await client.request(CARD_SESSION_MESSAGE, { input: message })).cardSessionMessage,
    });
    try {
      return await agent.run(opened.openCardSession.session);
    } finally {
      await saveCard(card); // whatever happened, the chip is what it is now
    }
  }

  async function tap(paymentId) {
    const steps = [];
    const note = (text) => {
      steps.push(text);
      log(`holder: ${text}`);
    };
    const { payment } = await app.request(PAYMENT, { id: paymentId });
    if (!payment) throw refused([{ code: 'NOT_FOUND', message: 'the holder’s app cannot see this payment' }]);
    note(`${holder.username}’s app shows ${payment.merchantName}: ${(payment.amount.amount / 100).toFixed(2)} ${payment.amount.currency} (${payment.status})`);
    const card = await loadCard();
    const balance = await balanceOnCard(card);
    if (balance < payment.amount.amount) {
      const amount = Math.max(5000, payment.amount.amount - balance);
      note(`the card holds ${(balance / 100).toFixed(2)}: loading ${(amount / 100).toFixed(2)} at the card company’s counter first`);
      const loaded = await runSession(counter, counterReader, { operation: 'LOAD', amount }, card);
      if (loaded.state !== 'COMPLETED') throw new Error(`the counter load was refused: ${loaded.refusal}`);
    }
    note(`card ${card.asn} tapped on home reader ${homeReader.serial}`);
    const done = await runSession(app, homeReader, { operation: 'PURCHASE', payment: paymentId }, card);
    if (done.state === 'COMPLETED') note(`the card paid: balance ${(done.result.oldBalance / 100).toFixed(2)} → ${(done.result.newBalance / 100).toFixed(2)}`);
    else note(`the card session was refused: ${done.refusal}`);
    return { state: done.state, refusal: done.refusal ?? null, result: done.result ?? null, steps };
  }

  let queue = Promise.resolve();
  return {
    reader: { serial: homeReader.serial, holder: holder.username, asn: demo.cards.gz.asn },
    tap(paymentId) {
      const run = queue.then(() => tap(paymentId));
      queue = run.catch(() => {});
      return run;
    },
  };
}

// The other side, to see payment advice arrive: the demo cardholder (lin) pays a water bill from her
// app, with a top-up of her Guangzhou card paid by the sandbox gateway's test card (no reader needed).
//   npm run pay -w examples/utility-biller -- GZW-0200001
// It signs in the way a cardholder app does (authorization code with PKCE on OneCard's own sign-in
// and consent pages, here driven without a browser), then: billsForAccount → createTopUp → payBill.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

const [account, ...rest] = process.argv.slice(2);
if (!account || account.startsWith('-') || rest.length) {
  console.error('usage: npm run pay -w examples/utility-biller -- <customer account number, e.g. GZW-0200001>');
  process.exit(2);
}

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR || '.onecard');
const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
const base = (process.env.ONECARD_URL || demo.publicUrl).replace(/\/+$/, '');
const app = demo.clients.cardholderApp;
const holder = demo.cardholders.find((c) => c.username === demo.registeredCards.gz.holder) ?? demo.cardholders[0];

/** A cookie jar over fetch that stops at every redirect, like a browser tab driven by hand. */
const cookies = new Map();
async function browse(url, init = {}) {
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
  for (const cookie of res.headers.getSetCookie()) {
    const [pair] = cookie.split(';');
    cookies.set(pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1));
  }
  return res;
}
/** Follows redirects on OneCard; returns the page, or the URL it sends the browser back to the app at. */
async function follow(res) {
  while (res.status >= 300 && res.status < 400) {
    const next = new URL(res.headers.get('location'), base);
    if (next.origin !== new URL(base).origin) return next;
    res = await browse(next.href);
  }
  return res;
}
const form = (body) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
const formAction = async (page, ending) => {
  const action = (await page.text()).match(new RegExp(`action="([^"]+/${ending})"`))?.[1];
  if (!action) throw new Error(`no ${ending} form on ${page.url}`);
  return new URL(action.replaceAll('&amp;', '&'), base).href;
};

/** The holder signs in and allows the app: an access token for card:read and card:topup. */
async function signIn() {
  const meta = await (await fetch(`${base}/oauth/.well-known/openid-configuration`)).json();
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(16).toString('base64url');
  const authorize = new URL(meta.authorization_endpoint);
  authorize.search = new URLSearchParams({
    client_id: app.client_id, response_type: 'code', redirect_uri: app.redirect_uri, scope: 'card:read card:topup', state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  }).toString();
  const login = await follow(await browse(authorize.href));
  const consent = await follow(await browse(await formAction(login, 'login'), form({ username: holder.username, password: holder.password })));
  if (consent instanceof URL) throw new Error('the sign-in went straight back to the app');
  const back = await follow(await browse(await formAction(consent, 'confirm'), form({ decision: 'allow' })));
  if (!(back instanceof URL) || back.searchParams.get('state') !== state || !back.searchParams.get('code')) throw new Error(`the sign-in did not return a code (${back.url ?? back.href})`);
  const token = await fetch(meta.token_endpoint, form({ grant_type: 'authorization_code', code: back.searchParams.get('code'), redirect_uri: app.redirect_uri, client_id: app.client_id, code_verifier: verifier }));
  if (!token.ok) throw new Error(`token request refused: HTTP ${token.status} ${await token.text()}`);
  return (await token.json()).access_token;
}

const accessToken = await signIn();
async function graphql(query, variables) {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` }, body: JSON.stringify({ query, variables }) });
  const body = await res.json();
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data;
}
const refused = (errors) => {
  if (!errors.length) return;
  console.error(errors.map((e) => `${e.code}: ${e.message}`).join('\n'));
  process.exit(1);
};

const { billsForAccount } = await graphql(
  'query Bills($biller: ID!, $account: String!) { billsForAccount(biller: $biller, accountNumber: $account) { billerName bills { id period remaining { amount currency } } userErrors { code message } } }',
  { biller: demo.tenants.billers.water, account },
);
refused(billsForAccount.userErrors);
const bill = billsForAccount.bills[0];
if (!bill) {
  console.error(`${account} owes ${billsForAccount.billerName} nothing`);
  process.exit(1);
}
const { amount, currency } = bill.remaining;
const digits = String(amount).padStart(3, '0'); // minor units (fen) as yuan, without floating point
console.log(`${holder.username} pays ${billsForAccount.billerName} ${account} ${bill.period}: ${currency} ${digits.slice(0, -2)}.${digits.slice(-2)}`);

const { createTopUp } = await graphql('mutation TopUp($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status } userErrors { code message } } }', {
  input: { card: demo.registeredCards.gz.id, amount, paymentMethod: 'pm_card_visa', idempotencyKey: `pay-bill-${bill.id}-topup` },
});
refused(createTopUp.userErrors);
let { status } = createTopUp.topUp;
for (let i = 0; status !== 'PAID' && i < 50; i++) {
  if (!['CREATED', 'AWAITING_PAYMENT'].includes(status)) break;
  await new Promise((r) => setTimeout(r, 200));
  ({ status } = (await graphql('query TopUp($id: ID!) { topUp(id: $id) { status } }', { id: createTopUp.topUp.id })).topUp);
}
if (status !== 'PAID') {
  console.error(`the top-up is ${status}`);
  process.exit(1);
}
console.log(`top-up ${createTopUp.topUp.id}: PAID`);

const { payBill } = await graphql(
  'mutation Pay($input: PayBillInput!) { payBill(input: $input) { billPayment { id status receiptNumber businessDay } userErrors { code message } } }',
  { input: { bill: bill.id, fromTopUp: createTopUp.topUp.id, idempotencyKey: `pay-bill-${bill.id}` } },
);
refused(payBill.userErrors);
console.log(`bill payment ${payBill.billPayment.id}: ${payBill.billPayment.status}, receipt ${payBill.billPayment.receiptNumber}, day ${payBill.billPayment.businessDay}`);

// A counter reader of the Guangzhou card company with the demo card on it, against `npm start`.
//   npm run simulate -w examples/reader-simulator -- balance
//   npm run simulate -w examples/reader-simulator -- load 1000
//   npm run simulate -w examples/reader-simulator -- topup 2000   (paid at the sandbox gateway, then 补登)
//   npm run simulate -w examples/reader-simulator -- pending       (the card's pending loads: top-ups, refunds, transfers)
//   npm run simulate -w examples/reader-simulator -- pickup        (writes them all onto the card in one load session: 补登)
//   npm run simulate -w examples/reader-simulator -- --pcsc [reader name] load 1000
//                                    (the card on a PC/SC reader instead: a real one, or vpcd-card.mjs's virtual card in vpcd)
// It reads $ONECARD_DATA_DIR/demo.json (default .onecard at the repository root) and keeps the
// card's state in demo-card-state.json beside it, so the card remembers what was loaded.
import fs from 'node:fs/promises';
import path from 'node:path';
import { CARD_SESSION_MESSAGE, OneCardClient, PcscReaders, ReaderAgent, VirtualCardTransport, VirtualCpuCard } from '@onecard/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const OPERATIONS = ['balance', 'load', 'topup', 'pending', 'pickup'];
const args = process.argv.slice(2);
/** `--pcsc [reader name]`: the reader named (or the first with a card) instead of the virtual card in memory. */
let pcscReader;
const pcscAt = args.indexOf('--pcsc');
if (pcscAt >= 0) {
  const named = args[pcscAt + 1] !== undefined && !OPERATIONS.includes(args[pcscAt + 1]) && !args[pcscAt + 1].startsWith('--');
  pcscReader = named ? args[pcscAt + 1] : '';
  args.splice(pcscAt, named ? 2 : 1);
}
const [operation = 'balance', amountText] = args;
const takesAmount = ['load', 'topup'].includes(operation);
if (!OPERATIONS.includes(operation) || (takesAmount && !/^\d+$/.test(amountText ?? ''))) {
  console.error('usage: simulate [--pcsc [reader name]] balance | load <amount in fen> | topup <amount in fen> | pending | pickup');
  process.exit(2);
}

const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
const reader = JSON.parse(await fs.readFile(demo.readers.counter.file, 'utf8'));
const stateFile = path.join(dataDir, 'demo-card-state.json');
const saved = await fs.readFile(stateFile, 'utf8').catch(() => undefined);
const card = saved ? VirtualCpuCard.fromJSON(JSON.parse(saved)) : VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));

// The app beside the reader holds the OAuth token (the card company's counter application).
const client = new OneCardClient({ baseUrl: demo.publicUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'topups:write cards:read' });

/**
 * An online top-up of the demo card at the card company's counter: charged at the gateway (the
 * sandbox's test card), then written onto the card by the load session below (补登).
 */
async function paidTopUp(amount) {
  const made = await client.request(
    'mutation Top($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status paymentUrl } userErrors { code message } } }',
    { input: { card: demo.registeredCards.gz.id, amount, idempotencyKey: `simulator-${Date.now()}` } },
  );
  if (made.createTopUp.userErrors.length) throw new Error(made.createTopUp.userErrors.map((e) => `${e.code}: ${e.message}`).join('\n'));
  // The holder pays on the gateway's page (here: the sandbox's, as a person would press "Pay").
  const paid = await fetch(made.createTopUp.topUp.paymentUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payment_method=pm_card_visa' });
  console.log(`paid on ${made.createTopUp.topUp.paymentUrl}: HTTP ${paid.status}`);
  for (let i = 0; i < 50; i++) {
    const { topUp } = await client.request('query TopUp($id: ID!) { topUp(id: $id) { id status } }', { id: made.createTopUp.topUp.id });
    console.log(`top-up ${topUp.id}: ${topUp.status}`);
    if (topUp.status === 'PAID') return topUp.id;
    if (!['CREATED', 'AWAITING_PAYMENT'].includes(topUp.status)) throw new Error(`the top-up is ${topUp.status}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the gateway did not confirm the payment in time');
}

/** `1234` → `12.34` (fen to yuan, integer arithmetic). */
const yuan = (fen) => `${Math.trunc(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;

/** The card's pending loads as the holder sees them before confirming a pickup (Card.pendingLoads). */
async function listPendingLoads() {
  const { node } = await client.request(
    'query Pending($card: ID!) { node(id: $card) { ... on Card { pendingLoads { topUp { id paidAt } source amount { amount currency } writable heldBack } } } }',
    { card: demo.registeredCards.gz.id },
  );
  const loads = node.pendingLoads;
  if (loads.length === 0) console.log('no pending loads on the card');
  for (const l of loads) console.log(`  ${l.source.padEnd(8)} ${yuan(l.amount.amount).padStart(9)} ${l.amount.currency}  ${l.topUp.id}  ${l.writable ? 'to write' : `held back: ${l.heldBack}`}`);
  return loads;
}

if (operation === 'pending') {
  const loads = await listPendingLoads();
  const writable = loads.filter((l) => l.writable);
  console.log(`pending: ${JSON.stringify({ count: loads.length, writable: writable.length, total: writable.reduce((sum, l) => sum + l.amount.amount, 0) })}`);
  process.exit(0);
}

let pickedUp;
if (operation === 'pickup') {
  // The holder confirms the list shown: exactly these loads are written, as one load of their sum.
  pickedUp = (await listPendingLoads()).filter((l) => l.writable);
  if (pickedUp.length === 0) {
    console.log('pickup: {"amount":0}');
    process.exit(0);
  }
  console.log(`the holder confirms ${pickedUp.length} pending load(s), ${yuan(pickedUp.reduce((sum, l) => sum + l.amount.amount, 0))} in all`);
}

const topUp = operation === 'topup' ? await paidTopUp(Number(amountText)) : undefined;
const opened = await client.request(
  'mutation Open($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }',
  { input: { reader: reader.readerId, operation: operation === 'balance' ? 'BALANCE' : 'LOAD', amount: operation === 'load' ? Number(amountText) : undefined, topUp, pendingLoads: pickedUp?.map((l) => l.topUp.id) } },
);
if (opened.openCardSession.userErrors.length) {
  console.error(opened.openCardSession.userErrors.map((e) => `${e.code}: ${e.message}`).join('\n'));
  process.exit(1);
}
const trace = (apdu, response) => console.log(`  > ${Buffer.from(apdu).toString('hex')}\n  < ${Buffer.from(response).toString('hex')}`);
/** The card: on a PC/SC reader (it keeps its own state), or the virtual one in memory. */
let transport;
let readers;
if (pcscReader !== undefined) {
  readers = await PcscReaders.open();
  console.log(`PC/SC readers: ${readers.list().join(', ') || 'none'}; waiting for a card${pcscReader ? ` in "${pcscReader}"` : ''}…`);
  const onReader = await readers.waitForCard({ reader: pcscReader || undefined, timeoutMs: 60_000 });
  console.log(`card in ${onReader.reader} (${onReader.protocol}, ATR ${Buffer.from(onReader.atr).toString('hex')})`);
  transport = { transmit: async (apdu) => { const response = await onReader.transmit(apdu); trace(apdu, response); return response; }, card: onReader };
} else {
  transport = new VirtualCardTransport(card, { onExchange: trace });
}
const agent = new ReaderAgent({
  deviceKey: reader.deviceKeyPem,
  nationalCertificatePem: reader.nationalCertificatePem,
  cityCertificatePem: reader.cityCertificatePem,
  trustedCertificatesPem: reader.trustedCertificatesPem,
  nationalKey: reader.nationalKeyPem,
  encryptionKey: reader.encryptionKeyPem,
  encryptionCertificatePem: reader.encryptionCertificatePem,
  transport,
  send: async (input) => (await client.request(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
});
const done = await agent.run(opened.openCardSession.session);
if (readers) {
  transport.card.disconnect();
  readers.close();
} else {
  await fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });
}
console.log(done.state === 'COMPLETED' ? `${operation}: ${JSON.stringify(done.result)}` : `refused: ${done.refusal}`);
process.exit(done.state === 'COMPLETED' ? 0 : 1);

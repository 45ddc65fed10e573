// A counter reader of the Guangzhou card company with the demo card on it, against `npm start`.
//   npm run simulate -w examples/reader-simulator -- balance
//   npm run simulate -w examples/reader-simulator -- load 1000
//   npm run simulate -w examples/reader-simulator -- topup 2000   (paid at the sandbox gateway, then 补登)
// It reads $ONECARD_DATA_DIR/demo.json (default .onecard at the repository root) and keeps the
// card's state in demo-card-state.json beside it, so the card remembers what was loaded.
import fs from 'node:fs/promises';
import path from 'node:path';
import { CARD_SESSION_MESSAGE, OneCardClient, ReaderAgent, VirtualCardTransport, VirtualCpuCard } from '@onecard/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const [operation = 'balance', amountText] = process.argv.slice(2);
if (!['balance', 'load', 'topup'].includes(operation) || (operation !== 'balance' && !/^\d+$/.test(amountText ?? ''))) {
  console.error('usage: simulate balance | simulate load <amount in fen> | simulate topup <amount in fen>');
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

const topUp = operation === 'topup' ? await paidTopUp(Number(amountText)) : undefined;
const opened = await client.request(
  'mutation Open($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }',
  { input: { reader: reader.readerId, operation: operation === 'balance' ? 'BALANCE' : 'LOAD', amount: operation === 'load' ? Number(amountText) : undefined, topUp } },
);
if (opened.openCardSession.userErrors.length) {
  console.error(opened.openCardSession.userErrors.map((e) => `${e.code}: ${e.message}`).join('\n'));
  process.exit(1);
}
const agent = new ReaderAgent({
  deviceKey: reader.deviceKeyPem,
  nationalCertificatePem: reader.nationalCertificatePem,
  cityCertificatePem: reader.cityCertificatePem,
  trustedCertificatesPem: reader.trustedCertificatesPem,
  nationalKey: reader.nationalKeyPem,
  encryptionKey: reader.encryptionKeyPem,
  encryptionCertificatePem: reader.encryptionCertificatePem,
  transport: new VirtualCardTransport(card, { onExchange: (apdu, response) => console.log(`  > ${Buffer.from(apdu).toString('hex')}\n  < ${Buffer.from(response).toString('hex')}`) }),
  send: async (input) => (await client.request(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
});
const done = await agent.run(opened.openCardSession.session);
await fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });
console.log(done.state === 'COMPLETED' ? `${operation}: ${JSON.stringify(done.result)}` : `refused: ${done.refusal}`);
process.exit(done.state === 'COMPLETED' ? 0 : 1);

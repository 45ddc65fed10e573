// A counter reader of the Guangzhou card company with the demo card on it, against `npm start`.
//   npm run simulate -w examples/reader-simulator -- balance
//   npm run simulate -w examples/reader-simulator -- load 1000
// It reads $ONECARD_DATA_DIR/demo.json (default .onecard at the repository root) and keeps the
// card's state in demo-card-state.json beside it, so the card remembers what was loaded.
import fs from 'node:fs/promises';
import path from 'node:path';
import { CARD_SESSION_MESSAGE, OneCardClient, ReaderAgent, VirtualCardTransport, VirtualCpuCard } from '@onecard/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const [operation = 'balance', amountText] = process.argv.slice(2);
if (!['balance', 'load'].includes(operation) || (operation === 'load' && !/^\d+$/.test(amountText ?? ''))) {
  console.error('usage: simulate balance | simulate load <amount in fen>');
  process.exit(2);
}

const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
const reader = JSON.parse(await fs.readFile(demo.readers.counter.file, 'utf8'));
const stateFile = path.join(dataDir, 'demo-card-state.json');
const saved = await fs.readFile(stateFile, 'utf8').catch(() => undefined);
const card = saved ? VirtualCpuCard.fromJSON(JSON.parse(saved)) : VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));

// The app beside the reader holds the OAuth token (the card company's counter application).
const client = new OneCardClient({ baseUrl: demo.publicUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'topups:write' });
const opened = await client.request(
  'mutation Open($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }',
  { input: { reader: reader.readerId, operation: operation.toUpperCase(), amount: operation === 'load' ? Number(amountText) : undefined } },
);
if (opened.openCardSession.userErrors.length) {
  console.error(opened.openCardSession.userErrors.map((e) => `${e.code}: ${e.message}`).join('\n'));
  process.exit(1);
}
const agent = new ReaderAgent({
  deviceKey: reader.deviceKeyPem,
  nationalCertificatePem: reader.nationalCertificatePem,
  cityCertificatePem: reader.cityCertificatePem,
  transport: new VirtualCardTransport(card, { onExchange: (apdu, response) => console.log(`  > ${Buffer.from(apdu).toString('hex')}\n  < ${Buffer.from(response).toString('hex')}`) }),
  send: async (input) => (await client.request(CARD_SESSION_MESSAGE, { input })).cardSessionMessage,
});
const done = await agent.run(opened.openCardSession.session);
await fs.writeFile(stateFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });
console.log(done.state === 'COMPLETED' ? `${operation}: ${JSON.stringify(done.result)}` : `refused: ${done.refusal}`);
process.exit(done.state === 'COMPLETED' ? 0 : 1);

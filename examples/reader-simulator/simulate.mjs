// A counter reader of the Guangzhou card company with the demo card on it, against `npm start`.
//   npm run simulate -w examples/reader-simulator -- balance
//   npm run simulate -w examples/reader-simulator -- load 1000
//   npm run simulate -w examples/reader-simulator -- topup 2000   (paid at the sandbox gateway, then 补登)
//   npm run simulate -w examples/reader-simulator -- pending       (the card's pending loads: top-ups, refunds, transfers)
//   npm run simulate -w examples/reader-simulator -- pickup        (writes them all onto the card in one load session: 补登)
//   npm run simulate -w examples/reader-simulator -- --pcsc [reader name] load 1000
//                                    (the card on a PC/SC reader instead: a real one, or vpcd-card.mjs's virtual card in vpcd)
//   npm run simulate -w examples/reader-simulator -- m1 balance    (the demo M1 / MIFARE Classic card instead)
//   npm run simulate -w examples/reader-simulator -- m1 topup 1500 (the seed's worked example: paid at the sandbox
//                                                                   gateway, written onto the M1 card by a host-signed script)
// It reads $ONECARD_DATA_DIR/demo.json (default .onecard at the repository root) and keeps the
// card's state in demo-card-state.json beside it, so the card remembers what was loaded.
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CARD_SESSION_MESSAGE, OneCardClient, PcscReaders, ReaderAgent, VirtualCardTransport, VirtualCpuCard, VirtualM1Card, formatM1Purse } from '@onecard/sdk';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const OPERATIONS = ['balance', 'load', 'topup', 'pending', 'pickup', 'm1'];
const argv = process.argv.slice(2);
/** `--pcsc [reader name]`: the reader named (or the first with a card) instead of the virtual card in memory. */
let pcscReader;
const pcscAt = argv.indexOf('--pcsc');
if (pcscAt >= 0) {
  const named = argv[pcscAt + 1] !== undefined && !OPERATIONS.includes(argv[pcscAt + 1]) && !argv[pcscAt + 1].startsWith('--');
  pcscReader = named ? argv[pcscAt + 1] : '';
  argv.splice(pcscAt, named ? 2 : 1);
}
const [operation = 'balance', ...args] = argv;
const [m1Operation, m1AmountText] = operation === 'm1' ? args : [];
const amountText = operation === 'm1' ? m1AmountText : args[0];
const takesAmount = ['load', 'topup'].includes(operation) || m1Operation === 'topup';
// The M1 example runs on the demo M1 card in memory; --pcsc is for the CPU card.
const known = operation === 'm1' ? ['balance', 'topup'].includes(m1Operation) && pcscReader === undefined : OPERATIONS.includes(operation);
if (!known || (takesAmount && !/^\d+$/.test(amountText ?? ''))) {
  console.error('usage: simulate [--pcsc [reader name]] balance | load <amount in fen> | topup <amount in fen> | pending | pickup | m1 balance | m1 topup <amount in fen>');
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
async function paidTopUp(amount, card = demo.registeredCards.gz.id) {
  const made = await client.request(
    'mutation Top($input: CreateTopUpInput!) { createTopUp(input: $input) { topUp { id status paymentUrl } userErrors { code message } } }',
    { input: { card, amount, idempotencyKey: `simulator-${Date.now()}` } },
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

const readerOptions = {
  deviceKey: reader.deviceKeyPem,
  nationalCertificatePem: reader.nationalCertificatePem,
  cityCertificatePem: reader.cityCertificatePem,
  trustedCertificatesPem: reader.trustedCertificatesPem,
  nationalKey: reader.nationalKeyPem,
  encryptionKey: reader.encryptionKeyPem,
  encryptionCertificatePem: reader.encryptionCertificatePem,
};

/** The CN of a certificate (PEM), to say who signed what. */
const commonName = (pem) => /CN=([^\n,]*)/.exec(new X509Certificate(pem).subject)?.[1] ?? '?';

/** What a reader message carries, in a line (its card answers, or the hello with its certificates). */
function describeReaderMessage(body) {
  const parsed = JSON.parse(body);
  if (parsed.challenge) return `hello: the challenge, with its national, city${parsed.encryptionCertificate ? ' and encryption' : ''} certificates`;
  if (parsed.refusedHostMessage) return `refused the host message: ${parsed.refusedHostMessage}`;
  return parsed.responses
    .map((r) => {
      try {
        const steps = JSON.parse(r);
        return `script results [${steps.map((x) => (x.ok ? (x.data ? `ok ${x.data}` : 'ok') : `FAILED ${x.error}`)).join(', ')}]`;
      } catch {
        return `UID ${r}`;
      }
    })
    .join('; ');
}

/** What a host message asks of the reader, in a line. */
function describeHostCommands(commands) {
  if (commands.length === 0) return 'nothing more';
  return commands.map((c) => (c.readUid ? 'read the card’s UID' : c.sealedScript ? 'run a sealed M1 script (opened only inside the reader: it carries the sector key)' : c.apdu ? `APDU ${c.apdu}` : 'a sealed APDU')).join('; ');
}

/**
 * The seed's worked example (DESIGN.md §6, issue 21) on the demo M1 card: the reader proves itself with
 * its national certificate, reads the card, the host answers with a write script signed with its own
 * key (bound to the card's UID and its value), the reader writes the card and signs the result, the
 * host checks it. Every signed message is printed, each way, and every command the card runs.
 */
async function m1Session() {
  const personal = JSON.parse(await fs.readFile(demo.m1Cards.gz.file, 'utf8'));
  const m1StateFile = path.join(dataDir, 'demo-m1-card-state.json');
  const savedM1 = await fs.readFile(m1StateFile, 'utf8').catch(() => undefined);
  let chip;
  if (savedM1) chip = VirtualM1Card.fromJSON(JSON.parse(savedM1));
  else {
    // A new chip, as the card company personalises it: its purse sector keyed from its UID, the purse at 0.
    chip = VirtualM1Card.create({ uid: personal.uid, sectorKeys: (sector) => personal.sectorKeys[sector] ?? { keyA: 'FFFFFFFFFFFF', keyB: 'FFFFFFFFFFFF' } });
    chip.authenticate(personal.purse.sector * 4 + personal.purse.valueBlock, 'B', personal.sectorKeys[personal.purse.sector].keyB);
    formatM1Purse(chip, personal.purse, 0);
    chip.halt();
  }
  const topUp = m1Operation === 'topup' ? await paidTopUp(Number(amountText), demo.m1Cards.gz.id) : undefined;
  const opened = await client.request(
    'mutation Open($input: OpenCardSessionInput!) { openCardSession(input: $input) { session { id challenge } userErrors { code message } } }',
    { input: { reader: reader.readerId, operation: m1Operation === 'topup' ? 'LOAD' : 'BALANCE', cardType: 'M1', topUp } },
  );
  if (opened.openCardSession.userErrors.length) {
    console.error(opened.openCardSession.userErrors.map((e) => `${e.code}: ${e.message}`).join('\n'));
    process.exit(1);
  }
  const hex = (bytes) => Buffer.from(bytes).toString('hex').toUpperCase();
  // The card as the reader drives it: each command shown as it reaches the chip.
  const card = {
    get uid() {
      return chip.uid;
    },
    authenticate: (block, keyType, key) => (console.log(`    card: AUTH ${keyType === 'A' ? '60' : '61'} block ${block} (key ${keyType})`), chip.authenticate(block, keyType, key)),
    read: (block) => {
      const data = chip.read(block);
      console.log(`    card: READ 30 block ${block} → ${hex(data)}`);
      return data;
    },
    write: (block, data) => (console.log(`    card: WRITE A0 block ${block} ← ${hex(data)}`), chip.write(block, data)),
    increment: (block, value) => (console.log(`    card: INCREMENT C1 block ${block} by ${value}`), chip.increment(block, value)),
    decrement: (block, value) => (console.log(`    card: DECREMENT C0 block ${block} by ${value}`), chip.decrement(block, value)),
    transfer: (block) => (console.log(`    card: TRANSFER B0 block ${block}`), chip.transfer(block)),
    halt: () => chip.halt(),
  };
  const agent = new ReaderAgent({
    ...readerOptions,
    m1: card,
    send: async (input) => {
      console.log(`reader → host  message ${input.seq}, signed by reader ${commonName(input.seq === 0 ? reader.nationalCertificatePem : reader.cityCertificatePem)} (${input.signature.slice(0, 16)}…): ${describeReaderMessage(input.body)}`);
      const reply = (await client.request(CARD_SESSION_MESSAGE, { input })).cardSessionMessage;
      if (reply.hostMessage) {
        const signed = JSON.parse(reply.hostMessage.payload);
        console.log(`host → reader  answer to ${signed.seq}, signed by host ${commonName(reply.hostMessage.certificateChain[0])} (${reply.hostMessage.signature.slice(0, 16)}…): ${signed.state}, ${describeHostCommands(signed.commands)}`);
      } else if (reply.userErrors.length) console.log(`host refused: ${reply.userErrors.map((e) => e.message).join('; ')}`);
      return reply;
    },
  });
  const done = await agent.run(opened.openCardSession.session);
  await fs.writeFile(m1StateFile, `${JSON.stringify(chip.toJSON(), null, 2)}\n`, { mode: 0o600 });
  console.log(done.state === 'COMPLETED' ? `m1: ${JSON.stringify(done.result)}` : `refused: ${done.refusal}`);
  process.exit(done.state === 'COMPLETED' ? 0 : 1);
}

if (operation === 'm1') {
  if (!demo.m1Cards?.gz) {
    console.error('demo.json has no M1 card: restart `npm start` so every demo seed step runs');
    process.exit(1);
  }
  await m1Session();
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
  ...readerOptions,
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

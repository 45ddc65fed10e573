// A QR-code ride (乘车码) against `npm start`: lin's app asks for a ride credential and draws a code,
// the demo reader stands in as a metro gate's scanner and checks the code OFFLINE (the card company's
// certificate and blocklist fetched beforehand), then uploads the ride in a signed batch.
//   npm run qr -w examples/reader-simulator -- [fare in fen, default 200]
// It reads $ONECARD_DATA_DIR/demo.json (default .onecard at the repository root). docs/qr-rides.md
// describes the code and the checks.
import fs from 'node:fs/promises';
import path from 'node:path';
import { OneCardClient, QrScanner, createQrDeviceKey, drawQrCode, renderQrCode, signQrRideBatch } from '@onecard/sdk';
import { HolderApp } from '../merchant-checkout/holder.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const fareText = process.argv[2] ?? '200';
if (!/^\d+$/.test(fareText) || Number(fareText) < 1) {
  console.error('usage: qr-ride [fare in fen]');
  process.exit(2);
}
const fare = Number(fareText);

const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
const reader = JSON.parse(await fs.readFile(demo.readers.counter.file, 'utf8'));
const cardCompany = demo.tenants.cardCompanies.GZ;
const lin = demo.cardholders.find((h) => h.username === 'lin');
const app = new HolderApp({ baseUrl: demo.publicUrl, client: demo.clients.cardholderApp, username: lin.username, password: lin.password });
// The scanner's owner relays its uploads and fetches its updates (the card company's client).
const company = new OneCardClient({ baseUrl: demo.publicUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'topups:write' });
// The same back office as the manager of its city's terminals: only a terminal it registers as a QR scanner uploads rides.
const terminals = new OneCardClient({ baseUrl: demo.publicUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'readers:manage' });
/** The gate's fare cap: a metro single fare's highest (a ride above it is recorded FARE_ABOVE_CAP, not booked). */
const FARE_CAP = 1500;

const money = (minor) => `${(BigInt(minor) / 100n).toString()}.${(BigInt(minor) % 100n).toString().padStart(2, '0')} CNY`;
const refusedText = (errors) => errors.map((e) => `${e.code}: ${e.message}`).join('; ');
const WALLET = 'id balance { amount } debt { amount }';

// 1. The app: lin's transit wallet with the Guangzhou card company, topped up if it holds less than the fare.
const opened = await app.request(`mutation Open($input: OpenTransitWalletInput!) { openTransitWallet(input: $input) { wallet { ${WALLET} } userErrors { code message } } }`, { input: { cardCompany } });
if (opened.openTransitWallet.userErrors.length) throw new Error(refusedText(opened.openTransitWallet.userErrors));
let wallet = opened.openTransitWallet.wallet;
console.log(`app      wallet ${wallet.id}: ${money(wallet.balance.amount)} (debt ${money(wallet.debt.amount)})`);
if (wallet.balance.amount < fare) {
  const made = await app.request('mutation Top($input: CreateWalletTopUpInput!) { createWalletTopUp(input: $input) { topUp { id status } userErrors { code message } } }', {
    input: { wallet: wallet.id, amount: 2000, idempotencyKey: `qr-ride-${Date.now()}`, paymentMethod: 'pm_card_visa' },
  });
  if (made.createWalletTopUp.userErrors.length) throw new Error(refusedText(made.createWalletTopUp.userErrors));
  let status = made.createWalletTopUp.topUp.status;
  for (let i = 0; status !== 'PAID' && i < 100; i++) {
    await new Promise((r) => setTimeout(r, 100));
    status = (await app.request('query T($id: ID!) { node(id: $id) { ... on WalletTopUp { status } } }', { id: made.createWalletTopUp.topUp.id })).node.status;
  }
  console.log(`app      top-up ${made.createWalletTopUp.topUp.id} of ${money(2000)} at the sandbox gateway: ${status}`);
  if (status !== 'PAID') process.exit(1);
}

// 2. The app: a device key that never leaves the phone, a credential the card company signs for it, a fresh code.
const device = createQrDeviceKey();
const issued = await app.request(
  'mutation Issue($input: IssueQrCredentialInput!) { issueQrCredential(input: $input) { credential { id credentialId validFrom validUntil } signedCredential userErrors { code message } } }',
  { input: { wallet: wallet.id, devicePublicKey: device.devicePublicKey } },
);
if (issued.issueQrCredential.userErrors.length) throw new Error(refusedText(issued.issueQrCredential.userErrors));
const credential = issued.issueQrCredential.credential;
console.log(`app      credential ${credential.credentialId}, valid ${credential.validFrom} to ${credential.validUntil}`);
const scannedAt = new Date();
const code = drawQrCode(issued.issueQrCredential.signedCredential, device.privateKey, { time: scannedAt, counter: 1 });
console.log(`app      shows the code (${code.length} characters, redrawn every few seconds): ${code.slice(0, 40)}…${code.slice(-12)}`);
// What the phone's screen shows: the code as an image (SVG here; PNG and terminal blocks too).
const svgFile = path.join(dataDir, 'qr-ride-code.svg');
await fs.writeFile(svgFile, await renderQrCode(code, { format: 'svg' }));
console.log(`app      the code as the screen shows it: ${svgFile} (a version 15 QR code, level M)`);

// 3. The card company registers the demo reader as a metro gate's QR scanner, with its fare cap.
const registered = await terminals.request('mutation S($input: SetQrScannerInput!) { setQrScanner(input: $input) { scanner { fareCap { amount } } userErrors { code message } } }', {
  input: { reader: reader.readerId, acceptsQrRides: true, fareCap: FARE_CAP },
});
if (registered.setQrScanner.userErrors.length) throw new Error(refusedText(registered.setQrScanner.userErrors));
console.log(`company  the demo reader is a QR scanner, fare cap ${money(registered.setQrScanner.scanner.fareCap.amount)}`);

// 4. The scanner: its update fetched while online, then the gate decides offline.
const scanner = new QrScanner();
const { qrScannerUpdate } = await company.request('query U($cardCompany: ID!, $after: Int) { qrScannerUpdate(cardCompany: $cardCompany, afterSequence: $after) { signingCertificates retiredSigningCertificates { certificate retiredAt usableUntil } blocked { credentialId sequence } sequence } }', { cardCompany, after: 0 });
scanner.apply(qrScannerUpdate, reader.trustedCertificatesPem[0]);
console.log(`scanner  update: the card company's signing certificate, ${qrScannerUpdate.blocked.length} blocked credential(s) up to sequence ${qrScannerUpdate.sequence}`);
const verdict = scanner.verify(code, scannedAt);
console.log(`scanner  ${verdict.ok ? `OPEN: credential ${verdict.code.credentialId}, counter ${verdict.code.counter}` : `CLOSED: ${verdict.refusal} (${verdict.reason})`}`);
if (!verdict.ok) process.exit(1);
const screenshot = scanner.verify(code, new Date(+scannedAt + 60_000));
console.log(`scanner  the same code shown again a minute later (a screenshot): ${screenshot.ok ? 'OPEN' : `CLOSED: ${screenshot.refusal}`}`);

// 5. The scanner's batch, signed with its device key, uploaded by its owner; then the same ride again.
const upload = async (batchId) => {
  const input = signQrRideBatch({ terminal: reader.readerId, batchId, rides: [{ code, scannedAt, amount: fare }], deviceKeyPem: reader.deviceKeyPem, certificatePem: reader.cityCertificatePem });
  const { uploadQrRideBatch: answer } = await company.request(
    'mutation Up($input: UploadQrRideBatchInput!) { uploadQrRideBatch(input: $input) { batch { rides { outcome reason journalEntry } } userErrors { code message } } }',
    { input },
  );
  if (answer.userErrors.length) throw new Error(refusedText(answer.userErrors));
  return answer.batch.rides[0];
};
const stamp = Date.now();
const ride = await upload(`qr-${stamp}-1`);
console.log(`host     ride ${money(fare)}: ${ride.outcome} (${ride.reason})`);
const replay = await upload(`qr-${stamp}-2`);
console.log(`host     the same ride in another batch: ${replay.outcome}`);

wallet = (await app.request(`query W($id: ID!) { node(id: $id) { ... on TransitWallet { ${WALLET} } } }`, { id: wallet.id })).node;
console.log(`app      wallet now ${money(wallet.balance.amount)} (debt ${money(wallet.debt.amount)})`);
console.log(`qr: ${JSON.stringify({ outcome: ride.outcome, replay: replay.outcome, screenshot: screenshot.ok ? 'OPEN' : screenshot.refusal, balance: wallet.balance.amount, debt: wallet.debt.amount })}`);

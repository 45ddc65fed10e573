// A metro gate of the Guangzhou card company with a software PSAM, against `npm start`
// (docs/settlement.md, "The terminal kit: a gate, step by step").
//   npm run gate -w examples/gate-simulator -- register [terminal number] [serial]
//                                           (once: key pairs, CSRs, registerReader; default 440100009001, GZ-METRO-GATE-0001)
//   npm run gate -w examples/gate-simulator -- provision                   (the card company sends the PSAM: provisionTerminal)
//   npm run gate -w examples/gate-simulator -- ride <fare in fen> [times] [--quiet]
//                                           (the demo card taps the gate, offline; --quiet: without the APDUs)
//   npm run gate -w examples/gate-simulator -- upload                      (the rides as one signed batch: uploadOfflineBatch)
//   npm run gate -w examples/gate-simulator -- demo                        (all four: register if needed, provision, three
//                                                                            rides of 2.00, upload)
// The gate keeps its keys, certificates, sealed PSAM package, last terminal serial and the rides not
// yet uploaded in gate.json in $ONECARD_DATA_DIR (default .onecard), as a real gate keeps them in its
// secure element and flash. The demo card is the reader simulator's (demo-card-state.json): load
// value onto it first (`npm run simulate -w examples/reader-simulator -- load 1000`).
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { OfflinePurchaseError, OneCardClient, SoftwarePsam, VirtualCardTransport, VirtualCpuCard, offlinePurchase, signOfflineBatch, uploadOfflineBatch } from '@onecard/sdk';
import { csrFor } from './csr.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR ?? '.onecard');
const gateFile = path.join(dataDir, 'gate.json');
const cardFile = path.join(dataDir, 'demo-card-state.json');

// --quiet: no APDU lines (to time many taps).
const quiet = process.argv.includes('--quiet');
const [operation, ...args] = process.argv.slice(2).filter((a) => a !== '--quiet');
const usage = 'usage: gate register [12-digit terminal number] [serial] | provision | ride <fare in fen> [times] | upload | demo';
if (!['register', 'provision', 'ride', 'upload', 'demo'].includes(operation) || (operation === 'ride' && !/^\d+$/.test(args[0] ?? '')) || (args[1] !== undefined && operation === 'ride' && !/^\d+$/.test(args[1]))) {
  console.error(usage);
  process.exit(2);
}

const demo = JSON.parse(await fs.readFile(path.join(dataDir, 'demo.json'), 'utf8'));
// The gate belongs to the card company: its back office registers it, provisions it and relays its uploads.
const backOffice = new OneCardClient({ baseUrl: demo.publicUrl, clientId: demo.clients.issuer.client_id, clientSecret: demo.clients.issuer.client_secret, scope: 'readers:manage topups:write' });

const readGate = async () => JSON.parse(await fs.readFile(gateFile, 'utf8'));
const saveGate = (gate) => fs.writeFile(gateFile, `${JSON.stringify(gate, null, 2)}\n`, { mode: 0o600 });
/** `1234` → `12.34` (fen to yuan, integer arithmetic). */
const yuan = (fen) => `${Math.trunc(fen / 100)}.${String(fen % 100).padStart(2, '0')}`;
const fail = (message) => {
  console.error(message);
  process.exit(1);
};

/** Three key pairs (national, city, encryption), a CSR each, and the registration with the terminal number. */
async function register(terminalNumber = '440100009001', serial = 'GZ-METRO-GATE-0001') {
  const existing = await readGate().catch(() => undefined);
  if (existing) {
    console.log(`${existing.serial} is registered: terminal number ${existing.terminalNumber}, reader ${existing.readerId}`);
    return existing;
  }
  const key = () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  const [nationalKeyPem, deviceKeyPem, encryptionKeyPem] = [key(), key(), key()];
  const { registerReader } = await backOffice.request(
    `mutation Register($input: RegisterReaderInput!) { registerReader(input: $input) {
      reader { id serial terminalNumber status } cityCertificateChain encryptionCertificateChain userErrors { code field message } } }`,
    {
      input: {
        serial,
        model: 'OneCard gate simulator',
        owner: demo.tenants.cardCompanies.GZ,
        city: demo.tenants.cities.GZ,
        terminalNumber,
        nationalCsr: csrFor(nationalKeyPem, serial),
        cityCsr: csrFor(deviceKeyPem, serial),
        encryptionCsr: csrFor(encryptionKeyPem, serial),
      },
    },
  );
  if (registerReader.userErrors.length) fail(`register: ${registerReader.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
  const gate = {
    serial,
    readerId: registerReader.reader.id,
    terminalNumber: registerReader.reader.terminalNumber,
    deviceKeyPem,
    nationalKeyPem,
    encryptionKeyPem,
    cityCertificatePem: registerReader.cityCertificateChain[0],
    encryptionCertificatePem: registerReader.encryptionCertificateChain[0],
    // Pinned at installation: the PSAM package must be signed by a host certificate that chains to it.
    trustedCertificatesPem: [registerReader.cityCertificateChain.at(-1)],
    psamPackage: null,
    lastSerial: 0,
    rides: [],
    batch: null,
  };
  await saveGate(gate);
  console.log(`register: ${JSON.stringify({ reader: gate.readerId, serial, terminalNumber: gate.terminalNumber, status: registerReader.reader.status })}`);
  return gate;
}

/** Opens the stored package in the gate: host signature and chain checked, keys unsealed with the gate's encryption key. */
function openPsam(gate) {
  if (!gate.psamPackage) fail('the gate has no PSAM yet: run `gate provision`');
  return SoftwarePsam.open(gate.psamPackage, { encryptionKeyPem: gate.encryptionKeyPem, terminal: gate.readerId, trustedCertificatesPem: gate.trustedCertificatesPem, cityCertificatePem: gate.cityCertificatePem, lastSerial: gate.lastSerial });
}

/** The card company sends the PSAM: sealed to the gate's encryption certificate, signed by its city's host key. */
async function provision() {
  const gate = await readGate().catch(() => fail('the gate is not registered: run `gate register`'));
  const { provisionTerminal } = await backOffice.request(
    `mutation Provision($input: ProvisionTerminalInput!) { provisionTerminal(input: $input) {
      psam { payload signature certificateChain } keyVersions userErrors { code message } } }`,
    { input: { terminal: gate.readerId } },
  );
  if (provisionTerminal.userErrors.length) fail(`provision: ${provisionTerminal.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
  gate.psamPackage = provisionTerminal.psam;
  const psam = openPsam(gate); // installs only what opens here
  await saveGate(gate);
  // What a PSAM shows of itself: its number and key versions, never a key.
  console.log(`provision: ${JSON.stringify(psam)}`);
}

/** A transport that prints each APDU, as a gate's debug log would (the card's answers carry no key). */
function printing(transport) {
  return {
    async transmit(apdu) {
      console.log(`  > ${Buffer.from(apdu).toString('hex')}`);
      const response = await transport.transmit(apdu);
      console.log(`  < ${Buffer.from(response).toString('hex')}`);
      return response;
    },
  };
}

/** The demo card taps the gate `times` times, offline: five APDUs each, MAC1 from the PSAM, MAC2 checked. */
async function ride(fare, times = 1) {
  const gate = await readGate().catch(() => fail('the gate is not registered: run `gate register`'));
  const psam = openPsam(gate);
  const saved = await fs.readFile(cardFile, 'utf8').catch(() => undefined);
  const card = saved ? VirtualCpuCard.fromJSON(JSON.parse(saved)) : VirtualCpuCard.withKeys(JSON.parse(await fs.readFile(demo.cards.gz.file, 'utf8')));
  try {
    for (let i = 0; i < times; i++) {
      const started = process.hrtime.bigint();
      try {
        const transport = new VirtualCardTransport(card);
        const record = await offlinePurchase(quiet ? transport : printing(transport), psam, { amount: fare });
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        gate.rides.push(record);
        console.log(`ride: ${JSON.stringify({ asn: record.asn, offlineCounter: record.offlineCounter, fare: record.amount, terminalSerial: record.terminalSerial, tac: record.tac })}  gate opens (${yuan(fare)} CNY, card in the field ${ms.toFixed(1)} ms)`);
      } catch (err) {
        if (!(err instanceof OfflinePurchaseError)) throw err;
        // A card that debited but whose MAC2 failed still goes to the host: its TAC decides.
        if (err.record) gate.rides.push(err.record);
        console.log(`ride: refused (${err.code}): ${err.message}; the gate stays shut`);
      }
    }
  } finally {
    // The serial is the PSAM's: it is never used twice, even after a refused tap.
    gate.lastSerial = psam.lastSerial;
    await saveGate(gate);
    await fs.writeFile(cardFile, `${JSON.stringify(card.toJSON(), null, 2)}\n`, { mode: 0o600 });
  }
}

/**
 * The rides not yet uploaded, as one batch signed with the gate's device key and relayed by the back
 * office. The batch is fixed (id and records) before it is sent, so after a lost answer the same batch
 * goes again and the platform answers what it stored (`replayed`), booking nothing twice.
 */
async function upload() {
  const gate = await readGate().catch(() => fail('the gate is not registered: run `gate register`'));
  if (!gate.batch) {
    if (gate.rides.length === 0) return console.log('no rides to upload');
    gate.batch = { batchId: `${gate.serial}-${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}-${gate.lastSerial}`, records: gate.rides };
    gate.rides = [];
    await saveGate(gate);
  }
  const signed = signOfflineBatch({ terminal: gate.readerId, batchId: gate.batch.batchId, terminalNumber: gate.terminalNumber, records: gate.batch.records, deviceKeyPem: gate.deviceKeyPem, cityCertificatePem: gate.cityCertificatePem });
  const answer = await uploadOfflineBatch(backOffice, signed);
  if (answer.userErrors.length) fail(`upload: ${answer.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
  for (const r of answer.batch.records) console.log(`  record ${r.index}: card ${r.asn} counter ${r.offlineCounter} ${yuan(r.amount).padStart(7)} CNY  ${r.outcome}${r.accepted ? `  entry ${r.journalEntry}` : `  ${r.reason}`}`);
  gate.batch = null;
  await saveGate(gate);
  const booked = answer.batch.records.filter((r) => r.accepted).reduce((sum, r) => sum + r.amount, 0);
  console.log(`upload: ${JSON.stringify({ batchId: answer.batch.batchId, replayed: answer.replayed, outcomes: answer.batch.records.map((r) => r.outcome), booked })}`);
}

if (operation === 'register') await register(args[0], args[1]);
if (operation === 'provision') await provision();
if (operation === 'ride') await ride(Number(args[0]), Number(args[1] ?? 1));
if (operation === 'upload') await upload();
if (operation === 'demo') {
  await register();
  await provision();
  await ride(200, 3);
  await upload();
}

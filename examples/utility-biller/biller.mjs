// A water company's back office against OneCard (`npm start` in another terminal first):
//   npm start -w examples/utility-biller                  publish a month of bills, take payment advice for a few seconds, print the day's reconciliation
//   npm start -w examples/utility-biller -- --serve       the same, then keep listening until Ctrl-C
//   npm start -w examples/utility-biller -- --help        every option
// It uses the demo water biller's OAuth client from $ONECARD_DATA_DIR/demo.json (default .onecard at
// the repository root), or ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET. What it keeps
// (the generated CSV, the last event it read, reconciliation files) is in $ONECARD_DATA_DIR/utility-biller/.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OneCardClient, verifyWebhook } from '@onecard/sdk';

const HELP = `usage: npm start -w examples/utility-biller -- [options]

Publishes a month of water bills from a CSV file (a second run imports only what is missing),
receives bill.paid payment advice on a local webhook endpoint, and prints the day's reconciliation.

  --serve               keep listening for payment advice until Ctrl-C (default: listen --wait seconds, then exit)
  --wait SECONDS        how long the one-shot run listens (default 5)
  --accounts N          customer accounts in the generated month of bills (default 300)
  --period YYYY-MM      the month billed (default: the current month in the biller's city)
  --csv FILE            import this bills CSV instead of generating one (docs/billers.md#csv-import)
  --day YYYY-MM-DD      the reconciliation day (default: today in the biller's city)
  --host ADDRESS        where the webhook receiver listens (default 127.0.0.1)
  --port N              its port (default 0: any free port)
  --public-url URL      the URL to register instead of http://<host>:<port>/onecard/webhooks, e.g. an
                        https tunnel to this receiver (a production OneCard only sends to public https URLs)
  --help                this text
`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      wait: { type: 'string', default: '5' },
      accounts: { type: 'string', default: '300' },
      period: { type: 'string' },
      csv: { type: 'string' },
      day: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      'public-url': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  }));
} catch (err) {
  usage(err.message);
}
if (opts.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
if (!/^\d+(\.\d+)?$/.test(opts.wait)) usage('--wait takes a number of seconds');
if (!/^[1-9]\d{0,5}$/.test(opts.accounts) || Number(opts.accounts) > 100_000) usage('--accounts takes a number from 1 to 100000');
if (opts.period !== undefined && !/^\d{4}-(0[1-9]|1[0-2])$/.test(opts.period)) usage('--period takes YYYY-MM');
if (opts.day !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.day)) usage('--day takes YYYY-MM-DD');
if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65535) usage('--port takes a TCP port number');

function usage(message) {
  process.stderr.write(`utility-biller: ${message}\n\n${HELP}`);
  process.exit(2);
}

const WEBHOOK_PATH = '/onecard/webhooks';
const ENDPOINT_DESCRIPTION = 'utility-biller example (examples/utility-biller)';

// --- where, and as whom -------------------------------------------------------------------------

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR || '.onecard');
const stateDir = path.join(dataDir, 'utility-biller');
await fs.mkdir(stateDir, { recursive: true });

async function credentials() {
  if (process.env.ONECARD_CLIENT_ID) {
    return { baseUrl: process.env.ONECARD_URL || 'http://localhost:4000', clientId: process.env.ONECARD_CLIENT_ID, clientSecret: process.env.ONECARD_CLIENT_SECRET };
  }
  const file = path.join(dataDir, 'demo.json');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (!text) {
    console.error(`utility-biller: no ${file}: start OneCard first (npm start), or set ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET`);
    process.exit(1);
  }
  const demo = JSON.parse(text);
  return { baseUrl: process.env.ONECARD_URL || demo.publicUrl, clientId: demo.clients.biller.client_id, clientSecret: demo.clients.biller.client_secret };
}

const creds = await credentials();
const onecard = new OneCardClient({ ...creds, scope: 'bills:read bills:write webhooks:manage events:read' });

// --- money and dates: integers and strings, never floats --------------------------------------

const DECIMALS = { JPY: 0, KRW: 0, VND: 0, BHD: 3, KWD: 3, OMR: 3, TND: 3, JOD: 3 };

/** `3450` CNY → `CNY 34.50`, `-5` → `CNY -0.05`, with thousands separators. */
function money(minor, currency) {
  const decimals = DECIMALS[currency] ?? 2;
  const n = BigInt(minor);
  const digits = (n < 0n ? -n : n).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${currency} ${n < 0n ? '-' : ''}${whole}${decimals ? `.${digits.slice(-decimals)}` : ''}`;
}

/** The local date (YYYY-MM-DD) of an instant in a time zone. */
function localDate(timeZone, at = new Date()) {
  return new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

function localTime(timeZone, at) {
  return new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(new Date(at));
}

/** The last day of the month after `period` (YYYY-MM): the bills' due date. */
function dueDateFor(period) {
  const [y, m] = period.split('-').map(Number);
  const last = new Date(Date.UTC(y, m + 1, 0)); // day 0 of the month after next = last day of next month
  return last.toISOString().slice(0, 10);
}

// --- who we are ---------------------------------------------------------------------------------

const { viewer } = await onecard.request('query Me { viewer { kind tenantId } }');
if (viewer.kind !== 'BILLER') {
  console.error(`utility-biller: these credentials are a ${viewer.kind} client; a biller's client is needed`);
  process.exit(1);
}
const { biller } = await onecard.request('query Biller($id: ID!) { biller(id: $id) { id name currency city { code timeZone } } }', { id: viewer.tenantId });
const timeZone = biller.city.timeZone;
const period = opts.period ?? localDate(timeZone).slice(0, 7);
console.log(`${biller.name} (${biller.city.code}, ${timeZone}) on ${creds.baseUrl}`);

// --- 1. a month of bills, as the CSV import takes them -----------------------------------------

const COLUMNS = ['account_number', 'period', 'amount_due', 'due_date', 'biller_reference', 'allow_partial', 'late_fee_kind', 'late_fee_amount', 'late_fee_basis_points', 'late_fee_cap'];

/** RFC 4180: quote a value holding a comma, a quote or a line break. */
const csvCell = (value) => (/[",\r\n]/.test(String(value)) ? `"${String(value).replaceAll('"', '""')}"` : String(value));
const csvLine = (values) => `${values.map(csvCell).join(',')}\r\n`;

/**
 * The month's bills of `count` customer accounts. Deterministic (a hash of account and month), so
 * the file, and the references in it, are the same on every run: that makes the import idempotent.
 * Water at 3.46 a cubic metre, 4 to 40 m³ a month; every 5th account with a daily late fee, every
 * 7th payable in part.
 */
function monthOfBills(count) {
  const prefix = `${biller.city.code}W-`;
  const rows = [];
  for (let i = 1; i <= count; i++) {
    const account = `${prefix}${String(200_000 + i).padStart(7, '0')}`;
    const h = createHash('sha256').update(`${account}/${period}`).digest().readUInt32BE(0);
    const cubicMetres = 4 + (h % 37);
    const daily = i % 5 === 0;
    rows.push({
      account_number: account,
      period,
      amount_due: String(cubicMetres * 346),
      due_date: dueDateFor(period),
      biller_reference: `WB-${period}-${account}`,
      allow_partial: i % 7 === 0 ? 'true' : '',
      late_fee_kind: daily ? 'DAILY_BASIS_POINTS' : '',
      late_fee_amount: '',
      late_fee_basis_points: daily ? '5' : '',
      late_fee_cap: daily ? '800' : '',
    });
  }
  return rows;
}

/** A bills CSV file read back into rows (RFC 4180, header by name), for --csv. */
function parseCsv(text) {
  const records = [];
  let record = [];
  let cell = '';
  let quoted = false;
  const endCell = () => {
    record.push(cell.trim());
    cell = '';
  };
  const endRecord = () => {
    endCell();
    if (record.some((v) => v !== '')) records.push(record);
    record = [];
  };
  for (let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endCell();
    else if (c === '\n') endRecord();
    else if (c !== '\r') cell += c;
  }
  endRecord();
  const [header = [], ...data] = records;
  return data.map((values) => Object.fromEntries(header.map((name, k) => [name, values[k] ?? ''])));
}

const toCsv = (rows, columns) => csvLine(columns) + rows.map((row) => csvLine(columns.map((c) => row[c] ?? ''))).join('');

let rows;
let columns = COLUMNS;
let fileName;
if (opts.csv) {
  const text = await fs.readFile(path.resolve(process.env.INIT_CWD || process.cwd(), opts.csv), 'utf8');
  rows = parseCsv(text);
  columns = Object.keys(rows[0] ?? {}).length ? Object.keys(rows[0]) : COLUMNS;
  fileName = path.basename(opts.csv);
  console.log(`bills: ${rows.length} rows in ${opts.csv}`);
} else {
  rows = monthOfBills(Number(opts.accounts));
  fileName = `bills-${period}.csv`;
  const file = path.join(stateDir, fileName);
  await fs.writeFile(file, toCsv(rows, COLUMNS));
  const total = rows.reduce((sum, r) => sum + BigInt(r.amount_due), 0n);
  console.log(`bills: ${rows.length} accounts for ${period}, ${money(total, biller.currency)} in all, written to ${file}`);
}

/** The references of our bills already published, of the periods in the file. */
async function publishedReferences(periods) {
  const refs = new Set();
  for (const p of periods) {
    let after = null;
    do {
      const { bills } = await onecard.request(
        'query Published($filter: BillFilterInput, $after: String) { bills(filter: $filter, first: 100, after: $after) { edges { node { billerReference } } pageInfo { hasNextPage endCursor } } }',
        { filter: { period: p }, after },
      );
      for (const { node } of bills.edges) refs.add(node.billerReference);
      after = bills.pageInfo.hasNextPage ? bills.pageInfo.endCursor : null;
    } while (after);
  }
  return refs;
}

// Idempotent: what is already published (by its biller reference) is left out. Were it sent
// again, the import would refuse the whole file (DUPLICATE_BILLER_REFERENCE): it is all or nothing.
const published = await publishedReferences([...new Set(rows.map((r) => r.period))]);
const missing = rows.filter((r) => !published.has(r.biller_reference));
let imported = 0;
const CHUNK = 10_000; // the GraphQL request body has a size limit: large months go in several files
for (let start = 0; start < missing.length; start += CHUNK) {
  const part = missing.slice(start, start + CHUNK);
  const name = missing.length > CHUNK ? fileName.replace(/(\.csv)?$/, `-part${start / CHUNK + 1}.csv`) : fileName;
  const { importBillsCsv } = await onecard.request(
    `mutation Import($input: ImportBillsCsvInput!) {
       importBillsCsv(input: $input) {
         import { id status rowCount accepted refused refusalsNotListed refusals { row field code message } }
         userErrors { code message }
       }
     }`,
    { input: { fileName: name, csv: toCsv(part, columns) } },
  );
  const report = importBillsCsv.import;
  if (importBillsCsv.userErrors.length) {
    console.error(`import of ${name} refused: ${importBillsCsv.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
    for (const r of report?.refusals.slice(0, 20) ?? []) console.error(`  row ${r.row}${r.field ? ` ${r.field}` : ''}: ${r.code} ${r.message}`);
    if (report && report.refused > 20) console.error(`  … ${report.refused - 20} more`);
    process.exit(1);
  }
  imported += report.accepted;
  console.log(`import ${report.id}: ${report.status}, ${report.accepted} of ${report.rowCount} rows`);
}
console.log(`bills imported: ${imported} new, ${rows.length - missing.length} already published`);

// --- 2. payment advice: a webhook endpoint on this machine ---------------------------------------

const statePath = path.join(stateDir, 'state.json');
const state = JSON.parse(await fs.readFile(statePath, 'utf8').catch(() => '{}'));
/** Event ids handled (the last 1000, kept across runs): deliveries are at least once, so the same advice can come twice. */
const handled = new Set(state.handled ?? []);
const saveState = () => fs.writeFile(statePath, `${JSON.stringify({ ...state, handled: [...handled].slice(-1000) }, null, 2)}\n`);
const days = new Set();

function printAdvice(event, how) {
  const a = event.data;
  console.log(
    `advice ${a.receiptNumber}: ${a.accountNumber} ${a.period} paid ${money(a.amount, a.currency)}, bill ${a.billStatus}, day ${a.businessDay} (event ${event.id}, ${how})`,
  );
  days.add(a.businessDay);
}

let secret;
let reconcileTimer;
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || new URL(req.url, 'http://x').pathname !== WEBHOOK_PATH) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    // The signature is over the raw bytes: check it before parsing anything.
    const checked = verifyWebhook(Buffer.concat(chunks), req.headers['onecard-signature'], secret);
    if (!checked.ok) {
      console.log(`refused a delivery: ${checked.reason}`);
      res.writeHead(400, { 'content-type': 'text/plain' }).end(checked.reason);
      return;
    }
    res.writeHead(204).end(); // answer first, then work
    const { event } = checked;
    if (handled.has(event.id)) return console.log(`(event ${event.id} again: already handled)`);
    handled.add(event.id);
    if (event.type !== 'bill.paid') return console.log(`event ${event.type} ${event.id}`);
    printAdvice(event, 'webhook, signature verified');
    // A few advices at once make one reconciliation.
    clearTimeout(reconcileTimer);
    reconcileTimer = setTimeout(() => void reconcileAll().catch((err) => console.error(`reconciliation failed: ${err.message}`)), 300);
  });
});
await new Promise((resolve, reject) => server.once('error', reject).listen(Number(opts.port), opts.host, resolve));
const { port } = server.address();
const localHost = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host.includes(':') ? `[${opts.host}]` : opts.host;
const endpointUrl = opts['public-url'] ?? `http://${localHost}:${port}${WEBHOOK_PATH}`;

/**
 * Points our endpoint (found by its description) at this run's URL and gives it a fresh secret, or
 * registers one. The secret is shown only when made: rotating it (the old one stops at once) is how
 * a new process learns one.
 */
async function registerEndpoint() {
  const { webhookEndpoints } = await onecard.request('query Endpoints { webhookEndpoints(first: 100) { edges { node { id url description enabled } } } }');
  const ours = webhookEndpoints.edges.map((e) => e.node).find((e) => e.description === ENDPOINT_DESCRIPTION);
  let errors;
  if (ours) {
    const { updateWebhookEndpoint } = await onecard.request(
      'mutation Point($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { endpoint { id url } userErrors { code message } } }',
      { input: { endpoint: ours.id, url: endpointUrl, eventTypes: ['bill.paid'], enabled: true } },
    );
    errors = updateWebhookEndpoint.userErrors;
    if (!errors.length) {
      const { rotateWebhookSecret } = await onecard.request(
        'mutation Rotate($input: RotateWebhookSecretInput!) { rotateWebhookSecret(input: $input) { secret userErrors { code message } } }',
        { input: { endpoint: ours.id, previousSecretExpiresIn: 0 } },
      );
      errors = rotateWebhookSecret.userErrors;
      secret = rotateWebhookSecret.secret;
    }
    if (!errors.length) return ours.id;
  } else {
    const { createWebhookEndpoint } = await onecard.request(
      'mutation Register($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } secret userErrors { code message } } }',
      { input: { url: endpointUrl, eventTypes: ['bill.paid'], description: ENDPOINT_DESCRIPTION } },
    );
    errors = createWebhookEndpoint.userErrors;
    secret = createWebhookEndpoint.secret;
    if (!errors.length) return createWebhookEndpoint.endpoint.id;
  }
  for (const e of errors) console.error(`webhook endpoint ${endpointUrl} refused: ${e.code}: ${e.message}`);
  if (errors.some((e) => e.code === 'INVALID_WEBHOOK_URL')) {
    console.error(
      'OneCard sends webhooks to http://localhost and http://127.0.0.1 only outside production (NODE_ENV=production allows public https URLs only).\n' +
        'Run this receiver behind an https tunnel or reverse proxy and pass its URL with --public-url https://…',
    );
  }
  return undefined;
}

const endpointId = await registerEndpoint();
if (!endpointId) {
  server.close();
  process.exit(1);
}
console.log(`listening for bill.paid on ${endpointUrl}${opts['public-url'] ? ` (receiver on ${opts.host}:${port})` : ''}`);

/** Reads the advice we missed while not listening (the events feed, after the last one we read). */
async function catchUp() {
  let after = state.lastEventId ?? null;
  for (;;) {
    const { events } = await onecard.request(
      'query Missed($after: String) { events(after: $after, first: 100, types: ["bill.paid"]) { edges { node { id type created data } } pageInfo { hasNextPage endCursor } } }',
      { after },
    );
    for (const { node } of events.edges) {
      state.lastEventId = node.id;
      if (handled.has(node.id)) continue;
      handled.add(node.id);
      printAdvice(node, 'from the events feed');
    }
    if (!events.pageInfo.hasNextPage) break;
    after = events.pageInfo.endCursor;
  }
  await saveState();
}

// --- 3. the day's reconciliation -----------------------------------------------------------------

async function reconcile(day) {
  const { billerReconciliation: r } = await onecard.request(
    `query Reconciliation($day: String!) {
       billerReconciliation(businessDay: $day) {
         businessDay count total { amount currency } ledgerTotal { amount currency }
         payments { receiptNumber paidAt accountNumber period amount { amount currency } cardNumber }
         csv
       }
     }`,
    { day },
  );
  const file = path.join(stateDir, `reconciliation-${r.businessDay}.csv`);
  await fs.writeFile(file, r.csv);
  const lines = [`reconciliation ${biller.name} ${r.businessDay}:`];
  if (r.payments.length) lines.push(`  ${'receipt'.padEnd(28)}${'paid at'.padEnd(10)}${'account'.padEnd(16)}${'period'.padEnd(9)}${'amount'.padStart(16)}  card`);
  for (const p of r.payments) {
    lines.push(`  ${p.receiptNumber.padEnd(28)}${localTime(timeZone, p.paidAt).padEnd(10)}${p.accountNumber.padEnd(16)}${p.period.padEnd(9)}${money(p.amount.amount, p.amount.currency).padStart(16)}  ${p.cardNumber ?? ''}`);
  }
  const matches = BigInt(r.total.amount) === BigInt(r.ledgerTotal.amount);
  lines.push(
    `  ${r.count} payment${r.count === 1 ? '' : 's'}, total ${money(r.total.amount, r.total.currency)}; ledger ${money(r.ledgerTotal.amount, r.ledgerTotal.currency)} (${matches ? 'matches' : 'DIFFERS'})`,
  );
  lines.push(`  saved as ${file}`);
  console.log(lines.join('\n'));
  return matches;
}

async function reconcileAll() {
  const wanted = opts.day ? [opts.day] : [...new Set([localDate(timeZone), ...days])].sort();
  let ok = true;
  for (const day of wanted) ok = (await reconcile(day)) && ok;
  return ok;
}

// --- run ----------------------------------------------------------------------------------------

await catchUp();

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  clearTimeout(reconcileTimer);
  server.close();
  try {
    await catchUp();
    // Nobody listens once we are gone: stop deliveries (the events feed keeps everything for next time).
    await onecard.request('mutation Pause($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { userErrors { code message } } }', {
      input: { endpoint: endpointId, enabled: false },
    });
    process.exit((await reconcileAll()) ? 0 : 1);
  } catch (err) {
    console.error(`utility-biller: ${err.message}`);
    process.exit(1);
  }
}

if (opts.serve) {
  console.log('serving; Ctrl-C stops (and prints the reconciliation)');
  await reconcileAll();
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
} else {
  await new Promise((r) => setTimeout(r, Number(opts.wait) * 1000));
  await stop();
}

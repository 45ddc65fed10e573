// A day's settlement as files a finance team opens: the CSV reports and one self-contained HTML page
// with charts, against a running OneCard (`npm start` in another terminal first):
//   npm start -w examples/settlement-report                         yesterday, every city you may see
//   npm start -w examples/settlement-report -- --city GZ --date 2026-11-24
//   npm start -w examples/settlement-report -- --close --date 2026-11-25   (operator) close and clear the day now
//   npm start -w examples/settlement-report -- --help
// It uses the operator's (or, with --client issuer, the Guangzhou card company's) OAuth client from
// $ONECARD_DATA_DIR/demo.json, or ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET.
import fs from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { OneCardClient } from '@onecard/sdk';

const HELP = `usage: npm start -w examples/settlement-report -- [options]

Reads a business day's settlement (windows, batches, lines, interchange) and writes the CSV reports
and report.html (charts: volume by hour and channel, net position per participant, the interchange
matrix between cities) into an output folder.

  --city CODE        a city (repeat for several); default: every city you may see
  --date YYYY-MM-DD  the business day; default: yesterday in the (first) city's time zone
  --out DIR          the output folder; default: settlement-report-<date> in the current folder
  --client NAME      the demo.json client to use: operator (default) or issuer (a card company)
  --close            operator: close and clear a window that is not cleared yet, now
                     (closeSettlementWindow + clearSettlementWindow; otherwise the cut-off job does it)
  --help             this text
`;

let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      city: { type: 'string', multiple: true },
      date: { type: 'string' },
      out: { type: 'string' },
      client: { type: 'string', default: 'operator' },
      close: { type: 'boolean', default: false },
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
if (opts.date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(opts.date)) usage('--date takes YYYY-MM-DD');
if (!['operator', 'issuer'].includes(opts.client)) usage('--client is operator or issuer');

function usage(message) {
  process.stderr.write(`settlement-report: ${message}\n\n${HELP}`);
  process.exit(2);
}

function fail(message) {
  console.error(`settlement-report: ${message}`);
  process.exit(1);
}

// --- as whom --------------------------------------------------------------------------------------

const root = path.resolve(import.meta.dirname, '../..');
const dataDir = path.resolve(root, process.env.ONECARD_DATA_DIR || '.onecard');

async function credentials() {
  if (process.env.ONECARD_CLIENT_ID) {
    return { baseUrl: process.env.ONECARD_URL || 'http://localhost:4000', clientId: process.env.ONECARD_CLIENT_ID, clientSecret: process.env.ONECARD_CLIENT_SECRET };
  }
  const file = path.join(dataDir, 'demo.json');
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (!text) fail(`no ${file}: start OneCard first (npm start), or set ONECARD_URL, ONECARD_CLIENT_ID and ONECARD_CLIENT_SECRET`);
  const demo = JSON.parse(text);
  const client = demo.clients[opts.client];
  return { baseUrl: process.env.ONECARD_URL || demo.publicUrl, clientId: client.client_id, clientSecret: client.client_secret };
}

const creds = await credentials();
const baseUrl = creds.baseUrl.replace(/\/+$/, '');
/** Settlement reads; the operator also lists payments and bills (for the hourly chart) and may close days. */
const onecard = new OneCardClient({ ...creds, scope: 'settlements:read' });
const { viewer } = await onecard.request('query Me { viewer { kind tenantId } }');
const operator = viewer.kind === 'OPERATOR';
if (!operator && viewer.kind !== 'ISSUER') fail(`a ${viewer.kind} client reads its own statements only (settlementStatements); use the operator's or a card company's client`);
if (opts.close && !operator) fail('--close needs the operator (scope settlements:manage)');
// clearSettlementWindow finds the window through settlements:read: the manager needs both.
const manager = opts.close ? new OneCardClient({ ...creds, scope: 'settlements:read settlements:manage' }) : undefined;
const lister = operator ? new OneCardClient({ ...creds, scope: 'payments:read bills:read' }) : undefined;

/** A Bearer token for the CSV routes (they take a plain access token, not GraphQL). */
async function accessToken() {
  const res = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${encodeURIComponent(creds.clientId)}:${encodeURIComponent(creds.clientSecret)}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'settlements:read' }),
  });
  if (!res.ok) fail(`token request refused: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()).access_token;
}

// --- money, dates, text: integers and strings, never floats for amounts ---------------------------

const DECIMALS = { JPY: 0, KRW: 0, VND: 0, BHD: 3, KWD: 3, OMR: 3, TND: 3, JOD: 3 };

/** Integer minor units → `CNY 1,234.56` (`CNY -13.00`), by string arithmetic on a BigInt. */
function money(minor, currency) {
  const decimals = DECIMALS[currency] ?? 2;
  const n = BigInt(minor);
  const digits = (n < 0n ? -n : n).toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${currency} ${n < 0n ? '-' : ''}${whole}${decimals ? `.${digits.slice(-decimals)}` : ''}`;
}

const sum = (values) => values.reduce((a, b) => a + BigInt(b), 0n);

/** Parts of an instant in a time zone. */
function zoned(timeZone, at) {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  const get = (type) => parts.find((p) => p.type === type).value;
  return { date: `${get('year')}-${get('month')}-${get('day')}`, hour: Number(get('hour')), minute: Number(get('minute')), second: Number(get('second')) };
}

/** The instant a local day starts in a time zone (found from the zone's offset, checked twice for DST days). */
function startOfDay(date, timeZone) {
  const [y, m, d] = date.split('-').map(Number);
  let guess = Date.UTC(y, m - 1, d);
  for (let i = 0; i < 2; i++) {
    const z = zoned(timeZone, new Date(guess));
    const [zy, zm, zd] = z.date.split('-').map(Number);
    const shownAsUtc = Date.UTC(zy, zm - 1, zd, z.hour, z.minute, z.second);
    guess -= shownAsUtc - Date.UTC(y, m - 1, d);
  }
  return new Date(guess);
}

function addDays(date, days) {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

const esc = (text) => String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

/** A CSV cell: quoted when needed; text a spreadsheet would run as a formula gets a leading '. */
function csvCell(value, text = typeof value === 'string') {
  let s = String(value ?? '');
  if (text && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
const csvFile = (header, rows) => [header, ...rows].map((r) => r.map((v) => csvCell(v)).join(',')).join('\r\n') + '\r\n';

// --- 1. which cities, which day -------------------------------------------------------------------

const { cities } = await onecard.request('query Cities { cities(first: 100) { edges { node { id code name timeZone currency } } } }');
const allCities = cities.edges.map((e) => e.node);
let visible = allCities;
if (!operator) {
  const { cardCompany } = await onecard.request('query Company($id: ID!) { cardCompany(id: $id) { name city { code } } }', { id: viewer.tenantId });
  visible = allCities.filter((c) => c.code === cardCompany.city.code);
}
const wanted = (opts.city ?? []).map((c) => c.toUpperCase());
const unknown = wanted.filter((code) => !visible.some((c) => c.code === code));
if (unknown.length) fail(`unknown or not yours: ${unknown.join(', ')} (you may see ${visible.map((c) => c.code).join(', ')})`);
const selected = wanted.length ? visible.filter((c) => wanted.includes(c.code)) : visible;
if (!selected.length) fail('no city to report on');
const date = opts.date ?? addDays(zoned(selected[0].timeZone, new Date()).date, -1);
const outDir = path.resolve(process.env.INIT_CWD || process.cwd(), opts.out ?? `settlement-report-${date}`);
await fs.mkdir(outDir, { recursive: true });
console.log(`settlement ${date}: ${selected.map((c) => c.code).join(', ')} as ${viewer.kind.toLowerCase()} on ${baseUrl}`);

// --- 2. windows and batches -----------------------------------------------------------------------

const WINDOW = 'id cityCode businessDay status currency closedAt closedBy clearedAt cutoffAt batch { id }';

async function windowOf(city) {
  const { settlementWindows } = await onecard.request(
    `query Window($city: String!, $day: String!) { settlementWindows(city: $city, from: $day, to: $day, first: 1) { edges { node { ${WINDOW} } } } }`,
    { city: city.code, day: date },
  );
  return settlementWindows.edges[0]?.node ?? null;
}

/** Operator, --close: close the day now (earlier open days first) and clear it. */
async function closeAndClear(city, window) {
  if (!window || window.status === 'OPEN') {
    const { closeSettlementWindow: closed } = await manager.request(
      `mutation Close($input: CloseSettlementWindowInput!) { closeSettlementWindow(input: $input) { window { ${WINDOW} } userErrors { code message } } }`,
      { input: { city: city.id, businessDay: date } },
    );
    if (closed.userErrors.length) fail(`${city.code} ${date}: ${closed.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
    window = closed.window;
    console.log(`${city.code} ${date}: window closed`);
  }
  if (window.status === 'CLOSED') {
    const { clearSettlementWindow: cleared } = await manager.request(
      'mutation Clear($input: ClearSettlementWindowInput!) { clearSettlementWindow(input: $input) { batch { id } userErrors { code message } } }',
      { input: { window: window.id } },
    );
    if (cleared.userErrors.length) fail(`${city.code} ${date}: ${cleared.userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')}`);
    console.log(`${city.code} ${date}: window cleared`);
  }
  return windowOf(city);
}

const LINE = `id participant participantKind participantName salesCount refundCount gross { amount } refunds { amount } fees { amount }
  net { amount } carriedIn { amount } due { amount } payout { amount } status topUpCount topUps { amount } topUpRefunds { amount }`;
const POSITION = 'issuer { id name cityCode } acquirer { id name cityCode } count gross { amount currency } refunds { amount } net { amount currency }';

async function batchOf(id) {
  const lines = [];
  let after = null;
  let batch;
  do {
    ({ settlementBatch: batch } = await onecard.request(
      `query Batch($id: ID!, $after: String) {
         settlementBatch(id: $id) {
           id status createdAt settledAt itemCount journalEntry
           gross { amount currency } refunds { amount } fees { amount } net { amount } payoutTotal { amount } topUps { amount } topUpRefunds { amount }
           lines(first: 100, after: $after) { edges { node { ${LINE} } } pageInfo { hasNextPage endCursor } }
           interchange { ${POSITION} }
         }
       }`,
      { id, after },
    ));
    lines.push(...batch.lines.edges.map((e) => e.node));
    after = batch.lines.pageInfo.hasNextPage ? batch.lines.pageInfo.endCursor : null;
  } while (after);
  return { ...batch, lines };
}

const files = [];
async function download(route, fallbackName, token) {
  const res = await fetch(`${baseUrl}${route}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) fail(`GET ${route}: HTTP ${res.status} ${await res.text()}`);
  const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? fallbackName;
  const text = await res.text();
  await fs.writeFile(path.join(outDir, path.basename(name)), text);
  files.push(path.basename(name));
  return text;
}

const token = await accessToken();
const reports = [];
for (const city of selected) {
  let window = await windowOf(city);
  if (opts.close && (!window || window.status === 'OPEN' || window.status === 'CLOSED')) window = await closeAndClear(city, window);
  const report = { city, window, batch: null, note: null };
  reports.push(report);
  if (!window) {
    report.note = `no settlement window for ${date} yet: ${operator ? 'run again with --close to close the day now, or wait for the cut-off' : 'the day has not been closed'}`;
  } else if (!window.batch) {
    report.note =
      window.status === 'OPEN'
        ? `the window is OPEN (cut-off ${window.cutoffAt}): not cleared yet${operator ? '; run again with --close to close and clear it now' : ''}`
        : 'the window is CLOSED; clearing follows in the background (the settlement job), or run again with --close';
  } else {
    report.batch = await batchOf(window.batch.id);
    await download(`/settlement/windows/${encodeURIComponent(window.id)}/lines.csv`, `settlement-lines-${city.code}-${date}.csv`, token);
    await download(`/settlement/windows/${encodeURIComponent(window.id)}/interchange.csv`, `settlement-interchange-${city.code}-${date}.csv`, token);
  }
  const b = report.batch;
  console.log(
    b
      ? `${city.code} ${date}: ${window.status}, ${b.lines.length} participant${b.lines.length === 1 ? '' : 's'}, gross ${money(b.gross.amount, b.gross.currency)}, fees ${money(b.fees.amount, b.gross.currency)}, net ${money(b.net.amount, b.gross.currency)}, payouts ${money(b.payoutTotal.amount, b.gross.currency)}`
      : `${city.code} ${date}: ${report.note}`,
  );
}

const { interchangeMatrix: matrix } = await onecard.request(
  `query Matrix($day: String!) {
     interchangeMatrix(businessDay: $day) {
       positions { ${POSITION} }
       bilateral { debtor { id name cityCode } creditor { id name cityCode } amount { amount currency } }
       multilateral { cardCompany { id name cityCode } receivable { amount currency } payable { amount } net { amount } }
     }
   }`,
  { day: date },
);

// --- 3. volume by hour and channel ----------------------------------------------------------------
// The API has no per-hour settlement figures. The operator may list card payments (payments:read,
// with the time each was paid) and bills (bills:read, with the time each was paid in full): those
// two channels are drawn per hour. Till purchases, transit fares and top-ups are only known as day
// totals (the batch's lines), and shown as such beside the chart.

const CHANNELS = [
  { key: 'payments', label: 'Card payments', colour: '#2f6fb0' },
  { key: 'bills', label: 'Bills', colour: '#2a9d8f' },
];
const hourly = new Map(selected.map((c) => [c.code, CHANNELS.map(() => Array.from({ length: 24 }, () => ({ count: 0, amount: 0n })))]));
const hourlyNotes = [];

async function cityOf(kind, id, cache) {
  if (!cache.has(id)) {
    const data = await lister.request(`query Owner($id: ID!) { owner: ${kind}(id: $id) { city { code } } }`, { id });
    cache.set(id, data.owner?.city.code ?? null);
  }
  return cache.get(id);
}

function count(cityCode, channel, at, amount) {
  const city = selected.find((c) => c.code === cityCode);
  if (!city || !at) return;
  const local = zoned(city.timeZone, new Date(at));
  if (local.date !== date) return;
  const slot = hourly.get(cityCode)[channel][local.hour];
  slot.count += 1;
  slot.amount += BigInt(amount);
}

const MAX_BILL_PAGES = 50;
if (lister) {
  try {
    const merchants = new Map();
    const from = startOfDay(addDays(date, -1), selected[0].timeZone).toISOString(); // a payment may wait for its card a while
    const to = new Date(Math.max(...selected.map((c) => +startOfDay(addDays(date, 1), c.timeZone)))).toISOString();
    let after = null;
    do {
      const { payments } = await lister.request(
        `query Payments($filter: PaymentFilterInput, $after: String) {
           payments(filter: $filter, first: 100, after: $after) { edges { node { merchant succeededAt amount { amount } } } pageInfo { hasNextPage endCursor } }
         }`,
        { filter: { status: ['SUCCEEDED'], createdFrom: from, createdTo: to }, after },
      );
      for (const { node } of payments.edges) count(await cityOf('merchant', node.merchant, merchants), 0, node.succeededAt, node.amount.amount);
      after = payments.pageInfo.hasNextPage ? payments.pageInfo.endCursor : null;
    } while (after);

    const billers = new Map();
    let pages = 0;
    after = null;
    do {
      const { bills } = await lister.request(
        `query Bills($after: String) { bills(filter: { status: [PAID] }, first: 100, after: $after) { edges { node { biller paidAt amountPaid { amount } } } pageInfo { hasNextPage endCursor } } }`,
        { after },
      );
      for (const { node } of bills.edges) count(await cityOf('biller', node.biller, billers), 1, node.paidAt, node.amountPaid.amount);
      after = bills.pageInfo.hasNextPage ? bills.pageInfo.endCursor : null;
    } while (after && ++pages < MAX_BILL_PAGES);
    hourlyNotes.push(
      'Card payments per hour: the operator’s payments list (SUCCEEDED, by the time the card paid). ' +
        'Bills per hour: the operator’s bills list (PAID, by the time the bill was paid in full, whole amount paid)' +
        (after ? `, the ${MAX_BILL_PAGES * 100} most recently published paid bills only` : '') +
        '; part payments of bills not yet paid in full are not listed by the API.',
    );
  } catch (err) {
    hourlyNotes.push(`Per-hour figures unavailable: ${err.message}`);
  }
} else {
  hourlyNotes.push('Per-hour figures need the operator: the API lists payments and bills to the operator (and to each merchant or biller its own), not to a card company.');
}
hourlyNotes.push(
  'Till purchases, transit fares and top-ups have no per-hour source in the API; they appear as day totals below. ' +
    'A small API addition would give every channel per hour: SettlementBatch.volumeByHour { hour kind count amount } (a GROUP BY over the window’s clearing items, which carry kind and occurred_at).',
);

// --- 4. CSV files of our own ----------------------------------------------------------------------

if (lister) {
  await fs.writeFile(
    path.join(outDir, `volume-by-hour-${date}.csv`),
    csvFile(
      ['city', 'business_day', 'hour', 'channel', 'count', 'amount', 'currency'],
      selected.flatMap((city) => CHANNELS.flatMap((ch, k) => hourly.get(city.code)[k].map((s, h) => [city.code, date, `${String(h).padStart(2, '0')}:00`, ch.key, s.count, s.amount.toString(), city.currency]))),
    ),
  );
  files.push(`volume-by-hour-${date}.csv`);
}
await fs.writeFile(
  path.join(outDir, `interchange-matrix-${date}.csv`),
  csvFile(
    ['business_day', 'issuer_city', 'issuer', 'acquirer_city', 'acquirer', 'currency', 'count', 'gross', 'refunds', 'net'],
    matrix.positions.map((p) => [date, p.issuer.cityCode, p.issuer.name, p.acquirer.cityCode, p.acquirer.name, p.net.currency, p.count, p.gross.amount, p.refunds.amount, p.net.amount]),
  ),
);
files.push(`interchange-matrix-${date}.csv`);

// --- 5. charts: inline SVG ------------------------------------------------------------------------

const r1 = (x) => Math.round(x * 10) / 10; // geometry only: pixels, never money

/** 0, a round step in minor units, …: axis ticks (integers) covering max. */
function ticks(max) {
  if (max <= 0n) return [0n];
  const raw = max / 4n + 1n;
  const pow = 10n ** BigInt(raw.toString().length - 1);
  const step = [1n, 2n, 5n, 10n].map((m) => m * pow).find((s) => s >= raw);
  const out = [];
  for (let v = 0n; v < max + step; v += step) out.push(v);
  return out;
}

function hourlyChart(city) {
  const data = hourly.get(city.code);
  const totals = Array.from({ length: 24 }, (_, h) => sum(data.map((ch) => ch[h].amount)));
  const axis = ticks(totals.reduce((a, b) => (b > a ? b : a), 0n));
  const top = Number(axis.at(-1)) || 1;
  const W = 760, H = 250, L = 96, R = 12, T = 12, B = 34;
  const cw = (W - L - R) / 24;
  const y = (v) => T + (H - T - B) * (1 - Number(v) / top);
  const parts = [`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Volume by hour and channel, ${esc(city.code)}">`];
  for (const v of axis) parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(v))}" y2="${r1(y(v))}" class="grid"/><text x="${L - 6}" y="${r1(y(v) + 4)}" class="tick" text-anchor="end">${esc(money(v, city.currency))}</text>`);
  for (let h = 0; h < 24; h++) {
    let base = 0n;
    CHANNELS.forEach((ch, k) => {
      const s = data[k][h];
      if (s.amount === 0n) return;
      const y0 = y(base), y1 = y(base + s.amount);
      parts.push(`<rect x="${r1(L + h * cw + 2)}" y="${r1(y1)}" width="${r1(cw - 4)}" height="${r1(Math.max(y0 - y1, 1))}" fill="${ch.colour}"><title>${esc(`${String(h).padStart(2, '0')}:00–${String(h + 1).padStart(2, '0')}:00 ${ch.label}: ${s.count}, ${money(s.amount, city.currency)}`)}</title></rect>`);
      base += s.amount;
    });
    if (h % 3 === 0) parts.push(`<text x="${r1(L + h * cw + cw / 2)}" y="${H - B + 16}" class="tick" text-anchor="middle">${String(h).padStart(2, '0')}:00</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(0))}" y2="${r1(y(0))}" class="axis"/></svg>`);
  return parts.join('');
}

/** Horizontal bars from a zero line: positive to the right (green), negative to the left (red). */
function divergingChart(rows, label) {
  if (!rows.length) return '<p class="muted">Nothing to chart.</p>';
  const max = rows.reduce((a, r) => (r.value > a ? r.value : a), 0n);
  const min = rows.reduce((a, r) => (r.value < a ? r.value : a), 0n);
  const span = Number(max - min) || 1;
  const W = 760, L = 250, R = 130, rowH = 26, H = rows.length * rowH + 10;
  const plot = W - L - R;
  const zero = L + (plot * Number(-min)) / span;
  const parts = [`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)}">`];
  rows.forEach((r, i) => {
    const yy = 5 + i * rowH;
    const w = (plot * Number(r.value < 0n ? -r.value : r.value)) / span;
    const x = r.value < 0n ? zero - w : zero;
    parts.push(`<text x="${L - 8}" y="${yy + 17}" class="label" text-anchor="end">${esc(r.name.length > 34 ? `${r.name.slice(0, 33)}…` : r.name)}</text>`);
    parts.push(`<rect x="${r1(x)}" y="${yy + 4}" width="${r1(Math.max(w, 1))}" height="${rowH - 8}" class="${r.value < 0n ? 'neg' : 'pos'}"><title>${esc(`${r.name}: ${r.text}`)}</title></rect>`);
    parts.push(`<text x="${r1(r.value < 0n ? zero + 6 : zero + w + 6)}" y="${yy + 17}" class="value">${esc(r.text)}</text>`);
  });
  parts.push(`<line x1="${r1(zero)}" x2="${r1(zero)}" y1="0" y2="${H}" class="axis"/></svg>`);
  return parts.join('');
}

/** Day totals by channel (horizontal bars, all positive). */
function channelChart(rows, currency) {
  return divergingChart(rows.map((r) => ({ name: r.label, value: r.amount, text: `${money(r.amount, currency)} (${r.count})` })), 'Day totals by channel');
}

function heatMap() {
  if (!matrix.positions.length) return '<p class="muted">No card was used outside its home city on this day (or no city’s window is cleared yet).</p>';
  const companies = new Map();
  for (const p of matrix.positions) for (const c of [p.issuer, p.acquirer]) companies.set(c.id, c);
  const list = [...companies.values()].sort((a, b) => a.cityCode.localeCompare(b.cityCode));
  const cell = new Map(matrix.positions.map((p) => [`${p.issuer.id}|${p.acquirer.id}`, p]));
  const max = matrix.positions.reduce((a, p) => (BigInt(p.net.amount) > a ? BigInt(p.net.amount) : a), 1n);
  const rows = list.map((issuer) => {
    const cells = list.map((acquirer) => {
      if (issuer.id === acquirer.id) return '<td class="self">—</td>';
      const p = cell.get(`${issuer.id}|${acquirer.id}`);
      if (!p) return '<td class="zero">·</td>';
      const net = BigInt(p.net.amount);
      const alpha = net > 0n ? (0.15 + (0.75 * Number(net)) / Number(max)).toFixed(2) : '0.08';
      return `<td style="background: rgba(196, 92, 38, ${alpha})" title="${esc(`${issuer.name} owes ${acquirer.name}: ${p.count} transactions, gross ${money(p.gross.amount, p.gross.currency)}, refunds ${money(p.refunds.amount, p.gross.currency)}`)}"><strong>${esc(money(p.net.amount, p.net.currency))}</strong><br><span class="muted">${p.count} tx</span></td>`;
    });
    return `<tr><th scope="row">${esc(issuer.cityCode)} <span class="muted">${esc(issuer.name)}</span></th>${cells.join('')}</tr>`;
  });
  return `<table class="heat"><thead><tr><th>cards of ↓ used in →</th>${list.map((c) => `<th scope="col">${esc(c.cityCode)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

// --- 6. report.html ---------------------------------------------------------------------------------

function table(header, rows, numeric = []) {
  return `<div class="scroll"><table><thead><tr>${header.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((v, i) => `<td${numeric.includes(i) ? ' class="num"' : ''}>${esc(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

function citySection(r) {
  const { city, window, batch } = r;
  const head = `<h2>${esc(city.code)} · ${esc(city.name)} <span class="status">${esc(window?.status ?? 'NO WINDOW')}</span></h2>`;
  if (!batch) return `<section>${head}<p class="note">${esc(r.note)}</p></section>`;
  const cur = batch.gross.currency;
  const m = (v) => money(v, cur);
  const byKind = (kind) => batch.lines.filter((l) => l.participantKind === kind);
  const hourlyTotals = CHANNELS.map((_, k) => hourly.get(city.code)[k].reduce((a, s) => ({ count: a.count + s.count, amount: a.amount + s.amount }), { count: 0, amount: 0n }));
  const channels = [
    { label: 'Merchant sales', what: 'card payments, till purchases, bus companies’ fares', amount: sum(byKind('MERCHANT').map((l) => l.gross.amount)), count: byKind('MERCHANT').reduce((a, l) => a + l.salesCount, 0), perHour: lister ? `card payments ${m(hourlyTotals[0].amount)}` : '—' },
    { label: 'Bills', what: 'bill payments', amount: sum(byKind('BILLER').map((l) => l.gross.amount)), count: byKind('BILLER').reduce((a, l) => a + l.salesCount, 0), perHour: lister ? m(hourlyTotals[1].amount) : '—' },
    { label: 'Transit', what: 'fares on the card companies’ own terminals', amount: sum(byKind('CARD_COMPANY').map((l) => l.gross.amount)), count: byKind('CARD_COMPANY').reduce((a, l) => a + l.salesCount, 0), perHour: '—' },
    { label: 'Top-ups', what: 'stored value paid in at the gateway, not paid out', amount: BigInt(batch.topUps.amount), count: byKind('CARD_COMPANY').reduce((a, l) => a + l.topUpCount, 0), perHour: '—' },
    { label: 'Refunds', what: 'merchants’ refunds to cards', amount: BigInt(batch.refunds.amount), count: batch.lines.reduce((a, l) => a + l.refundCount, 0), perHour: '—' },
  ];
  const cards = [
    ['Gross sales', batch.gross.amount],
    ['Refunds', batch.refunds.amount],
    ['Operator fees', batch.fees.amount],
    ['Net', batch.net.amount],
    ['Payouts', batch.payoutTotal.amount],
    ['Top-ups', batch.topUps.amount],
  ];
  const nets = [...batch.lines]
    .sort((a, b) => (BigInt(b.net.amount) > BigInt(a.net.amount) ? 1 : BigInt(b.net.amount) < BigInt(a.net.amount) ? -1 : a.participantName.localeCompare(b.participantName)))
    .map((l) => ({ name: l.participantName, value: BigInt(l.net.amount), text: m(l.net.amount) }));
  return `<section>
${head}
<p class="muted">Window ${esc(window.id)} · closed ${esc(window.closedAt ?? '')} by ${esc(window.closedBy ?? '')} · cleared ${esc(window.clearedAt ?? '')} · batch ${esc(batch.status)}, ${batch.itemCount} items</p>
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v" data-minor="${esc(v)}">${esc(m(v))}</div></div>`).join('')}</div>
<h3>Volume by hour and channel</h3>
<div class="legend">${CHANNELS.map((c) => `<span><i style="background:${c.colour}"></i>${esc(c.label)}</span>`).join('')}</div>
${hourlyChart(city)}
<h3>Day totals by channel</h3>
${channelChart(channels, cur)}
${table(['channel', 'what', 'count', 'day total (batch)', 'drawn per hour'], channels.map((c) => [c.label, c.what, String(c.count), m(c.amount), c.perHour]), [2, 3, 4])}
<h3>Net position per participant</h3>
<p class="muted">net = gross − refunds − operator fees; negative when refunds and fees exceed sales (carried forward).</p>
${divergingChart(nets, `Net position per participant, ${city.code}`)}
${table(
  ['participant', 'kind', 'sales', 'gross', 'refunds', 'fees', 'net', 'carried in', 'due', 'payout', 'status'],
  batch.lines.map((l) => [l.participantName, l.participantKind, String(l.salesCount), m(l.gross.amount), m(l.refunds.amount), m(l.fees.amount), m(l.net.amount), m(l.carriedIn.amount), m(l.due.amount), m(l.payout.amount), l.status]),
  [2, 3, 4, 5, 6, 7, 8, 9],
)}
</section>`;
}

const multilateral = matrix.multilateral.map((n) => ({ name: `${n.cardCompany.cityCode} ${n.cardCompany.name}`, value: BigInt(n.net.amount), text: money(n.net.amount, n.receivable.currency) }));
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>OneCard settlement ${esc(date)}</title>
<style>
  :root { color-scheme: light; --ink: #1d2733; --muted: #6b7785; --line: #dde3ea; --pos: #2e8b57; --neg: #c0392b; }
  * { box-sizing: border-box; }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC", "Microsoft YaHei", sans-serif; color: var(--ink); margin: 0; background: #f5f7fa; }
  main { max-width: 1000px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 0 0 4px; } h3 { font-size: 15px; margin: 22px 0 8px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin: 18px 0; }
  .muted { color: var(--muted); } .note { background: #fff8e6; border-left: 3px solid #e0a800; padding: 8px 12px; }
  .status { font-size: 12px; font-weight: 600; border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; vertical-align: middle; color: var(--muted); }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin: 12px 0; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; } .card .k { color: var(--muted); font-size: 12px; } .card .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
  th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; } .num { text-align: right; white-space: nowrap; }
  table.heat td, table.heat th { text-align: center; border: 1px solid var(--line); } table.heat th[scope=row] { text-align: left; }
  table.heat td.self { background: #eef1f4; color: var(--muted); } table.heat td.zero { color: var(--muted); }
  svg.chart { width: 100%; height: auto; display: block; }
  svg .grid { stroke: #e8ecf1; } svg .axis { stroke: #8a96a3; } svg .tick { font-size: 10px; fill: var(--muted); }
  svg .label { font-size: 12px; fill: var(--ink); } svg .value { font-size: 11px; fill: var(--muted); }
  svg .pos { fill: var(--pos); } svg .neg { fill: var(--neg); }
  .legend span { margin-right: 14px; font-size: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }
  footer { color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<main>
<h1>Settlement ${esc(date)}</h1>
<p class="muted">${esc(selected.map((c) => c.name).join(' · '))} · made ${esc(new Date().toISOString())} from ${esc(baseUrl)} as the ${esc(viewer.kind.toLowerCase())} · amounts in minor units formatted exactly</p>
${reports.map(citySection).join('\n')}
<section>
<h2>Between cities (互联互通)</h2>
<p class="muted">What each card company’s cards spent in other cities, net of refunds: the issuer (row) owes the card company of the city where the cards were used (column). Every city’s cleared window of ${esc(date)}.</p>
${heatMap()}
<h3>Net position per card company</h3>
<p class="muted">receivable − payable: positive, it is owed; negative, it owes.</p>
${divergingChart(multilateral, 'Interchange net per card company')}
${matrix.bilateral.length ? table(['owes', 'is owed', 'amount'], matrix.bilateral.map((b) => [`${b.debtor.cityCode} ${b.debtor.name}`, `${b.creditor.cityCode} ${b.creditor.name}`, money(b.amount.amount, b.amount.currency)]), [2]) : ''}
</section>
<section>
<h2>About the figures</h2>
<ul>${hourlyNotes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>
<p>Files beside this page: ${files.map((f) => `<code>${esc(f)}</code>`).join(', ')}.</p>
</section>
<footer>OneCard settlement report (examples/settlement-report)</footer>
</main>
</body>
</html>
`;
await fs.writeFile(path.join(outDir, 'report.html'), html);
for (const f of files) console.log(`wrote ${path.join(outDir, f)}`);
console.log(`report: ${path.join(outDir, 'report.html')}`);

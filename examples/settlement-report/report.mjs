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
/** Settlement reads (everything in the report, the hourly chart too); the operator may also close days. */
const onecard = new OneCardClient({ ...creds, scope: 'settlements:read' });
const { viewer } = await onecard.request('query Me { viewer { kind tenantId } }');
const operator = viewer.kind === 'OPERATOR';
if (!operator && viewer.kind !== 'ISSUER') fail(`a ${viewer.kind} client reads its own statements only (settlementStatements); use the operator's or a card company's client`);
if (opts.close && !operator) fail('--close needs the operator (scope settlements:manage)');
// clearSettlementWindow finds the window through settlements:read: the manager needs both.
const manager = opts.close ? new OneCardClient({ ...creds, scope: 'settlements:read settlements:manage' }) : undefined;

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

/**
 * An instant as local time labelled with its zone, e.g. `2026-12-05 23:30:00 Asia/Shanghai (UTC+08:00)`:
 * the report shows every time in the city's zone, never a bare UTC timestamp beside local hours.
 */
function localTime(timeZone, at) {
  if (!at) return '';
  const instant = new Date(at);
  const z = zoned(timeZone, instant);
  const offset = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }).formatToParts(instant).find((p) => p.type === 'timeZoneName').value.replace('GMT', 'UTC');
  const pad = (n) => String(n).padStart(2, '0');
  return `${z.date} ${pad(z.hour)}:${pad(z.minute)}:${pad(z.second)} ${timeZone} (${offset === 'UTC' ? 'UTC+00:00' : offset})`;
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
    { city: city.id, day: date },
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
  let volume; // volumeByHour: read with the first page of lines only
  do {
    ({ settlementBatch: batch } = await onecard.request(
      `query Batch($id: ID!, $after: String, $withVolume: Boolean!) {
         settlementBatch(id: $id) {
           id status createdAt settledAt itemCount journalEntry
           gross { amount currency } refunds { amount } fees { amount } net { amount } payoutTotal { amount } topUps { amount } topUpRefunds { amount }
           lines(first: 100, after: $after) { edges { node { ${LINE} } } pageInfo { hasNextPage endCursor } }
           interchange { ${POSITION} }
           volumeByHour @include(if: $withVolume) { hour kind count amount { amount currency } }
         }
       }`,
      { id, after, withVolume: after === null },
    ));
    volume ??= batch.volumeByHour;
    lines.push(...batch.lines.edges.map((e) => e.node));
    after = batch.lines.pageInfo.hasNextPage ? batch.lines.pageInfo.endCursor : null;
  } while (after);
  return { ...batch, lines, volumeByHour: volume };
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
        ? `the window is OPEN (cut-off ${localTime(city.timeZone, window.cutoffAt)}): not cleared yet${operator ? '; run again with --close to close and clear it now' : ''}`
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
// Each batch's volumeByHour: the window's clearing items grouped by the local hour (the city's time
// zone) they happened in and by kind, every channel, for the operator and a card company alike.
// Money in (sales, top-ups) is drawn above the axis, money going back to cards (refunds) below it.
// Each channel's hours add up to the batch's totals; the page shows both side by side.

/** The API's clearing kinds as the report's channels, in drawing order. `total`: the batch total the channel adds to (`sign` −1: is taken from). */
const CHANNELS = [
  { kind: 'PAYMENT', key: 'payments', label: 'Card payments', what: 'merchants’ online checkouts paid by card', colour: '#2f6fb0', total: 'gross' },
  { kind: 'PURCHASE', key: 'purchases', label: 'Till purchases', what: 'purchases at merchants’ till readers', colour: '#84b4e3', total: 'gross' },
  { kind: 'BILL_PAYMENT', key: 'bills', label: 'Bills', what: 'bills paid by card or from a top-up', colour: '#2a9d8f', total: 'gross' },
  { kind: 'TRANSIT', key: 'transit', label: 'Transit fares', what: 'offline fares uploaded by card companies’ and bus companies’ terminals', colour: '#e9a23b', total: 'gross' },
  { kind: 'TOP_UP', key: 'top_ups', label: 'Top-ups', what: 'stored value paid in at the gateway (not paid out)', colour: '#8e6cc1', total: 'topUps' },
  { kind: 'TOP_UP_REFUND_FAILED', key: 'top_up_refunds_failed', label: 'Failed top-up refunds', what: 'top-up refunds the gateway failed: the value came back', colour: '#c9b8e8', total: 'topUpRefunds', sign: -1n, rare: true },
  { kind: 'REFUND', key: 'refunds', label: 'Refunds to cards', what: 'merchants’ refunds of payments', colour: '#c0392b', total: 'refunds', out: true },
  { kind: 'TOP_UP_REFUND', key: 'top_up_refunds', label: 'Top-up refunds', what: 'top-ups refunded through the gateway', colour: '#ee9a8c', total: 'topUpRefunds', out: true },
];
/** The batch's totals the channels add up to. */
const TOTALS = [
  { key: 'gross', label: 'Gross sales' },
  { key: 'refunds', label: 'Refunds' },
  { key: 'topUps', label: 'Top-ups' },
  { key: 'topUpRefunds', label: 'Top-up refunds' },
];
/** A kind this report does not know yet (the API added one): its own grey series, money in, outside the batch totals. */
function channelOf(kind) {
  let ch = CHANNELS.find((c) => c.kind === kind);
  if (!ch) {
    ch = { kind, key: kind.toLowerCase(), label: kind.toLowerCase().replaceAll('_', ' '), what: 'a kind this report does not know yet', colour: '#9aa5b1', total: null, rare: true };
    CHANNELS.splice(CHANNELS.findIndex((c) => c.out), 0, ch);
  }
  return ch;
}

const hh = (h) => `${String(h).padStart(2, '0')}:00`;
const emptyDay = () => Array.from({ length: 24 }, () => ({ count: 0, amount: 0n }));
/** city code → kind → 24 hours of { count, amount (BigInt minor units) }; cleared cities only. */
const hourly = new Map();
for (const { city, batch } of reports) {
  if (!batch) continue;
  const byKind = new Map();
  for (const v of batch.volumeByHour) {
    channelOf(v.kind);
    if (!byKind.has(v.kind)) byKind.set(v.kind, emptyDay());
    const slot = byKind.get(v.kind)[v.hour];
    slot.count += v.count;
    slot.amount += BigInt(v.amount.amount);
  }
  hourly.set(city.code, byKind);
}
const series = (code, kind) => hourly.get(code)?.get(kind) ?? emptyDay();
const dayTotal = (code, kind) => series(code, kind).reduce((a, s) => ({ count: a.count + s.count, amount: a.amount + s.amount }), { count: 0, amount: 0n });
/** Channels to show for a city: the usual ones always, a rare or unknown one when it has figures. */
const shown = (code, out) => CHANNELS.filter((c) => !!c.out === out && (!c.rare || dayTotal(code, c.kind).count > 0));

/** Each batch total against the sum of its channels' hours. */
function checks(city, batch) {
  return TOTALS.map((t) => {
    const parts = CHANNELS.filter((c) => c.total === t.key).sort((a, b) => (a.sign ? 1 : 0) - (b.sign ? 1 : 0));
    const fromHours = parts.reduce((a, c) => a + (c.sign ?? 1n) * dayTotal(city.code, c.kind).amount, 0n);
    const formula = parts.map((c, i) => `${i === 0 ? '' : c.sign ? ' − ' : ' + '}${c.label.toLowerCase()}`).join('');
    return { ...t, formula, fromHours, inBatch: BigInt(batch[t.key].amount) };
  });
}
for (const { city, batch } of reports) {
  if (!batch) continue;
  for (const c of checks(city, batch)) {
    if (c.fromHours !== c.inBatch) console.warn(`settlement-report: ${city.code} ${date}: ${c.label.toLowerCase()} per hour ${money(c.fromHours, batch.gross.currency)} differ from the batch's ${money(c.inBatch, batch.gross.currency)}`);
  }
}

// --- 4. CSV files of our own ----------------------------------------------------------------------

await fs.writeFile(
  path.join(outDir, `volume-by-hour-${date}.csv`),
  csvFile(
    ['city', 'business_day', 'hour', 'channel', 'kind', 'direction', 'count', 'amount', 'currency'],
    reports
      .filter((r) => r.batch)
      .flatMap(({ city, batch }) =>
        Array.from({ length: 24 }, (_, h) => CHANNELS.map((ch) => [city.code, date, hh(h), ch.key, ch.kind, ch.out ? 'out' : 'in', series(city.code, ch.kind)[h].count, series(city.code, ch.kind)[h].amount.toString(), batch.gross.currency])).flat(),
      ),
  ),
);
files.push(`volume-by-hour-${date}.csv`);
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

/** A round step in minor units (1, 2 or 5 × 10ⁿ) that covers max in about four. */
function niceStep(max) {
  const raw = max / 4n + 1n;
  const pow = 10n ** BigInt(raw.toString().length - 1);
  return [1n, 2n, 5n, 10n].map((m) => m * pow).find((s) => s >= raw);
}
const roundUp = (v, step) => ((v + step - 1n) / step) * step;
/** The smallest 1, 2 or 5 × 10ⁿ at least v (v > 0). */
function niceCeil(v) {
  const pow = 10n ** BigInt(v.toString().length - 1);
  return [1n, 2n, 5n, 10n].map((m) => m * pow).find((s) => s >= v);
}

/** Stacked bars per hour: money in above the axis, money going back out below it. */
function hourlyChart(city, currency) {
  const ins = shown(city.code, false);
  const outs = shown(city.code, true);
  const stack = (chs, h) => chs.reduce((a, c) => a + series(city.code, c.kind)[h].amount, 0n);
  const peak = (chs) => Array.from({ length: 24 }, (_, h) => stack(chs, h)).reduce((a, b) => (b > a ? b : a), 0n);
  const maxIn = peak(ins);
  const maxOut = peak(outs);
  const step = niceStep(maxIn > maxOut ? maxIn : maxOut);
  const up = maxIn > 0n ? roundUp(maxIn, step) : step;
  // Refunds are usually a sliver of the day: below the axis, only as deep as they reach (same scale).
  const down = maxOut === 0n ? 0n : maxOut >= step ? roundUp(maxOut, step) : niceCeil(maxOut);
  const span = Number(up + down);
  const W = 760, H = down > 0n ? 280 : 250, L = 96, R = 12, T = 12, B = 34;
  const cw = (W - L - R) / 24;
  const y = (v) => T + ((H - T - B) * Number(up - v)) / span;
  const parts = [`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Volume by hour and channel, ${esc(city.code)}">`];
  const gridAt = [...(down > 0n && down % step !== 0n ? [-down] : [])];
  for (let v = -((down / step) * step); v <= up; v += step) gridAt.push(v);
  for (const v of gridAt) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(v))}" y2="${r1(y(v))}" class="grid"/>`);
    if (v === 0n || Math.abs(y(v) - y(0n)) >= 12) parts.push(`<text x="${L - 6}" y="${r1(y(v) + 4)}" class="tick" text-anchor="end">${esc(money(v, currency))}</text>`); // no label crowding the axis's
  }
  for (let h = 0; h < 24; h++) {
    for (const [chs, dir] of [[ins, 1n], [outs, -1n]]) {
      let base = 0n;
      for (const ch of chs) {
        const s = series(city.code, ch.kind)[h];
        if (s.count === 0 && s.amount === 0n) continue;
        const y0 = y(dir * base), y1 = y(dir * (base + s.amount));
        const what = `${hh(h)}–${hh(h + 1)} ${ch.label}: ${s.count}, ${money(s.amount, currency)}${ch.out ? ' back to cards' : ''}`;
        parts.push(
          `<rect x="${r1(L + h * cw + 2)}" y="${r1(Math.min(y0, y1))}" width="${r1(cw - 4)}" height="${r1(Math.max(Math.abs(y0 - y1), 1))}" fill="${ch.colour}" data-hour="${h}" data-kind="${esc(ch.kind)}" data-count="${s.count}" data-minor="${s.amount}"><title>${esc(what)}</title></rect>`,
        );
        base += s.amount;
      }
    }
    if (h % 3 === 0) parts.push(`<text x="${r1(L + h * cw + cw / 2)}" y="${H - B + 16}" class="tick" text-anchor="middle">${hh(h)}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${r1(y(0n))}" y2="${r1(y(0n))}" class="axis"/></svg>`);
  return parts.join('');
}

/** The chart's figures, one row per hour with any: folded away (no script: <details>). */
function hourlyTable(city, currency) {
  const chs = [...shown(city.code, false), ...shown(city.code, true)].filter((c) => dayTotal(city.code, c.kind).count > 0);
  const hours = Array.from({ length: 24 }, (_, h) => h).filter((h) => chs.some((c) => series(city.code, c.kind)[h].count > 0));
  if (!hours.length) return '';
  const rows = hours.map((h) => {
    const cell = (c) => series(city.code, c.kind)[h];
    const net = chs.reduce((a, c) => a + (c.out ? -1n : 1n) * cell(c).amount, 0n);
    const bare = (v) => money(v, currency).slice(currency.length + 1); // the currency is in the summary
    return [hh(h), ...chs.map((c) => (cell(c).count ? `${bare(cell(c).amount)} (${cell(c).count})` : '')), bare(net)];
  });
  const numeric = chs.map((_, i) => i + 1).concat(chs.length + 1);
  return `<details><summary>The figures per hour (${esc(currency)}, count in brackets)</summary>${table(['hour', ...chs.map((c) => (c.out ? `${c.label} (out)` : c.label)), 'in − out'], rows, numeric)}</details>`;
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

/** Day totals by channel: money in to the right, money going back to cards to the left. */
function channelChart(city, currency) {
  const rows = [...shown(city.code, false), ...shown(city.code, true)].map((c) => {
    const t = dayTotal(city.code, c.kind);
    const value = c.out ? -t.amount : t.amount;
    return { name: c.label, value, text: `${money(value, currency)} (${t.count})` };
  });
  return divergingChart(rows, `Day totals by channel, ${city.code}`);
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

/** A table of text; `attrs[i]`: the i-th row's data-* attributes ({ kind: 'PAYMENT' } → data-kind="PAYMENT"). */
function table(header, rows, numeric = [], attrs = [], className = '') {
  const data = (a = {}) => Object.entries(a).map(([k, v]) => ` data-${k}="${esc(v)}"`).join('');
  // data-label: below 900 px wide each row becomes a card of "label value" lines (no horizontal scrolling).
  return `<div class="fit"><table${className ? ` class="${className}"` : ''}><thead><tr>${header.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r, n) => `<tr${data(attrs[n])}>${r.map((v, i) => `<td data-label="${esc(header[i])}"${numeric.includes(i) ? ' class="num"' : ''}>${esc(v)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table></div>`;
}

function citySection(r) {
  const { city, window, batch } = r;
  const head = `<h2>${esc(city.code)} · ${esc(city.name)} <span class="status">${esc(window?.status ?? 'NO WINDOW')}</span></h2>`;
  if (!batch) return `<section>${head}<p class="note">${esc(r.note)}</p></section>`;
  const cur = batch.gross.currency;
  const m = (v) => money(v, cur);
  const channels = [...shown(city.code, false), ...shown(city.code, true)];
  const totalLabel = Object.fromEntries(TOTALS.map((t) => [t.key, t.label.toLowerCase()]));
  const against = checks(city, batch);
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
<p class="muted">Window ${esc(window.id)} · closed <time datetime="${esc(window.closedAt ?? '')}">${esc(localTime(city.timeZone, window.closedAt))}</time> by ${esc(window.closedBy ?? '')} · cleared <time datetime="${esc(window.clearedAt ?? '')}">${esc(localTime(city.timeZone, window.clearedAt))}</time> · batch ${esc(batch.status)}, ${batch.itemCount} items</p>
<div class="cards">${cards.map(([k, v]) => `<div class="card"><div class="k">${esc(k)}</div><div class="v" data-minor="${esc(v)}">${esc(m(v))}</div></div>`).join('')}</div>
<h3>Volume by hour and channel</h3>
<p class="muted">Hours in ${esc(city.timeZone)}. Above the line, money in (sales and top-ups); below it, money going back to cards (refunds).</p>
<div class="legend">${[false, true].map((out) => `<span class="group">${out ? 'Out:' : 'In:'}</span>${shown(city.code, out).map((c) => `<span><i style="background:${c.colour}"></i>${esc(c.label)}</span>`).join('')}`).join('')}</div>
${hourlyChart(city, cur)}
${hourlyTable(city, cur)}
<h3>Day totals by channel</h3>
${channelChart(city, cur)}
${table(
  ['channel', 'what', 'count', 'day total', 'batch total'],
  channels.map((c) => {
    const t = dayTotal(city.code, c.kind);
    return [c.label, c.what, String(t.count), m(t.amount), c.total ? `${c.sign ? 'taken off ' : ''}${totalLabel[c.total]}` : '—'];
  }),
  [2, 3],
  channels.map((c) => ({ kind: c.kind, count: dayTotal(city.code, c.kind).count, minor: dayTotal(city.code, c.kind).amount })),
)}
<p class="muted">Against the batch: each of its totals and the sum of its channels’ hours.</p>
${table(
  ['batch total', 'is', 'sum of the hours', 'batch', ''],
  against.map((c) => [c.label, c.formula, m(c.fromHours), m(c.inBatch), c.fromHours === c.inBatch ? '✓ matches' : `✗ differs by ${m(c.fromHours - c.inBatch)}`]),
  [2, 3],
  against.map((c) => ({ total: c.key, hours: c.fromHours, batch: c.inBatch })),
)}
<h3>Net position per participant (${esc(cur)})</h3>
<p class="muted">net = gross − refunds − operator fees; negative when refunds and fees exceed sales (carried forward).</p>
${divergingChart(nets, `Net position per participant, ${city.code}`)}
${table(
  ['participant', 'kind', 'sales', 'gross', 'refunds', 'fees', 'net', 'carried in', 'due', 'payout', 'status'],
  // Amounts without the currency code (the caption has it): eleven columns fit a laptop screen.
  batch.lines.map((l) => [l.participantName, l.participantKind, String(l.salesCount), ...[l.gross, l.refunds, l.fees, l.net, l.carriedIn, l.due, l.payout].map((a) => money(a.amount, cur).slice(cur.length + 1)), l.status]),
  [2, 3, 4, 5, 6, 7, 8, 9],
  [],
  'lines',
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
  /* Latin first, then a CJK face for 深圳通 and the like on every system (macOS, Windows, Linux with Noto CJK or WenQuanYi). */
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", sans-serif; color: var(--ink); margin: 0; background: #f5f7fa; }
  main { max-width: 1000px; margin: 0 auto; padding: 24px; }
  h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 19px; margin: 0 0 4px; } h3 { font-size: 15px; margin: 22px 0 8px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 18px 20px; margin: 18px 0; }
  .muted { color: var(--muted); } .note { background: #fff8e6; border-left: 3px solid #e0a800; padding: 8px 12px; }
  .status { font-size: 12px; font-weight: 600; border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; vertical-align: middle; color: var(--muted); }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr)); gap: 10px; margin: 12px 0; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; } .card .k { color: var(--muted); font-size: 12px; } .card .v { font-size: 17px; font-weight: 600; font-variant-numeric: tabular-nums; }
  p, li, h1, h2, h3, summary { overflow-wrap: anywhere; } /* long ids and URLs wrap on a phone */
  .fit { max-width: 100%; }
  table.lines th, table.lines td { padding: 5px 4px; } table.lines td:first-child { overflow-wrap: anywhere; }
  @media (max-width: 900px) {
    main { padding: 12px; } section { padding: 12px; }
    .fit table:not(.heat) thead { display: none; }
    .fit table:not(.heat) tr { display: block; border-bottom: 1px solid var(--line); padding: 4px 0; }
    .fit table:not(.heat) td { display: flex; justify-content: space-between; gap: 12px; border: 0; padding: 2px 4px; text-align: right; white-space: normal; overflow-wrap: anywhere; }
    .fit table:not(.heat) td::before { content: attr(data-label); color: var(--muted); text-align: left; }
    table.heat { font-size: 11px; } table.heat td, table.heat th { padding: 3px 2px; }
  }
  table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 13px; font-variant-numeric: tabular-nums; }
  th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; } .num { text-align: right; white-space: nowrap; }
  table.heat td, table.heat th { text-align: center; border: 1px solid var(--line); } table.heat th[scope=row] { text-align: left; }
  table.heat td.self { background: #eef1f4; color: var(--muted); } table.heat td.zero { color: var(--muted); }
  svg.chart { width: 100%; height: auto; display: block; }
  svg .grid { stroke: #e8ecf1; } svg .axis { stroke: #8a96a3; } svg .tick { font-size: 10px; fill: var(--muted); }
  svg .label { font-size: 12px; fill: var(--ink); } svg .value { font-size: 11px; fill: var(--muted); }
  svg .pos { fill: var(--pos); } svg .neg { fill: var(--neg); }
  .legend span { margin-right: 14px; font-size: 12px; } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }
  .legend .group { margin-right: 6px; color: var(--muted); }
  details summary { cursor: pointer; color: var(--muted); font-size: 13px; margin: 4px 0; }
  footer { color: var(--muted); font-size: 12px; }
</style>
</head>
<body>
<main>
<h1>Settlement ${esc(date)}</h1>
<p class="muted">${esc(selected.map((c) => c.name).join(' · '))} · made <time datetime="${esc(new Date().toISOString())}">${esc(localTime(selected[0].timeZone, new Date()))}</time> from ${esc(baseUrl)} as the ${esc(viewer.kind.toLowerCase())} · amounts in minor units formatted exactly</p>
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
<ul>
<li>Volume by hour: each batch’s <code>volumeByHour</code>, the window’s cleared transactions counted by the hour they happened in (the city’s local time) and by channel. A transaction cleared after its own day’s window had closed (an offline fare uploaded late) is in the window that cleared it, at the hour it happened.</li>
<li>Totals, lines and net positions: the batch (<code>settlementBatch</code>); interchange: <code>interchangeMatrix</code>.</li>
<li>Amounts are integer minor units, added exactly and formatted without rounding.</li>
</ul>
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
